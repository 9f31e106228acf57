"""``PipelineConfig``: the one validated, immutable configuration of grounding, gate and timing.

The ROS node declares one parameter per entry of ``flat_defaults()`` (name, default, type,
description, range) and maps the parameter values back with ``PipelineConfig.from_flat`` in
one place; a parameter change is re-validated by building a new config from
``{**config.to_flat(), **changes}``, so a bad value is refused with a ``ConfigError`` naming
the parameter and the running config stays as it was. Dotted names group the parameters in
``config/planner.yaml`` and in ``ros2 param list``. Each entry is a ``settings.ParamSpec``,
the package's one parameter-spec class, so these parameters are type- and range-checked by
the same code (and with the same messages) as every other parameter.
"""

from dataclasses import dataclass, field, replace
import difflib
from typing import Any, Dict, Mapping, Optional, Tuple

from cosmos_planner.errors import ConfigError
from cosmos_planner.geometry.grounding import GroundingConfig, MODES
from cosmos_planner.geometry.safety import SafetyConfig
from cosmos_planner.geometry.timing import TimingConfig
from cosmos_planner.settings import ParamSpec, TYPES

#: Where each flat parameter lives in the config: name -> (section, attribute).
_WHERE: Dict[str, Tuple[str, str]] = {}


def _p(name: str, section: str, attr: str, type_: str, description: str,
       lo: Optional[float] = None, hi: Optional[float] = None, length: Optional[int] = None,
       choices: Tuple[str, ...] = ()) -> ParamSpec:
    _WHERE[name] = (section, attr)
    return ParamSpec(name, None, description, min=lo, max=hi, choices=tuple(choices),
                     length=length, type=type_)


#: Every flat parameter, in declaration order.
SPECS: Tuple[ParamSpec, ...] = (
    _p('ground.mode', 'grounding', 'mode', 'string',
       "How pixels get depth: 'depth' (registered depth image) or 'plane' (ground.plane).",
       choices=MODES),
    _p('ground.depth_patch_px', 'grounding', 'depth_patch_px', 'integer',
       'Side of the square depth patch (odd) whose valid median is a point\'s depth.', 1, 101),
    _p('ground.depth_sync_tolerance_s', 'grounding', 'depth_sync_tolerance_s', 'double',
       'Largest stamp difference between the plan frame and the depth image used.', 0.0, 10.0),
    _p('ground.depth_min_m', 'grounding', 'depth_min_m', 'double',
       'Depth values below this are holes (the sensor\'s minimum range).', 0.0, 100.0),
    _p('ground.depth_max_m', 'grounding', 'depth_max_m', 'double',
       'Depth values above this are holes (the sensor\'s maximum range).', 0.0, 1000.0),
    _p('ground.plane', 'grounding', 'plane', 'double_array',
       'Ground plane a, b, c, d (a x + b y + c z + d = 0) in the target frame.', length=4),
    _p('heights.approach_m', 'grounding', 'approach_m', 'double',
       'Height above the surface of approach, retreat and inserted pre-grasp/pre-release '
       'waypoints.', -1.0, 2.0),
    _p('heights.grasp_offset_m', 'grounding', 'grasp_offset_m', 'double',
       'Height above the surface of the grasp (close) waypoint.', -1.0, 2.0),
    _p('heights.carry_m', 'grounding', 'carry_m', 'double',
       'Height above the surface of waypoints while the object is held.', -1.0, 2.0),
    _p('heights.place_m', 'grounding', 'place_m', 'double',
       'Height above the surface of the release (open) waypoint.', -1.0, 2.0),
    _p('heights.up', 'grounding', 'up', 'double_array',
       'Lift direction in the target frame (normalised; +z for a z-up world).', length=3),
    _p('heights.insert_approach', 'grounding', 'insert_approach', 'bool',
       'Insert an approach waypoint above every grasp and release.'),
    _p('tool.orientation_xyzw', 'grounding', 'tool_orientation_xyzw', 'double_array',
       'Gripper orientation quaternion (x, y, z, w) in the target frame, for every waypoint.',
       length=4),
    _p('target.frame', 'grounding', 'target_frame', 'string',
       "Frame of the published 3D points; '' publishes in the camera optical frame."),
    _p('target.translation', 'grounding', 'target_translation', 'double_array',
       'Camera optical frame origin in the target frame (static transform, metres).', length=3),
    _p('target.rotation_xyzw', 'grounding', 'target_rotation_xyzw', 'double_array',
       'Camera optical frame orientation in the target frame (quaternion x, y, z, w).',
       length=4),
    _p('safety.workspace_min', 'safety', 'workspace_min', 'double_array',
       'Lower corner of the allowed box in the target frame (metres).', length=3),
    _p('safety.workspace_max', 'safety', 'workspace_max', 'double_array',
       'Upper corner of the allowed box in the target frame (metres).', length=3),
    _p('safety.max_step_m', 'safety', 'max_step_m', 'double',
       'Longest allowed distance between consecutive waypoints.', 0.0, 10.0),
    _p('safety.max_waypoints', 'safety', 'max_waypoints', 'integer',
       'Most points in a published trajectory (dwell points included).', 1, 10000),
    _p('safety.max_velocity_mps', 'safety', 'max_velocity_mps', 'double',
       'Fastest allowed segment speed; timing never exceeds it.', 0.0, 10.0),
    _p('safety.max_plan_age_s', 'safety', 'max_plan_age_s', 'double',
       'A plan is valid until its frame stamp plus this (ROS time).', 0.0, 3600.0),
    _p('timing.nominal_speed_mps', 'timing', 'nominal_speed_mps', 'double',
       'Cartesian speed used for time_from_start (capped by safety.max_velocity_mps).',
       0.0, 10.0),
    _p('timing.gripper_dwell_s', 'timing', 'gripper_dwell_s', 'double',
       'Time the arm holds still at a gripper command while the gripper moves.', 0.0, 60.0),
    _p('timing.min_segment_s', 'timing', 'min_segment_s', 'double',
       'Shortest segment time (keeps time_from_start strictly increasing).', 0.001, 60.0),
    _p('timing.start_delay_s', 'timing', 'start_delay_s', 'double',
       'time_from_start of the first waypoint (at least the time to reach it when the '
       'end-effector position is known).', 0.0, 60.0),
    _p('gripper.joint_name', 'timing', 'gripper_joint', 'string',
       'Joint name of the gripper in the published JointTrajectory.'),
    _p('gripper.open_position', 'timing', 'gripper_open_position', 'double',
       'Gripper joint position when open.', -10.0, 10.0),
    _p('gripper.closed_position', 'timing', 'gripper_closed_position', 'double',
       'Gripper joint position when closed.', -10.0, 10.0),
)
_BY_NAME = {s.name: s for s in SPECS}


@dataclass(frozen=True)
class PipelineConfig:
    """Grounding, safety and timing settings, validated together on construction."""

    grounding: GroundingConfig = field(default_factory=GroundingConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    timing: TimingConfig = field(default_factory=TimingConfig)

    def __post_init__(self) -> None:
        for name, cls in (('grounding', GroundingConfig), ('safety', SafetyConfig),
                          ('timing', TimingConfig)):
            if not isinstance(getattr(self, name), cls):
                raise ConfigError(f'PipelineConfig.{name} must be a {cls.__name__}')
        g, s = self.grounding, self.safety
        # A plan that can never pass the gate is a configuration error, not a runtime one.
        if g.insert_approach:
            for name in ('grasp_offset_m', 'place_m'):
                drop = abs(g.approach_m - getattr(g, name))
                if drop > s.max_step_m:
                    raise ConfigError(
                        f'heights.approach_m - heights.{name} = {drop:.3f} m exceeds '
                        f'safety.max_step_m = {s.max_step_m}: every plan would be rejected')

    @classmethod
    def flat_defaults(cls) -> Dict[str, ParamSpec]:
        """Every flat parameter with its default (doubles as float), type, range, meaning."""
        defaults = cls().to_flat()
        out = {}
        for s in SPECS:
            value = defaults[s.name]
            if s.type == 'double_array':
                value = [float(v) for v in value]
            elif s.type == 'double':
                value = float(value)
            out[s.name] = replace(s, default=value)
        return out

    def to_flat(self) -> Dict[str, Any]:
        """Flat ``{name: value}`` (arrays as lists), the inverse of ``from_flat``."""
        out: Dict[str, Any] = {}
        for spec in SPECS:
            section, attr = _WHERE[spec.name]
            value = getattr(getattr(self, section), attr)
            out[spec.name] = list(value) if spec.type == 'double_array' else value
        return out

    @classmethod
    def from_flat(cls, values: Mapping[str, Any]) -> 'PipelineConfig':
        """Build from flat parameter values; absent names keep their defaults.

        Unknown names and wrongly typed values raise ConfigError naming the parameter (with
        the closest known name for a typo), so a misspelt YAML key is not silently ignored.
        """
        unknown = [k for k in values if k not in _BY_NAME]
        if unknown:
            hints = []
            for k in unknown:
                close = difflib.get_close_matches(str(k), list(_BY_NAME), n=1)
                hints.append(f'{k!r}' + (f' (did you mean {close[0]!r}?)' if close else ''))
            raise ConfigError('unknown pipeline parameter(s): ' + ', '.join(hints))
        sections: Dict[str, Dict[str, Any]] = {'grounding': {}, 'safety': {}, 'timing': {}}
        for name, raw in values.items():
            section, attr = _WHERE[name]
            sections[section][attr] = _BY_NAME[name].coerce(raw)
        return cls(GroundingConfig(**sections['grounding']),
                   SafetyConfig(**sections['safety']),
                   TimingConfig(**sections['timing']))

    def with_changes(self, changes: Mapping[str, Any]) -> 'PipelineConfig':
        """Return a new config with some flat parameters changed (validated as a whole)."""
        return PipelineConfig.from_flat({**self.to_flat(), **dict(changes)})


__all__ = ['PipelineConfig', 'ParamSpec', 'SPECS', 'TYPES']
