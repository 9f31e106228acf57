"""Record an episode: an MP4 of the camera with the executing plan drawn, and an MCAP bag.

The video is written from the sim's own frames (the exact pixels published on ``rgb``) with
the trajectory the controller is executing projected back into the image, so a reviewer
sees what the planner intended next to what happened. The bag (rosbag2, MCAP storage,
written through ``cosmos_planner.bag.writer.BagWriter`` so it is readable even after an
interruption) holds the raw CDR of the topics of the loop, subscribed to over DDS like
``ros2 bag record`` would; log times are sim time, one bag per episode (time restarts at
zero on reset).
"""

from pathlib import Path
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, TYPE_CHECKING

import numpy as np

from cosmos_planner.errors import ConfigError

if TYPE_CHECKING:  # rclpy and mujoco are imported only when recording
    from rclpy.node import Node

    from cosmos_planner.sim.follower import TrajectoryFollower
    from cosmos_planner.sim.tabletop import TabletopSim

#: Topics recorded per episode: (topic, message type).
BAG_TOPICS = (
    ('/rgb', 'sensor_msgs/msg/Image'),
    ('/camera_info', 'sensor_msgs/msg/CameraInfo'),
    ('/clock', 'rosgraph_msgs/msg/Clock'),
    ('/sim/ground_truth', 'std_msgs/msg/String'),
    ('/ee_pose', 'geometry_msgs/msg/PoseStamped'),
    ('/cosmos_planner/trajectory', 'trajectory_msgs/msg/MultiDOFJointTrajectory'),
    ('/cosmos_planner/gripper', 'trajectory_msgs/msg/JointTrajectory'),
    ('/cosmos_planner/plan', 'std_msgs/msg/String'),
    ('/cosmos_planner/status', 'std_msgs/msg/String'),
)


class EpisodeVideo:
    """MP4 (``mp4v``) of the episode at the camera rate, with overlays."""

    def __init__(self, path: Path, fps: float, size: Sequence[int]) -> None:
        import cv2

        self._cv2 = cv2
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        width, height = int(size[0]), int(size[1])
        self._writer: Optional[cv2.VideoWriter] = cv2.VideoWriter(
            str(self.path), cv2.VideoWriter.fourcc(*'mp4v'), float(fps), (width, height))
        if not self._writer.isOpened():
            raise ConfigError(f'cannot write video {self.path} (OpenCV mp4v writer failed)')
        self.frames = 0
        self._lock = threading.Lock()

    def add(self, rgb: np.ndarray, lines: Sequence[str] = (),
            path_px: Optional[np.ndarray] = None, target_px: Optional[np.ndarray] = None
            ) -> None:
        """Append one frame; ``path_px`` (Nx2) is drawn as a polyline, ``target_px`` a dot."""
        cv2 = self._cv2
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        if path_px is not None and len(path_px) >= 2 and np.all(np.isfinite(path_px)):
            pts = np.round(path_px).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(bgr, [pts], False, (0, 220, 255), 1, cv2.LINE_AA)
            for p in pts[:, 0]:
                cv2.circle(bgr, (int(p[0]), int(p[1])), 2, (0, 160, 255), -1, cv2.LINE_AA)
        if target_px is not None and np.all(np.isfinite(target_px)):
            cv2.circle(bgr, (int(round(target_px[0])), int(round(target_px[1]))), 4,
                       (0, 0, 255), 1, cv2.LINE_AA)
        lines = [t for t in lines if t]
        if lines:
            scale = max(0.3, bgr.shape[0] / 640.0)
            step = int(round(22 * scale / 0.5))
            band = bgr[:step * len(lines) + 4]
            band[:] = (band * 0.45).astype(np.uint8)
            for i, text in enumerate(lines):
                cv2.putText(bgr, text, (4, step * (i + 1) - 3), cv2.FONT_HERSHEY_SIMPLEX,
                            scale, (255, 255, 255), 1, cv2.LINE_AA)
        with self._lock:
            if self._writer is not None:
                self._writer.write(bgr)
                self.frames += 1

    def close(self) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.release()
                self._writer = None


def add_annotated_frame(video: EpisodeVideo, sim: 'TabletopSim',
                        follower: 'TrajectoryFollower', rgb: np.ndarray,
                        lines: Sequence[str]) -> None:
    """Add ``rgb`` with the path being executed, the tool target and the task state."""
    from cosmos_planner.sim.camera import project

    pose, intr = sim.optical_pose(), sim.intrinsics
    path_px = target_px = None
    running = follower.path
    if running is not None and running.positions is not None:
        path_px, _ = project(running.positions, pose, intr)
        target_px = project(sim.ee_target(), pose, intr)[0][0]
    state = sim.evaluate()
    status = 'SUCCESS' if state.success else (f'holding {state.grasped}' if state.grasped
                                              else '')
    video.add(rgb, list(lines) + [status], path_px, target_px)


class EpisodeBag:
    """Raw subscriptions on ``node`` written to an MCAP bag; ``close()`` finishes it."""

    def __init__(self, node: 'Node', path: Path, now_ns: Callable[[], int],
                 topics: Sequence[tuple] = BAG_TOPICS) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        from cosmos_planner.bag.writer import BagWriter

        self.path = Path(path)
        self._node = node
        self._now_ns = now_ns
        self._lock = threading.Lock()
        self._writer: Optional[BagWriter] = BagWriter(self.path, storage='mcap').open()
        self._subs: List[Any] = []
        self.counts: Dict[str, int] = {}
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        for topic, msgtype in topics:
            self._writer.add_topic(topic, msgtype)
            self.counts[topic] = 0
            msg_cls = _message_class(msgtype)
            self._subs.append(node.create_subscription(
                msg_cls, topic, lambda raw, t=topic: self._on_raw(t, raw), qos, raw=True))

    def _on_raw(self, topic: str, raw: bytes) -> None:
        with self._lock:
            if self._writer is None:
                return
            self._writer.write(topic, max(0, int(self._now_ns())), raw)
            self.counts[topic] += 1

    def close(self) -> None:
        for sub in self._subs:
            self._node.destroy_subscription(sub)
        self._subs.clear()
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()


def _message_class(msgtype: str) -> Any:
    import importlib

    pkg, _, name = msgtype.split('/')
    return getattr(importlib.import_module(f'{pkg}.msg'), name)
