"""The simulator's one validated, immutable configuration (``config/sim.yaml``).

Every knob of the tabletop task lives here so the sim node's ROS parameters, the episode
runner's CLI flags and the benchmark all map onto the same object and are checked in one
place (``__post_init__`` raises ``ConfigError`` naming the bad field).
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

import yaml

from cosmos_planner.errors import ConfigError

Vec3 = Tuple[float, float, float]
RGBA = Tuple[float, float, float, float]

SHAPES = ('box', 'cylinder')


@dataclass(frozen=True)
class ObjectSpec:
    """One graspable object: shape, half sizes in metres, colour, and the name a task uses."""

    name: str
    label: str
    shape: str = 'box'
    #: box: half extents (x, y, z); cylinder: (radius, half height, unused).
    size: Vec3 = (0.02, 0.02, 0.02)
    rgba: RGBA = (0.85, 0.1, 0.1, 1.0)
    mass: float = 0.05

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ConfigError(f'object name {self.name!r} must be an identifier')
        if self.shape not in SHAPES:
            raise ConfigError(f'object {self.name}: shape {self.shape!r} not in {SHAPES}')
        if len(self.size) != 3 or min(self.size[:2]) <= 0 or self.size[1] <= 0:
            raise ConfigError(f'object {self.name}: size {self.size} must be 3 positive halves')
        if self.mass <= 0:
            raise ConfigError(f'object {self.name}: mass must be > 0')

    @property
    def half_height(self) -> float:
        """Half of the object's vertical extent (resting height of its centre on a plane)."""
        return self.size[2] if self.shape == 'box' else self.size[1]

    @property
    def footprint_radius(self) -> float:
        """Radius of a circle that covers the object seen from above (for placement)."""
        if self.shape == 'box':
            return float((self.size[0] ** 2 + self.size[1] ** 2) ** 0.5)
        return float(self.size[0])


def _default_objects() -> Tuple[ObjectSpec, ...]:
    return (
        ObjectSpec('red_cube', 'red cube', 'box', (0.02, 0.02, 0.02), (0.85, 0.1, 0.1, 1.0)),
        ObjectSpec('green_cylinder', 'green cylinder', 'cylinder', (0.018, 0.03, 0.0),
                   (0.1, 0.7, 0.2, 1.0)),
        ObjectSpec('blue_block', 'blue block', 'box', (0.03, 0.015, 0.015),
                   (0.15, 0.25, 0.85, 1.0)),
    )


@dataclass(frozen=True)
class SimConfig:
    """Tabletop task, camera, stepping and episode settings.

    World frame ``world``: origin at the table-top centre, z up, x right and y away from
    the camera. Sizes in metres, times in seconds of sim time.
    """

    # Camera (Isaac Sim's ROS 2 bridge conventions: frame id, rgb8, 32FC1 metres).
    width: int = 320
    height: int = 240
    fovy_deg: float = 50.0
    camera_pos: Vec3 = (0.0, -0.30, 0.66)
    camera_target: Vec3 = (0.0, 0.03, 0.0)
    camera_rate_hz: float = 5.0
    camera_frame_id: str = 'sim_camera'
    world_frame_id: str = 'world'
    shadows: bool = False
    # Stepping.
    physics_dt: float = 0.002
    control_dt: float = 0.01
    clock_rate_hz: float = 100.0
    #: Sim seconds per wall second; 0 runs as fast as the CPU allows.
    real_time_factor: float = 1.0
    # Task.
    objects: Tuple[ObjectSpec, ...] = field(default_factory=_default_objects)
    target: str = 'red_cube'
    #: Inner half extents of the basket (x, y) and its wall height.
    basket_half: Tuple[float, float] = (0.075, 0.075)
    basket_wall: float = 0.05
    basket_wall_thickness: float = 0.008
    #: Region (x_min, x_max, y_min, y_max) where objects and the basket are placed.
    table_region: Tuple[float, float, float, float] = (-0.26, 0.26, -0.17, 0.17)
    table_half: Tuple[float, float] = (0.45, 0.35)
    gripper_home: Vec3 = (0.0, -0.08, 0.16)
    #: Open finger half gap; objects narrower than this fit between the fingers.
    finger_open: float = 0.045
    # Episode.
    seed: int = 0
    time_limit_s: float = 40.0
    #: Linear speed (m/s) below which the object counts as at rest.
    rest_speed: float = 0.03

    def __post_init__(self) -> None:
        def positive(name: str) -> None:
            if not getattr(self, name) > 0:
                raise ConfigError(f'sim config: {name} must be > 0, got {getattr(self, name)}')

        for name in ('width', 'height', 'fovy_deg', 'camera_rate_hz', 'physics_dt',
                     'control_dt', 'clock_rate_hz', 'time_limit_s', 'basket_wall',
                     'basket_wall_thickness', 'finger_open', 'rest_speed'):
            positive(name)
        if not 1.0 <= self.fovy_deg < 170.0:
            raise ConfigError(f'sim config: fovy_deg {self.fovy_deg} outside [1, 170)')
        if self.width > 4096 or self.height > 4096:
            raise ConfigError('sim config: width/height above 4096')
        if self.real_time_factor < 0:
            raise ConfigError('sim config: real_time_factor must be >= 0 (0: as fast as possible)')
        if self.control_dt < self.physics_dt:
            raise ConfigError('sim config: control_dt must be >= physics_dt')
        if not self.objects:
            raise ConfigError('sim config: at least one object is needed')
        names = [o.name for o in self.objects]
        if len(set(names)) != len(names):
            raise ConfigError(f'sim config: duplicate object names {names}')
        if self.target not in names:
            raise ConfigError(f'sim config: target {self.target!r} not among objects {names}')
        x0, x1, y0, y1 = self.table_region
        if not (x0 < x1 and y0 < y1):
            raise ConfigError(f'sim config: table_region {self.table_region} is empty')
        if abs(x0) > self.table_half[0] or abs(x1) > self.table_half[0] or \
                abs(y0) > self.table_half[1] or abs(y1) > self.table_half[1]:
            raise ConfigError('sim config: table_region must lie on the table')
        for obj in self.objects:
            if obj.footprint_radius >= min(self.basket_half):
                raise ConfigError(f'sim config: object {obj.name} does not fit the basket')
        if self.camera_pos == self.camera_target:
            raise ConfigError('sim config: camera_pos equals camera_target')

    @property
    def target_spec(self) -> ObjectSpec:
        """Return the object the task asks to move."""
        return next(o for o in self.objects if o.name == self.target)

    @property
    def steps_per_control(self) -> int:
        """Physics steps per control tick (the follower updates once per tick)."""
        return max(1, int(round(self.control_dt / self.physics_dt)))

    def replace(self, **changes: Any) -> 'SimConfig':
        """Return a validated copy with some fields changed (configs are immutable)."""
        return dataclasses.replace(self, **changes)


def _coerce(name: str, value: Any) -> Any:
    if name == 'objects':
        if not isinstance(value, (list, tuple)):
            raise ConfigError('sim config: objects must be a list')
        out = []
        for item in value:
            if not isinstance(item, Mapping):
                raise ConfigError(f'sim config: object entry {item!r} must be a mapping')
            spec = dict(item)
            for key in ('size', 'rgba'):
                if key in spec:
                    spec[key] = tuple(float(v) for v in spec[key])
            try:
                out.append(ObjectSpec(**spec))
            except TypeError as exc:
                raise ConfigError(f'sim config: bad object entry {item!r}: {exc}') from None
        return tuple(out)
    if isinstance(value, list):
        return tuple(value)
    return value


def sim_config_from_dict(values: Mapping[str, Any],
                         base: Optional[SimConfig] = None) -> SimConfig:
    """Build a config from a mapping (YAML, ROS parameters, CLI); unknown keys are errors."""
    known = {f.name for f in dataclasses.fields(SimConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f'sim config: unknown keys {unknown}; valid: {sorted(known)}')
    changes: Dict[str, Any] = {k: _coerce(k, v) for k, v in values.items()}
    try:
        return dataclasses.replace(base or SimConfig(), **changes)
    except TypeError as exc:
        raise ConfigError(f'sim config: {exc}') from None


def load_sim_config(path: Optional[Path] = None, **overrides: Any) -> SimConfig:
    """Read ``config/sim.yaml`` (or ``path``), then apply ``overrides`` (None values skipped).

    The YAML holds a ``sim:`` mapping so the same file can later carry other sections.
    """
    if path is None:
        from cosmos_planner.resources import config_path
        path = config_path('sim.yaml')
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f'cannot read sim config {path}: {exc}') from None
    section = data.get('sim', data) if isinstance(data, Mapping) else None
    if not isinstance(section, Mapping):
        raise ConfigError(f'sim config {path}: expected a mapping under "sim:"')
    cfg = sim_config_from_dict(section)
    extra = {k: v for k, v in overrides.items() if v is not None}
    return sim_config_from_dict(extra, cfg) if extra else cfg
