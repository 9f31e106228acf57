"""What the planner publishes, built once as neutral records (no ROS needed).

The node and the offline bag replay publish the same messages. Each output is built here,
once, as a :class:`Msg`: a ROS type name (``nav_msgs/msg/Path``) and its fields, nested
records for nested messages. Two thin serializers turn a record into bytes on the wire:
:func:`cosmos_planner.ros.messages.to_ros` (rclpy messages, the node) and
:func:`cosmos_planner.bag.writer.to_rosbags` (``rosbags`` typestore messages, the replay's
output bag), so the replay needs no ROS install and cannot drift from the node.

Field values are plain Python: numbers, strings, ``bytes`` (``uint8[]``), lists of numbers
or strings, a :class:`Msg` or a list of them. A field left out takes its message
definition's default (zero, empty, and ``w = 1`` for a ``geometry_msgs/Quaternion``).

Output conventions (documented in the README's ROS interface table):

* every header carries the plan's stamp (the newest primary frame used) and frame id;
* ``~/trajectory`` has one joint (``ee_joint``) whose transform per point is the gripper pose
  in the plan's frame, ``time_from_start`` from the timed trajectory;
* ``~/gripper`` has one joint (``gripper.joint_name``) whose position per point is
  ``gripper.open_position`` while the commanded state is open and
  ``gripper.closed_position`` while closed (metres of finger opening for a parallel
  gripper); the gripper is open before the first command; a command is issued on arrival
  at its waypoint and, with ``timing.gripper_dwell_s``, the arm holds still while it acts;
  same timing as ``~/trajectory``;
* a cancel publishes a *hold*: a trajectory with a single point at the current end-effector
  pose (or no point at all when the pose is unknown, which trajectory controllers treat as
  "stop"), an empty path and a marker ``DELETEALL``.
"""

from dataclasses import dataclass
import json
from typing import Any, Dict, List, Mapping, Optional, Protocol, Tuple, TYPE_CHECKING

import numpy as np

from cosmos_planner.errors import ImageDecodeError
from cosmos_planner.geometry.transforms import Vector
from cosmos_planner.model.plan_schema import PlanV1

if TYPE_CHECKING:
    from cosmos_planner.frames.types import Frame
    from cosmos_planner.geometry.timing import TimingConfig

#: Topic suffixes (below the node's private namespace ``~/``) of the output messages.
OUTPUT_TOPICS = ('plan', 'path', 'trajectory', 'gripper', 'markers', 'debug_image')
#: Publication order of one plan: ``~/plan`` last, so a consumer reacting to it has every
#: other topic of that plan.
PUBLISH_ORDER = ('trajectory', 'gripper', 'path', 'markers', 'debug_image', 'plan')
#: ROS type of each output topic.
OUTPUT_TYPES = {'plan': 'std_msgs/msg/String', 'path': 'nav_msgs/msg/Path',
                'trajectory': 'trajectory_msgs/msg/MultiDOFJointTrajectory',
                'gripper': 'trajectory_msgs/msg/JointTrajectory',
                'markers': 'visualization_msgs/msg/MarkerArray',
                'debug_image': 'sensor_msgs/msg/Image'}
IDENTITY_XYZW = (0.0, 0.0, 0.0, 1.0)
# visualization_msgs/Marker constants (the record carries numbers, not a ROS class).
MARKER_ADD = 0
MARKER_DELETEALL = 3
MARKER_LINE_STRIP = 4
MARKER_SPHERE_LIST = 7
MARKER_TEXT_VIEW_FACING = 9


@dataclass(frozen=True)
class Msg:
    """One message as data: its ROS type (``pkg/msg/Name``) and the fields that are set."""

    type: str
    fields: Mapping[str, Any]


class TimedTrajectoryLike(Protocol):
    """What the builders read from ``cosmos_planner.geometry.timing.TimedTrajectory``.

    Read-only members, so the frozen dataclass satisfies it.
    """

    @property
    def frame_id(self) -> str: ...
    @property
    def stamp_ns(self) -> int: ...
    @property
    def times_s(self) -> np.ndarray: ...
    @property
    def positions(self) -> np.ndarray: ...
    @property
    def orientation_xyzw(self) -> Tuple[float, float, float, float]: ...
    @property
    def gripper(self) -> Tuple[Optional[str], ...]: ...
    @property
    def gripper_state(self) -> Tuple[str, ...]: ...


@dataclass(frozen=True)
class GripperSpec:
    """How the gripper schedule becomes a one-joint ``JointTrajectory``.

    Positions are the gripper joint's own units (``gripper.open_position`` /
    ``gripper.closed_position`` of the pipeline config; metres of finger opening for a
    parallel gripper).
    """

    joint_name: str = 'gripper'
    open_position: float = 0.04
    closed_position: float = 0.0

    @classmethod
    def from_timing(cls, timing: 'TimingConfig') -> 'GripperSpec':
        """From ``cosmos_planner.geometry.timing.TimingConfig`` (the one place these are set)."""
        return cls(timing.gripper_joint, float(timing.gripper_open_position),
                   float(timing.gripper_closed_position))


# --- small records ----------------------------------------------------------------------

def time_record(stamp_ns: int) -> Msg:
    """``builtin_interfaces/Time`` of integer nanoseconds; negative times clamp to zero."""
    stamp_ns = max(0, int(stamp_ns))
    return Msg('builtin_interfaces/msg/Time',
               {'sec': stamp_ns // 1_000_000_000, 'nanosec': stamp_ns % 1_000_000_000})


def duration_record(seconds: float) -> Msg:
    """``builtin_interfaces/Duration`` of float seconds, rounded to the nanosecond."""
    total = int(round(float(seconds) * 1e9))
    return Msg('builtin_interfaces/msg/Duration',
               {'sec': total // 1_000_000_000, 'nanosec': total % 1_000_000_000})


def header_record(stamp_ns: int, frame_id: str) -> Msg:
    """``std_msgs/Header`` with the given stamp (ROS time, ns) and frame id."""
    return Msg('std_msgs/msg/Header', {'stamp': time_record(stamp_ns), 'frame_id': frame_id})


def _point(x: float, y: float, z: float) -> Msg:
    return Msg('geometry_msgs/msg/Point', {'x': float(x), 'y': float(y), 'z': float(z)})


def _vector3(x: float, y: float, z: float) -> Msg:
    return Msg('geometry_msgs/msg/Vector3', {'x': float(x), 'y': float(y), 'z': float(z)})


def _quaternion(xyzw: Vector) -> Msg:
    x, y, z, w = (float(v) for v in xyzw)
    return Msg('geometry_msgs/msg/Quaternion', {'x': x, 'y': y, 'z': z, 'w': w})


def _pose(position: Msg, orientation: Msg) -> Msg:
    return Msg('geometry_msgs/msg/Pose', {'position': position, 'orientation': orientation})


def _color(r: float, g: float, b: float, a: float = 1.0) -> Msg:
    return Msg('std_msgs/msg/ColorRGBA', {'r': r, 'g': g, 'b': b, 'a': a})


def string_record(data: str) -> Msg:
    """``std_msgs/String``."""
    return Msg('std_msgs/msg/String', {'data': data})


def _orientations(traj: TimedTrajectoryLike, n: int) -> np.ndarray:
    """One xyzw orientation per point (the trajectory carries one for all points)."""
    ori = getattr(traj, 'orientation_xyzw', None)
    ori = np.asarray(ori if ori is not None else IDENTITY_XYZW, dtype=np.float64)
    if ori.ndim == 1:
        ori = np.tile(ori.reshape(1, 4), (n, 1))
    return ori


def _gripper_commands(traj: TimedTrajectoryLike, n: int) -> Tuple[Optional[str], ...]:
    cmds = getattr(traj, 'gripper', None)
    if cmds is None:
        return (None,) * n
    return tuple(cmds)


# --- outputs of one plan ----------------------------------------------------------------

def plan_stamp_ns(plan: PlanV1) -> int:
    """Return the plan's stamp as integer nanoseconds (PlanV1 stores float seconds)."""
    return int(round(plan.stamp * 1e9))


def plan_record(plan: PlanV1) -> Msg:
    """``~/plan``: the PlanV1 JSON with its ``schema`` key (by alias), compact."""
    return string_record(plan.model_dump_json(by_alias=True))


def path_record(traj: TimedTrajectoryLike) -> Msg:
    """``~/path``: the gripper waypoints as poses, all stamped with the plan's stamp."""
    positions = np.asarray(traj.positions, dtype=np.float64).reshape(-1, 3)
    ori = _orientations(traj, len(positions))
    # Python floats once per array, not numpy scalars per field: this runs on every publish.
    poses = [Msg('geometry_msgs/msg/PoseStamped', {
        'header': header_record(traj.stamp_ns, traj.frame_id),
        'pose': _pose(_point(*pos), _quaternion(q))})
        for pos, q in zip(positions.tolist(), ori.tolist())]
    return Msg('nav_msgs/msg/Path', {'header': header_record(traj.stamp_ns, traj.frame_id),
                                     'poses': poses})


def trajectory_record(traj: TimedTrajectoryLike, ee_joint: str = 'end_effector') -> Msg:
    """``~/trajectory``: one joint whose transform per point is the gripper pose.

    Velocities are the finite-difference Cartesian velocity towards the next point (zero at
    the last), so a controller that interpolates sees the same speed profile as the timing.
    """
    positions = np.asarray(traj.positions, dtype=np.float64).reshape(-1, 3)
    times = np.asarray(traj.times_s, dtype=np.float64).reshape(-1)
    ori = _orientations(traj, len(positions))
    velocities = np.zeros_like(positions)
    if len(positions) > 1:
        dt = np.diff(times)
        moving = dt > 0
        velocities[:-1][moving] = (np.diff(positions, axis=0)[moving]
                                   / dt[moving].reshape(-1, 1))
    points = []
    for pos, q, t, vel in zip(positions.tolist(), ori.tolist(), times.tolist(),
                              velocities.tolist()):
        points.append(Msg('trajectory_msgs/msg/MultiDOFJointTrajectoryPoint', {
            'transforms': [Msg('geometry_msgs/msg/Transform', {
                'translation': _vector3(*pos), 'rotation': _quaternion(q)})],
            'velocities': [Msg('geometry_msgs/msg/Twist', {'linear': _vector3(*vel)})],
            'time_from_start': duration_record(t)}))
    return Msg('trajectory_msgs/msg/MultiDOFJointTrajectory', {
        'header': header_record(traj.stamp_ns, traj.frame_id), 'joint_names': [ee_joint],
        'points': points})


def gripper_record(traj: TimedTrajectoryLike, spec: GripperSpec) -> Msg:
    """``~/gripper``: the commanded gripper state per point, same timing as the trajectory.

    Uses the timing's ``gripper_state`` (the state the gripper should be in at each time,
    open before the first command), so with a dwell the gripper moves while the arm holds.
    """
    times = np.asarray(traj.times_s, dtype=np.float64).reshape(-1)
    points = []
    for t, state in zip(times.tolist(), tuple(traj.gripper_state)):
        if state not in ('open', 'close'):
            raise ValueError(f'unknown gripper state {state!r} (expected open or close)')
        pos = spec.closed_position if state == 'close' else spec.open_position
        points.append(Msg('trajectory_msgs/msg/JointTrajectoryPoint', {
            'positions': [float(pos)], 'time_from_start': duration_record(t)}))
    return Msg('trajectory_msgs/msg/JointTrajectory', {
        'header': header_record(traj.stamp_ns, traj.frame_id),
        'joint_names': [spec.joint_name], 'points': points})


def _marker(header: Msg, namespace: str, marker_id: int, **fields: Any) -> Msg:
    """Build a ``visualization_msgs/Marker``; its pose is the identity unless given."""
    fields.setdefault('pose', _pose(_point(0.0, 0.0, 0.0), _quaternion(IDENTITY_XYZW)))
    return Msg('visualization_msgs/msg/Marker',
               dict(header=header, ns=namespace, id=marker_id, **fields))


def markers_record(plan: PlanV1, traj: TimedTrajectoryLike,
                   namespace: str = 'cosmos_planner') -> Msg:
    """``~/markers``: clear old markers, then the path line, waypoint spheres, action text.

    Gripper commands colour the waypoints (green open, red close, grey unchanged) so the
    schedule is visible in RViz.
    """
    header = header_record(traj.stamp_ns, traj.frame_id)
    positions = np.asarray(traj.positions, dtype=np.float64).reshape(-1, 3)
    points = [_point(*p) for p in positions.tolist()]
    palette = {'open': _color(0.1, 0.9, 0.2), 'close': _color(0.95, 0.1, 0.1),
               None: _color(0.7, 0.7, 0.7)}
    markers = [
        _marker(header, namespace, 0, action=MARKER_DELETEALL),
        _marker(header, namespace, 1, type=MARKER_LINE_STRIP, action=MARKER_ADD,
                points=points, color=_color(0.1, 0.6, 1.0),
                scale=_vector3(0.005, 0.0, 0.0)),
        _marker(header, namespace, 2, type=MARKER_SPHERE_LIST, action=MARKER_ADD,
                points=points, scale=_vector3(0.015, 0.015, 0.015),
                colors=[palette.get(c, palette[None])
                        for c in _gripper_commands(traj, len(points))],
                color=_color(0.7, 0.7, 0.7))]
    if plan.next_action and len(positions):
        x, y, z = (float(v) for v in positions[0])
        markers.append(_marker(
            header, namespace, 3, type=MARKER_TEXT_VIEW_FACING, action=MARKER_ADD,
            text=plan.next_action, color=_color(1.0, 1.0, 1.0),
            pose=_pose(_point(x, y, z + 0.05), _quaternion(IDENTITY_XYZW)),
            scale=_vector3(0.0, 0.0, 0.03)))
    return Msg('visualization_msgs/msg/MarkerArray', {'markers': markers})


def image_record(image: np.ndarray, stamp_ns: int, frame_id: str) -> Msg:
    """Build an ``rgb8`` ``sensor_msgs/Image`` of an HxWx3 uint8 array (debug images)."""
    arr = np.ascontiguousarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ImageDecodeError(
            f'debug image must be HxWx3 uint8, got {arr.shape} {arr.dtype}', kind='bad_shape')
    return Msg('sensor_msgs/msg/Image', {
        'header': header_record(stamp_ns, frame_id), 'height': arr.shape[0],
        'width': arr.shape[1], 'encoding': 'rgb8', 'is_bigendian': 0,
        'step': arr.shape[1] * 3, 'data': arr.tobytes()})


def debug_image_record(plan: PlanV1, frame: 'Frame') -> Msg:
    """``~/debug_image``: the primary frame (as the model saw it) with the plan drawn on it.

    The plan's pixels are native camera pixels; the frame may have been resized at ingest,
    so points are scaled to the frame's own size before drawing.
    """
    from cosmos_planner.pipeline.annotate import draw_plan

    h, w = frame.image.shape[:2]
    nat_w, nat_h = frame.native_size
    sx, sy = w / float(nat_w), h / float(nat_h)
    points = [(p.pixel[0] * sx, p.pixel[1] * sy) for p in plan.trajectory]
    drawn = draw_plan(frame.image, points, plan.next_action)
    return image_record(np.asarray(drawn), plan_stamp_ns(plan), frame.frame_id)


def build_output_records(plan: PlanV1, trajectory: Optional[TimedTrajectoryLike], *,
                         debug_frame: Optional['Frame'] = None,
                         gripper: GripperSpec = GripperSpec(),
                         ee_joint: str = 'end_effector',
                         marker_ns: str = 'cosmos_planner') -> Dict[str, Msg]:
    """All output records of one validated plan, keyed by topic suffix (``OUTPUT_TOPICS``).

    ``trajectory`` is None when the plan could not be grounded in 3D (then only ``plan`` and
    ``debug_image`` exist); ``debug_frame`` None skips the debug image (it costs a copy and a
    draw, so the node builds it only when someone subscribes).
    """
    out: Dict[str, Msg] = {'plan': plan_record(plan)}
    if trajectory is not None and len(np.asarray(trajectory.times_s).reshape(-1)) > 0:
        out['path'] = path_record(trajectory)
        out['trajectory'] = trajectory_record(trajectory, ee_joint)
        out['gripper'] = gripper_record(trajectory, gripper)
        out['markers'] = markers_record(plan, trajectory, marker_ns)
    if debug_frame is not None:
        out['debug_image'] = debug_image_record(plan, debug_frame)
    return out


def ordered(records: Mapping[str, Msg]) -> List[Tuple[str, Msg]]:
    """``(topic suffix, record)`` in ``PUBLISH_ORDER`` (``~/plan`` last)."""
    return [(name, records[name]) for name in PUBLISH_ORDER if name in records]


def build_hold_records(stamp_ns: int, frame_id: str, *,
                       hold_position: Optional[Vector] = None,
                       hold_orientation: Vector = IDENTITY_XYZW,
                       ee_joint: str = 'end_effector',
                       marker_ns: str = 'cosmos_planner') -> Dict[str, Msg]:
    """Build the records that stop a controller executing the previous plan (cancel, reset).

    With a known end-effector position the trajectory holds it (one point at time 0);
    without one it is empty, which trajectory controllers treat as "stop". Path is empty
    and markers are cleared, so displays do not show a plan that no longer runs.
    """
    header = header_record(stamp_ns, frame_id)
    points = []
    if hold_position is not None:
        points.append(Msg('trajectory_msgs/msg/MultiDOFJointTrajectoryPoint', {
            'transforms': [Msg('geometry_msgs/msg/Transform', {
                'translation': _vector3(*hold_position),
                'rotation': _quaternion(hold_orientation)})],
            'time_from_start': duration_record(0.0)}))
    return {'trajectory': Msg('trajectory_msgs/msg/MultiDOFJointTrajectory', {
                'header': header, 'joint_names': [ee_joint], 'points': points}),
            'path': Msg('nav_msgs/msg/Path', {'header': header}),
            'markers': Msg('visualization_msgs/msg/MarkerArray', {
                'markers': [_marker(header, marker_ns, 0, action=MARKER_DELETEALL)]})}


# --- ~/status -----------------------------------------------------------------------------

def status_fields(status: str, node: str, time_ns: int, **fields: Any) -> Dict[str, Any]:
    """One ``~/status`` event: the given fields without empty ones, plus status/node/time."""
    out = {k: v for k, v in fields.items() if v is not None and v != ''}
    out.update(status=status, node=node, time=time_ns * 1e-9)
    return out


def status_record(fields: Mapping[str, Any]) -> Msg:
    """``~/status``: one JSON object per event (planned, rejected, failed, cancelled, ...)."""
    return string_record(json.dumps(dict(fields), sort_keys=True, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if hasattr(value, 'value'):
        return value.value
    return str(value)
