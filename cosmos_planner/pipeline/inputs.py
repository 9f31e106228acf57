"""What the camera, depth, camera_info and end-effector callbacks do: ingest and buffer only.

Messages are read by field name only (``header.stamp``, ``k``, ``pose.position``, ...), so
rclpy messages (the node) and ``rosbags`` messages (the offline replay, which runs without
ROS) go through the same code.

Kept out of the node class so the hot path is small and measurable: a callback decodes
(``FrameIngest``, which also resizes to the model's pixel budget), pushes into the
``CameraBuffers`` and counts; it never plans, never waits on the worker. A refused input
(wrong step, unknown encoding, corrupt JPEG, uncalibrated CameraInfo) is counted per cause
in ``PlanningStats`` and the node keeps running.

Time going backwards in the frame stamps (a bag looped without ``/clock``, a simulator
reset seen by the cameras first) is detected by ``CameraBuffers`` itself, which clears every
buffer and reports a ``TimeJump``; this module passes that on through ``on_time_reset`` so
the node cancels the plan in flight. Small reorderings are just dropped by the buffer.
"""

import math
import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple, TYPE_CHECKING

import numpy as np

from cosmos_planner.errors import GroundingError, ImageDecodeError, PlannerError
from cosmos_planner.frames.types import DepthFrame, Frame
from cosmos_planner.pipeline.stats import PlanningStats

if TYPE_CHECKING:
    from cosmos_planner.geometry.camera_model import CameraModel


# -- messages to core objects ----------------------------------------------------------------

def stamp_to_ns(stamp: Any) -> int:
    """``builtin_interfaces/Time`` to integer nanoseconds (exact, no float rounding)."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def frame_from_image_msg(msg: Any, ingest: Any, camera: str) -> Frame:
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


def camera_model_from_info(info: Any) -> 'CameraModel':
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


def pose_from_msg(msg: Any) -> Tuple[int, str, np.ndarray, np.ndarray]:
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


class SensorInputs:
    """Decode and buffer sensor messages; hold the latest camera models and EE pose."""

    def __init__(self, ingest: Any, buffers: Any, stats: PlanningStats, primary: str,
                 on_time_reset: Callable[[str], None],
                 measure_delay: Callable[[], bool] = lambda: True,
                 ros_now_ns: Callable[[], int] = time.time_ns) -> None:
        """Wire the ingest and buffers; ``on_time_reset(reason)`` cancels work upstream.

        ``measure_delay()`` says whether header stamps share the wall clock (not under sim
        time), so the ingest delay statistic means something.
        """
        self.ingest = ingest
        self.buffers = buffers
        self.stats = stats
        self.primary = primary
        self.on_time_reset = on_time_reset
        self.measure_delay = measure_delay
        self.ros_now_ns = ros_now_ns
        self._lock = threading.Lock()
        self._camera_models: Dict[str, Any] = {}
        self._info_keys: Dict[str, Tuple] = {}
        self._ee: Optional[Tuple[int, str, np.ndarray, np.ndarray]] = None
        self._frames: Dict[str, Frame] = {}

    # -- callbacks --------------------------------------------------------------------------
    def image(self, camera: str, msg: Any) -> Optional[Frame]:
        """Decode and buffer a raw ``sensor_msgs/Image``."""
        return self._frame(camera, msg, frame_from_image_msg)

    def compressed(self, camera: str, msg: Any) -> Optional[Frame]:
        """Decode and buffer a ``sensor_msgs/CompressedImage``."""
        return self._frame(camera, msg, frame_from_compressed_msg)

    def _frame(self, camera: str, msg: Any, decode: Callable[..., Frame]) -> Optional[Frame]:
        start = time.perf_counter()
        try:
            frame = decode(msg, self.ingest, camera)
        except ImageDecodeError as exc:
            self.stats.bad_input(camera, exc.kind, str(exc))
            return None
        except PlannerError as exc:
            self.stats.bad_input(camera, exc.reason, str(exc))
            return None
        pushed = self.buffers.push(frame)
        if pushed.jump is not None:
            with self._lock:
                self._frames.clear()
            self.stats.clock_reset()
            self.on_time_reset(f'camera {pushed.jump.camera} stamps went back '
                               f'{pushed.jump.back_s:.3f} s; buffers cleared')
        with self._lock:
            self._frames[camera] = frame
        delay_ms = None
        if self.measure_delay():
            delay_ms = (time.time_ns() - frame.stamp_ns) * 1e-6
        self.stats.frame(camera, frame.stamp_ns, self.ros_now_ns(), delay_ms,
                         (time.perf_counter() - start) * 1e3)
        return frame

    def depth(self, camera: str, msg: Any) -> Optional[DepthFrame]:
        """Decode and buffer a registered depth image (raw or compressedDepth)."""
        try:
            depth = depth_from_msg(msg, self.ingest, camera)
        except ImageDecodeError as exc:
            self.stats.bad_input(camera, 'depth_' + exc.kind, str(exc))
            return None
        except PlannerError as exc:
            self.stats.bad_input(camera, 'depth_' + exc.reason, str(exc))
            return None
        pushed = self.buffers.push_depth(depth)
        if pushed.jump is not None:
            self.stats.clock_reset()
            self.on_time_reset(f'depth of camera {camera} stamps went back '
                               f'{pushed.jump.back_s:.3f} s; buffers cleared')
        self.stats.depth(camera)
        return depth

    def camera_info(self, camera: str, msg: Any) -> None:
        """Take a CameraInfo: rebuild the camera model only when it changes."""
        key = (msg.width, msg.height, tuple(msg.k), tuple(msg.d), msg.distortion_model,
               msg.header.frame_id, msg.binning_x, msg.binning_y, msg.roi.x_offset,
               msg.roi.y_offset, msg.roi.width, msg.roi.height)
        with self._lock:
            if self._info_keys.get(camera) == key:
                return
        try:
            model = camera_model_from_info(msg)
        except (PlannerError, ValueError) as exc:
            self.stats.bad_input(camera, 'bad_camera_info', str(exc))
            return
        with self._lock:
            self._camera_models[camera] = model
            self._info_keys[camera] = key
        self.stats.info(camera)

    def ee_pose(self, msg: Any) -> None:
        """Keep the newest end-effector ``PoseStamped``."""
        try:
            pose = pose_from_msg(msg)
        except ValueError as exc:
            self.stats.bad_input(self.primary, 'bad_ee_pose', str(exc))
            return
        with self._lock:
            self._ee = pose

    # -- reads by the planning worker --------------------------------------------------------
    def camera_model(self, camera: str) -> Optional[Any]:
        """Return the latest camera model of ``camera`` (None before its first CameraInfo)."""
        with self._lock:
            return self._camera_models.get(camera)

    def latest_frame(self, camera: str) -> Optional[Frame]:
        """Return the newest frame of ``camera`` (for the hold message)."""
        with self._lock:
            return self._frames.get(camera)

    def ee_pose_latest(self) -> Optional[Tuple[int, str, np.ndarray, np.ndarray]]:
        """``(stamp_ns, frame_id, xyz, xyzw)`` of the newest end-effector pose, if any."""
        with self._lock:
            return self._ee

    def reset(self, now_ns: Optional[int] = None) -> None:
        """Forget everything time-dependent (clock jumped back); camera models stay.

        ``now_ns`` (the new clock time) lets the buffers drop old-timeline frames still in
        flight (``CameraBuffers.clear``).
        """
        with self._lock:
            self._frames.clear()
            self._ee = None
        self.buffers.clear(now_ns)
        self.stats.clock_reset()
