"""rclpy side of the message records: records to rclpy messages, and time conversions.

The outputs themselves are built once, without ROS, as records in
:mod:`cosmos_planner.pipeline.outputs` (the offline replay serializes the same records with
``rosbags``); :func:`to_ros` is the node's thin serializer. Inputs (``Image``, ``CameraInfo``,
``PoseStamped``, ...) are read by :mod:`cosmos_planner.pipeline.inputs`, whose conversions are
re-exported here because they are the node's message API.
"""

from functools import lru_cache
import importlib
from typing import Any, Dict, Mapping, Optional, Sequence, TYPE_CHECKING

from builtin_interfaces.msg import Duration, Time
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String

from cosmos_planner.model.plan_schema import PlanV1
from cosmos_planner.pipeline import outputs as o
from cosmos_planner.pipeline.inputs import camera_model_from_info, depth_from_msg
from cosmos_planner.pipeline.inputs import frame_from_compressed_msg, frame_from_image_msg
from cosmos_planner.pipeline.inputs import pose_from_msg, stamp_to_ns
from cosmos_planner.pipeline.outputs import GripperSpec, IDENTITY_XYZW, Msg, OUTPUT_TOPICS
from cosmos_planner.pipeline.outputs import plan_stamp_ns, TimedTrajectoryLike

if TYPE_CHECKING:
    from cosmos_planner.frames.types import Frame

__all__ = ['build_hold_messages', 'build_output_messages', 'camera_model_from_info',
           'depth_from_msg', 'duration_to_seconds', 'frame_from_compressed_msg',
           'frame_from_image_msg', 'GripperSpec', 'IDENTITY_XYZW', 'image_msg_from_rgb',
           'make_header', 'ns_to_stamp', 'OUTPUT_TOPICS', 'plan_stamp_ns', 'pose_from_msg',
           'seconds_to_duration', 'stamp_to_ns', 'status_message', 'to_ros']


@lru_cache(maxsize=None)
def message_class(msgtype: str) -> Any:
    """Return the rclpy class of ``pkg/msg/Name``."""
    package, _, name = msgtype.split('/')
    return getattr(importlib.import_module(f'{package}.msg'), name)


def to_ros(record: Msg) -> Any:
    """Serialize a record as an rclpy message (fields left out keep the IDL defaults)."""
    # Keyword construction sets each field once (a default then setattr would run every
    # field's checking setter twice and build each nested default for nothing).
    return message_class(record.type)(**{name: _ros_value(value)
                                         for name, value in record.fields.items()})


def _ros_value(value: Any) -> Any:
    # Exact type checks: this runs once per field of every published message.
    kind = type(value)
    if kind is Msg:
        return to_ros(value)
    if kind is list and value and type(value[0]) is Msg:
        return [to_ros(v) for v in value]
    return value


def to_ros_all(records: Mapping[str, Msg]) -> Dict[str, Any]:
    """Serialize records keyed by topic suffix, keeping the keys."""
    return {name: to_ros(record) for name, record in records.items()}


# --- time ------------------------------------------------------------------------------

def ns_to_stamp(stamp_ns: int) -> Time:
    """Integer nanoseconds to ``builtin_interfaces/Time``; negative times clamp to zero."""
    return to_ros(o.time_record(stamp_ns))


def seconds_to_duration(seconds: float) -> Duration:
    """Seconds to ``builtin_interfaces/Duration`` rounded to the nanosecond."""
    return to_ros(o.duration_record(seconds))


def duration_to_seconds(duration: Duration) -> float:
    """``builtin_interfaces/Duration`` to float seconds."""
    return duration.sec + duration.nanosec * 1e-9


def make_header(stamp_ns: int, frame_id: str) -> Header:
    """Build a header with the given stamp (ROS time, ns) and frame id."""
    return to_ros(o.header_record(stamp_ns, frame_id))


# --- outputs, as rclpy messages -----------------------------------------------------------

def image_msg_from_rgb(image: Any, stamp_ns: int, frame_id: str) -> Image:
    """Build an ``rgb8`` ``sensor_msgs/Image`` from an HxWx3 uint8 array (debug images)."""
    return to_ros(o.image_record(image, stamp_ns, frame_id))


def build_output_messages(plan: PlanV1, trajectory: Optional[TimedTrajectoryLike], *,
                          debug_frame: Optional['Frame'] = None,
                          gripper: GripperSpec = GripperSpec(),
                          ee_joint: str = 'end_effector',
                          marker_ns: str = 'cosmos_planner') -> Dict[str, Any]:
    """Build the rclpy messages of :func:`pipeline.outputs.build_output_records`."""
    return to_ros_all(o.build_output_records(plan, trajectory, debug_frame=debug_frame,
                                             gripper=gripper, ee_joint=ee_joint,
                                             marker_ns=marker_ns))


def build_hold_messages(stamp_ns: int, frame_id: str, *,
                        hold_position: Optional[Sequence[float]] = None,
                        hold_orientation: Sequence[float] = IDENTITY_XYZW,
                        ee_joint: str = 'end_effector',
                        marker_ns: str = 'cosmos_planner') -> Dict[str, Any]:
    """Build the rclpy messages of :func:`pipeline.outputs.build_hold_records`."""
    return to_ros_all(o.build_hold_records(stamp_ns, frame_id, hold_position=hold_position,
                                           hold_orientation=hold_orientation,
                                           ee_joint=ee_joint, marker_ns=marker_ns))


def status_message(fields: Mapping[str, Any]) -> String:
    """``~/status``: one JSON object per event (planned, rejected, failed, cancelled, ...)."""
    return to_ros(o.status_record(fields))
