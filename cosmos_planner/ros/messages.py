"""Pure conversions between ROS messages and the planner core; no node, no executor.

The live node and the offline bag replay both build their output messages here, so a plan
replayed from a bag is published exactly as the node would have published it. Inputs
(``Image``, ``CompressedImage``, ``CameraInfo``, ``PoseStamped``) become core objects
(``Frame``, ``DepthFrame``, ``CameraModel``, positions); outputs are built from a validated
``PlanV1`` and its ``TimedTrajectory``.

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

import json
import math
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Protocol, Sequence, Tuple

from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import Point, Pose, PoseStamped, Quaternion, Transform, Twist, Vector3
from nav_msgs.msg import Path
import numpy as np
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import ColorRGBA, Header, String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from trajectory_msgs.msg import MultiDOFJointTrajectory, MultiDOFJointTrajectoryPoint
from visualization_msgs.msg import Marker, MarkerArray

from cosmos_planner.errors import GroundingError, ImageDecodeError
from cosmos_planner.frames.types import DepthFrame, Frame
from cosmos_planner.model.plan_schema import PlanV1

#: Topic suffixes (below the node's private namespace ``~/``) of the output messages.
OUTPUT_TOPICS = ('plan', 'path', 'trajectory', 'gripper', 'markers', 'debug_image')
IDENTITY_XYZW = (0.0, 0.0, 0.0, 1.0)


class TimedTrajectoryLike(Protocol):
    """What the builders read from ``cosmos_planner.geometry.timing.TimedTrajectory``."""

    frame_id: str
    stamp_ns: int
    times_s: Any
    positions: Any
    orientation_xyzw: Any
    gripper: Any
    gripper_state: Any


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
    def from_timing(cls, timing: Any) -> 'GripperSpec':
        """From ``cosmos_planner.geometry.timing.TimingConfig`` (the one place these are set)."""
        return cls(timing.gripper_joint, float(timing.gripper_open_position),
                   float(timing.gripper_closed_position))


# --- time ------------------------------------------------------------------------------

def stamp_to_ns(stamp: Time) -> int:
    """``builtin_interfaces/Time`` to integer nanoseconds (exact, no float rounding)."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(stamp_ns: int) -> Time:
    """Integer nanoseconds to ``builtin_interfaces/Time``; negative times clamp to zero."""
    stamp_ns = max(0, int(stamp_ns))
    return Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)


def seconds_to_duration(seconds: float) -> Duration:
    """Seconds to ``builtin_interfaces/Duration`` rounded to the nanosecond."""
    total = int(round(float(seconds) * 1e9))
    return Duration(sec=total // 1_000_000_000, nanosec=total % 1_000_000_000)


def duration_to_seconds(duration: Duration) -> float:
    """``builtin_interfaces/Duration`` to float seconds."""
    return duration.sec + duration.nanosec * 1e-9


def make_header(stamp_ns: int, frame_id: str) -> Header:
    """Build a header with the given stamp (ROS time, ns) and frame id."""
    return Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id)


# --- inputs ----------------------------------------------------------------------------

def frame_from_image_msg(msg: Image, ingest: Any, camera: str) -> Frame:
    """Decode a raw ``sensor_msgs/Image`` into a ``Frame`` stamped with its header time.

    ``ingest`` is a ``frames.ingest.FrameIngest``; it raises ``ImageDecodeError`` for
    a wrong step, an unknown encoding or a size that does not match the data.
    """
    return ingest.image(msg, camera, stamp_to_ns(msg.header.stamp), msg.header.frame_id)


def frame_from_compressed_msg(msg: Any, ingest: Any, camera: str) -> Frame:
    """Decode a ``sensor_msgs/CompressedImage`` (jpeg/png) into a ``Frame``."""
    return ingest.compressed(msg, camera, stamp_to_ns(msg.header.stamp), msg.header.frame_id)


def depth_from_msg(msg: Any, ingest: Any, camera: str) -> DepthFrame:
    """Decode a registered depth image (raw 32FC1/16UC1 or ``compressedDepth``)."""
    return ingest.depth(msg, camera, stamp_to_ns(msg.header.stamp), msg.header.frame_id)


def camera_model_from_info(info: CameraInfo) -> Any:
    """Build a ``geometry.camera_model.CameraModel`` from ``sensor_msgs/CameraInfo``.

    Raises ``GroundingError`` when the message describes no usable calibration (zero size or
    zero focal lengths: an uncalibrated driver), because grounding with it would silently put
    every point at infinity. Binning and ROI are applied to the intrinsics so the model maps
    the pixels of the image actually published.
    """
    from cosmos_planner.geometry.camera_model import CameraModel

    k = np.asarray(info.k, dtype=np.float64).reshape(3, 3)
    width, height = int(info.width), int(info.height)
    if width <= 0 or height <= 0:
        raise GroundingError(f'camera_info {info.header.frame_id!r}: size {width}x{height}')
    if not (k[0, 0] > 0 and k[1, 1] > 0) or not np.all(np.isfinite(k)):
        raise GroundingError(
            f'camera_info {info.header.frame_id!r} is uncalibrated (fx={k[0, 0]}, '
            f'fy={k[1, 1]}); calibrate the camera or publish its intrinsics')
    bin_x, bin_y = max(1, int(info.binning_x)), max(1, int(info.binning_y))
    roi = info.roi
    if roi.width and roi.height:
        k[0, 2] -= roi.x_offset
        k[1, 2] -= roi.y_offset
        width, height = int(roi.width), int(roi.height)
    if bin_x > 1 or bin_y > 1:
        k[0, :] /= bin_x
        k[1, :] /= bin_y
        width, height = width // bin_x, height // bin_y
    d = np.asarray(info.d, dtype=np.float64)
    return CameraModel(width=width, height=height, K=k, D=d,
                       distortion_model=info.distortion_model or 'plumb_bob',
                       frame_id=info.header.frame_id)


def pose_from_msg(msg: PoseStamped) -> Tuple[int, str, np.ndarray, np.ndarray]:
    """``PoseStamped`` to ``(stamp_ns, frame_id, position xyz, orientation xyzw)``."""
    p, q = msg.pose.position, msg.pose.orientation
    quat = np.array([q.x, q.y, q.z, q.w], dtype=np.float64)
    norm = float(np.linalg.norm(quat))
    if not math.isfinite(norm) or norm < 1e-9:
        raise ValueError(f'end-effector pose in {msg.header.frame_id!r} has a zero quaternion')
    position = np.array([p.x, p.y, p.z], dtype=np.float64)
    if not np.all(np.isfinite(position)):
        raise ValueError(f'end-effector pose in {msg.header.frame_id!r} is not finite')
    return stamp_to_ns(msg.header.stamp), msg.header.frame_id, position, quat / norm


def image_msg_from_rgb(image: np.ndarray, stamp_ns: int, frame_id: str) -> Image:
    """Build an ``rgb8`` ``sensor_msgs/Image`` from an HxWx3 uint8 array (debug images)."""
    arr = np.ascontiguousarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ImageDecodeError(
            f'debug image must be HxWx3 uint8, got {arr.shape} {arr.dtype}', kind='bad_shape')
    msg = Image(header=make_header(stamp_ns, frame_id), height=arr.shape[0],
                width=arr.shape[1], encoding='rgb8', is_bigendian=0, step=arr.shape[1] * 3)
    msg.data = arr.tobytes()
    return msg


# --- outputs ---------------------------------------------------------------------------

def _quaternion(xyzw: Sequence[float]) -> Quaternion:
    x, y, z, w = (float(v) for v in xyzw)
    return Quaternion(x=x, y=y, z=z, w=w)


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


def plan_message(plan: PlanV1) -> String:
    """``~/plan``: the PlanV1 JSON with its ``schema`` key (by alias), compact."""
    return String(data=plan.model_dump_json(by_alias=True))


def path_message(traj: TimedTrajectoryLike) -> Path:
    """``~/path``: the gripper waypoints as poses, all stamped with the plan's stamp."""
    header = make_header(traj.stamp_ns, traj.frame_id)
    positions = np.asarray(traj.positions, dtype=np.float64).reshape(-1, 3)
    ori = _orientations(traj, len(positions))
    path = Path(header=header)
    for pos, q in zip(positions, ori):
        pose = PoseStamped(header=make_header(traj.stamp_ns, traj.frame_id))
        pose.pose = Pose(position=Point(x=float(pos[0]), y=float(pos[1]), z=float(pos[2])),
                         orientation=_quaternion(q))
        path.poses.append(pose)
    return path


def trajectory_message(traj: TimedTrajectoryLike,
                       ee_joint: str = 'end_effector') -> MultiDOFJointTrajectory:
    """``~/trajectory``: one joint whose transform per point is the gripper pose.

    Velocities are the finite-difference Cartesian velocity towards the next point (zero at
    the last), so a controller that interpolates sees the same speed profile as the timing.
    """
    positions = np.asarray(traj.positions, dtype=np.float64).reshape(-1, 3)
    times = np.asarray(traj.times_s, dtype=np.float64).reshape(-1)
    ori = _orientations(traj, len(positions))
    msg = MultiDOFJointTrajectory(header=make_header(traj.stamp_ns, traj.frame_id),
                                  joint_names=[ee_joint])
    for i, (pos, q, t) in enumerate(zip(positions, ori, times)):
        point = MultiDOFJointTrajectoryPoint()
        point.transforms = [Transform(
            translation=Vector3(x=float(pos[0]), y=float(pos[1]), z=float(pos[2])),
            rotation=_quaternion(q))]
        vel = np.zeros(3)
        if i + 1 < len(positions) and times[i + 1] > t:
            vel = (positions[i + 1] - pos) / (times[i + 1] - t)
        point.velocities = [Twist(linear=Vector3(x=float(vel[0]), y=float(vel[1]),
                                                 z=float(vel[2])))]
        point.time_from_start = seconds_to_duration(t)
        msg.points.append(point)
    return msg


def gripper_message(traj: TimedTrajectoryLike, spec: GripperSpec) -> JointTrajectory:
    """``~/gripper``: the commanded gripper state per point, same timing as the trajectory.

    Uses the timing's ``gripper_state`` (the state the gripper should be in at each time,
    open before the first command), so with a dwell the gripper moves while the arm holds.
    """
    times = np.asarray(traj.times_s, dtype=np.float64).reshape(-1)
    states = tuple(traj.gripper_state)
    msg = JointTrajectory(header=make_header(traj.stamp_ns, traj.frame_id),
                          joint_names=[spec.joint_name])
    for t, state in zip(times, states):
        if state not in ('open', 'close'):
            raise ValueError(f'unknown gripper state {state!r} (expected open or close)')
        pos = spec.closed_position if state == 'close' else spec.open_position
        msg.points.append(JointTrajectoryPoint(
            positions=[float(pos)], time_from_start=seconds_to_duration(t)))
    return msg


def _color(r: float, g: float, b: float, a: float = 1.0) -> ColorRGBA:
    return ColorRGBA(r=r, g=g, b=b, a=a)


def markers_message(plan: PlanV1, traj: TimedTrajectoryLike,
                    namespace: str = 'cosmos_planner') -> MarkerArray:
    """``~/markers``: clear old markers, then the path line, waypoint spheres, action text.

    Gripper commands colour the waypoints (green open, red close, grey unchanged) so the
    schedule is visible in RViz.
    """
    header = make_header(traj.stamp_ns, traj.frame_id)
    positions = np.asarray(traj.positions, dtype=np.float64).reshape(-1, 3)
    points = [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in positions]
    clear = Marker(header=header, ns=namespace, id=0, action=Marker.DELETEALL)
    line = Marker(header=header, ns=namespace, id=1, type=Marker.LINE_STRIP,
                  action=Marker.ADD, points=points, color=_color(0.1, 0.6, 1.0))
    line.pose.orientation.w = 1.0
    line.scale.x = 0.005
    spheres = Marker(header=header, ns=namespace, id=2, type=Marker.SPHERE_LIST,
                     action=Marker.ADD, points=points)
    spheres.pose.orientation.w = 1.0
    spheres.scale = Vector3(x=0.015, y=0.015, z=0.015)
    palette = {'open': _color(0.1, 0.9, 0.2), 'close': _color(0.95, 0.1, 0.1),
               None: _color(0.7, 0.7, 0.7)}
    spheres.colors = [palette.get(c, palette[None])
                      for c in _gripper_commands(traj, len(points))]
    spheres.color = _color(0.7, 0.7, 0.7)
    markers = [clear, line, spheres]
    if plan.next_action and points:
        text = Marker(header=header, ns=namespace, id=3, type=Marker.TEXT_VIEW_FACING,
                      action=Marker.ADD, text=plan.next_action, color=_color(1.0, 1.0, 1.0))
        text.pose.position = Point(x=points[0].x, y=points[0].y, z=points[0].z + 0.05)
        text.pose.orientation.w = 1.0
        text.scale.z = 0.03
        markers.append(text)
    return MarkerArray(markers=markers)


def debug_image_message(plan: PlanV1, frame: Frame) -> Image:
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
    return image_msg_from_rgb(np.asarray(drawn), plan_stamp_ns(plan), frame.frame_id)


def plan_stamp_ns(plan: PlanV1) -> int:
    """Return the plan's stamp as integer nanoseconds (PlanV1 stores float seconds)."""
    return int(round(plan.stamp * 1e9))


def build_output_messages(plan: PlanV1, trajectory: Optional[TimedTrajectoryLike], *,
                          debug_frame: Optional[Frame] = None,
                          gripper: GripperSpec = GripperSpec(),
                          ee_joint: str = 'end_effector',
                          marker_ns: str = 'cosmos_planner') -> Dict[str, Any]:
    """All output messages of one validated plan, keyed by topic suffix (``OUTPUT_TOPICS``).

    ``trajectory`` is None when the plan could not be grounded in 3D (then only ``plan`` and
    ``debug_image`` exist); ``debug_frame`` None skips the debug image (it costs a copy and a
    draw, so the node builds it only when someone subscribes).
    """
    out: Dict[str, Any] = {'plan': plan_message(plan)}
    if trajectory is not None and len(np.asarray(trajectory.times_s).reshape(-1)) > 0:
        out['path'] = path_message(trajectory)
        out['trajectory'] = trajectory_message(trajectory, ee_joint)
        out['gripper'] = gripper_message(trajectory, gripper)
        out['markers'] = markers_message(plan, trajectory, marker_ns)
    if debug_frame is not None:
        out['debug_image'] = debug_image_message(plan, debug_frame)
    return out


def build_hold_messages(stamp_ns: int, frame_id: str, *,
                        hold_position: Optional[Sequence[float]] = None,
                        hold_orientation: Sequence[float] = IDENTITY_XYZW,
                        ee_joint: str = 'end_effector',
                        marker_ns: str = 'cosmos_planner') -> Dict[str, Any]:
    """Messages that stop a controller executing the previous plan (cancel, clock reset).

    With a known end-effector position the trajectory holds it (one point at time 0);
    without one it is empty, which trajectory controllers treat as "stop". Path is empty
    and markers are cleared, so displays do not show a plan that no longer runs.
    """
    header = make_header(stamp_ns, frame_id)
    traj = MultiDOFJointTrajectory(header=header, joint_names=[ee_joint])
    if hold_position is not None:
        x, y, z = (float(v) for v in hold_position)
        point = MultiDOFJointTrajectoryPoint(time_from_start=Duration(sec=0, nanosec=0))
        point.transforms = [Transform(translation=Vector3(x=x, y=y, z=z),
                                      rotation=_quaternion(hold_orientation))]
        traj.points.append(point)
    clear = Marker(header=header, ns=marker_ns, id=0, action=Marker.DELETEALL)
    return {'trajectory': traj, 'path': Path(header=make_header(stamp_ns, frame_id)),
            'markers': MarkerArray(markers=[clear])}


def status_message(fields: Mapping[str, Any]) -> String:
    """``~/status``: one JSON object per event (planned, rejected, failed, cancelled, ...)."""
    return String(data=json.dumps(dict(fields), sort_keys=True, default=_json_default))


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
