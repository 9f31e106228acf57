"""``SimNode``: the MuJoCo tabletop behind Isaac Sim's ROS 2 bridge topic names.

Publishes, all stamped in sim time (seconds since the last reset):

- ``rgb`` (sensor_msgs/Image, rgb8), ``depth`` (32FC1, metres along the optical axis, NaN
  where nothing is hit), ``camera_info`` (plumb_bob, zero distortion), frame id
  ``sim_camera`` (optical: z forward, x right, y down), at ``camera_rate_hz`` of sim time;
- ``/clock`` (rosgraph_msgs/Clock) at ``clock_rate_hz`` of sim time; it jumps back to zero
  on reset, as Isaac's does on Stop/Play;
- ``~/ground_truth`` (std_msgs/String, JSON): the oracle state of each published frame
  (also written to the ground-truth file the scripted expert reads);
- QoS keep-last 10, reliable (Isaac's defaults).

Serves ``~/reset`` (std_srvs/Trigger: new episode with the ``seed`` parameter, which then
advances by one) and listens on ``~/reset_seed`` (std_msgs/Int64: reset with that seed).

Physics runs on its own thread, paced to ``real_time_factor`` (0: as fast as the CPU
allows). Controllers in the same process hook into every control tick (``add_tick_hook``),
so commands take effect in sim time, deterministically, whatever the wall-clock speed.
"""

import json
import threading
import time
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header, Int64, String
from std_srvs.srv import Trigger

from cosmos_planner.sim.config import load_sim_config, SimConfig
from cosmos_planner.sim.ground_truth import GroundTruthWriter
from cosmos_planner.sim.tabletop import TabletopSim

#: Isaac Sim's ROS 2 bridge publishes with keep-last 10, reliable.
ISAAC_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                       reliability=ReliabilityPolicy.RELIABLE)

TickHook = Callable[[float], None]
FrameHook = Callable[[int, np.ndarray, np.ndarray], None]


def ns_to_time_msg(stamp_ns: int):
    """builtin_interfaces/Time from integer nanoseconds."""
    from builtin_interfaces.msg import Time
    return Time(sec=int(stamp_ns // 1_000_000_000), nanosec=int(stamp_ns % 1_000_000_000))


def rgb_message(rgb: np.ndarray, stamp_ns: int, frame_id: str) -> Image:
    """sensor_msgs/Image rgb8 from an HxWx3 uint8 array."""
    h, w = rgb.shape[:2]
    return Image(header=Header(stamp=ns_to_time_msg(stamp_ns), frame_id=frame_id), height=h,
                 width=w, encoding='rgb8', is_bigendian=0, step=w * 3,
                 data=np.ascontiguousarray(rgb, np.uint8).tobytes())


def depth_message(depth: np.ndarray, stamp_ns: int, frame_id: str) -> Image:
    """sensor_msgs/Image 32FC1 (metres, little endian) from an HxW float array."""
    h, w = depth.shape
    return Image(header=Header(stamp=ns_to_time_msg(stamp_ns), frame_id=frame_id), height=h,
                 width=w, encoding='32FC1', is_bigendian=0, step=w * 4,
                 data=np.ascontiguousarray(depth, '<f4').tobytes())


def camera_info_message(sim: TabletopSim, stamp_ns: int) -> CameraInfo:
    """Build the camera_info of the undistorted pinhole camera (``P = [K | 0]``)."""
    intr = sim.intrinsics
    return CameraInfo(
        header=Header(stamp=ns_to_time_msg(stamp_ns), frame_id=sim.cfg.camera_frame_id),
        width=intr.width, height=intr.height, distortion_model='plumb_bob',
        d=[0.0] * 5, k=intr.K.reshape(-1).tolist(),
        r=np.eye(3).reshape(-1).tolist(), p=intr.P.reshape(-1).tolist())


class SimNode(Node):
    """Steps the tabletop in sim time and publishes it like Isaac Sim's ROS 2 bridge."""

    def __init__(self, cfg: Optional[SimConfig] = None, ground_truth_path: Optional[str] = None,
                 node_name: str = 'sim', start: bool = True, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        config_file: str = self.declare_parameter('config_file', '').value
        base = cfg or load_sim_config(Path(config_file) if config_file else None)
        seed: int = self.declare_parameter('seed', base.seed).value
        rtf: float = self.declare_parameter('real_time_factor', base.real_time_factor).value
        rate: float = self.declare_parameter('camera_rate_hz', base.camera_rate_hz).value
        width: int = self.declare_parameter('width', base.width).value
        height: int = self.declare_parameter('height', base.height).value
        gt_path: str = self.declare_parameter('ground_truth_path', ground_truth_path or '').value
        self.cfg = base.replace(seed=int(seed), real_time_factor=float(rtf),
                                camera_rate_hz=float(rate), width=int(width),
                                height=int(height))
        self.sim = TabletopSim(self.cfg, seed=self.cfg.seed)
        self._gt = GroundTruthWriter(Path(gt_path)) if gt_path else None
        if self._gt is not None:
            self._gt.reset(self.sim.episode)
        self._lock = threading.RLock()
        self._tick_hooks: List[TickHook] = []
        self._reset_hooks: List[Callable[[int], None]] = []
        self._frame_hooks: List[FrameHook] = []
        self.pub_rgb = self.create_publisher(Image, 'rgb', ISAAC_QOS)
        self.pub_depth = self.create_publisher(Image, 'depth', ISAAC_QOS)
        self.pub_info = self.create_publisher(CameraInfo, 'camera_info', ISAAC_QOS)
        self.pub_clock = self.create_publisher(Clock, '/clock', ISAAC_QOS)
        self.pub_truth = self.create_publisher(String, '~/ground_truth', ISAAC_QOS)
        self.create_service(Trigger, '~/reset', self._on_reset_srv)
        self.create_subscription(Int64, '~/reset_seed', self._on_reset_seed, ISAAC_QOS)
        self._frame_period_ns = int(round(1e9 / self.cfg.camera_rate_hz))
        self._clock_period_ns = int(round(1e9 / self.cfg.clock_rate_hz))
        self._next_frame_ns = 0
        self._next_clock_ns = 0
        self.frames_published = 0
        self._pace_wall = time.monotonic()
        self._pace_sim = 0.0
        self._running = threading.Event()
        self._stop = threading.Event()
        self._reached = threading.Event()
        self._until: Optional[float] = None
        self._thread = threading.Thread(target=self._loop, name='sim_physics', daemon=True)
        self._thread.start()
        if start:
            self.resume()

    # ------------------------------------------------------------------ hooks
    def add_tick_hook(self, hook: TickHook) -> None:
        """Call ``hook(sim_time_s)`` on the physics thread before every control tick."""
        self._tick_hooks.append(hook)

    def add_reset_hook(self, hook: Callable[[int], None]) -> None:
        """Call ``hook(episode)`` on reset, after the scene is back at time zero."""
        self._reset_hooks.append(hook)

    def add_frame_hook(self, hook: FrameHook) -> None:
        """Call ``hook(stamp_ns, rgb, depth)`` for every published camera frame."""
        self._frame_hooks.append(hook)

    @property
    def lock(self) -> threading.RLock:
        """Held while stepping; take it to read the sim consistently from another thread."""
        return self._lock

    # ------------------------------------------------------------------ control
    def pause(self) -> None:
        """Stop stepping (sim time stands still; nothing is published)."""
        self._running.clear()
        with self._lock:  # wait for the tick in progress
            pass

    def resume(self) -> None:
        with self._lock:
            self._pace_wall = time.monotonic()
            self._pace_sim = self.sim.time
        self._running.set()

    def reset(self, seed: Optional[int] = None) -> int:
        """Start a new episode (time back to zero) with ``seed`` (default: parameter)."""
        with self._lock:
            if seed is None:
                seed = int(self.get_parameter('seed').value)
            self.sim.reset(int(seed))
            if self._gt is not None:
                self._gt.reset(self.sim.episode)
            self._next_frame_ns = 0
            self._next_clock_ns = 0
            self._pace_wall = time.monotonic()
            self._pace_sim = 0.0
            for hook in self._reset_hooks:
                hook(self.sim.episode)
            self._publish_clock(0)
        self.get_logger().info(f'reset: episode {self.sim.episode}, seed {seed}')
        return self.sim.episode

    def step_once(self) -> None:
        """One control tick: frames and clock when due, controller hooks, then physics.

        Runs on the physics thread (rendering must stay on one thread).
        """
        with self._lock:
            now_ns = self.sim.time_ns
            if now_ns >= self._next_clock_ns:
                self._publish_clock(now_ns)
                self._next_clock_ns = now_ns + self._clock_period_ns
            if now_ns >= self._next_frame_ns:
                self._publish_frame(now_ns)
                self._next_frame_ns += self._frame_period_ns
                if self._next_frame_ns <= now_ns:
                    self._next_frame_ns = now_ns + self._frame_period_ns
            now_s = self.sim.time
            for hook in self._tick_hooks:
                hook(now_s)
            self.sim.step(1)

    def advance(self, seconds: float, timeout_s: float = 600.0) -> bool:
        """Run the physics thread for ``seconds`` of sim time, then pause; False on timeout.

        For tests and tools that need a deterministic amount of sim time (rendering stays
        on the physics thread, where its EGL context lives).
        """
        with self._lock:
            self._until = self.sim.time + float(seconds)
            self._reached.clear()
            self._pace_wall = time.monotonic()
            self._pace_sim = self.sim.time
        self._running.set()
        return self._reached.wait(timeout_s)

    def close(self) -> None:
        """Stop the physics thread, which releases the renderer (call before destroy_node)."""
        self._stop.set()
        self._running.set()
        self._thread.join(timeout=30.0)

    # ------------------------------------------------------------------ internals
    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                if not self._running.wait(timeout=0.1) or self._stop.is_set():
                    continue
                try:
                    with self._lock:
                        if not self._running.is_set() or self._stop.is_set():
                            continue
                        self.step_once()
                        if self._until is not None and self.sim.time >= self._until - 1e-9:
                            self._until = None
                            self._running.clear()
                            self._reached.set()
                except Exception as exc:  # noqa: BLE001 - report and keep the sim alive
                    self.get_logger().error(f'sim tick failed: {exc!r}')
                    time.sleep(0.1)
                rtf = self.cfg.real_time_factor
                if rtf > 0:
                    ahead = (self.sim.time - self._pace_sim) / rtf - (
                        time.monotonic() - self._pace_wall)
                    if ahead > 0:
                        time.sleep(min(ahead, 0.1))
        finally:
            with self._lock:  # the EGL context is current on this thread: free it here
                self.sim.close()

    def _publish_clock(self, now_ns: int) -> None:
        self.pub_clock.publish(Clock(clock=ns_to_time_msg(now_ns)))

    def _publish_frame(self, stamp_ns: int) -> None:
        frame_id = self.cfg.camera_frame_id
        rgb = self.sim.render_rgb()
        depth = self.sim.render_depth()
        truth = self.sim.ground_truth()
        if self._gt is not None:
            self._gt.add(stamp_ns, truth)
        self.pub_info.publish(camera_info_message(self.sim, stamp_ns))
        self.pub_depth.publish(depth_message(depth, stamp_ns, frame_id))
        self.pub_rgb.publish(rgb_message(rgb, stamp_ns, frame_id))
        self.pub_truth.publish(String(data=json.dumps({'stamp_ns': stamp_ns, **truth})))
        self.frames_published += 1
        for hook in self._frame_hooks:
            hook(stamp_ns, rgb, depth)

    def _on_reset_srv(self, request: Trigger.Request, response: Trigger.Response):
        seed = int(self.get_parameter('seed').value)
        episode = self.reset(seed)
        from rclpy.parameter import Parameter
        self.set_parameters([Parameter('seed', Parameter.Type.INTEGER, seed + 1)])
        response.success = True
        response.message = f'episode {episode} seed {seed}'
        return response

    def _on_reset_seed(self, msg: Int64) -> None:
        if msg.data < 0:
            self.get_logger().error(f'~/reset_seed: seed must be >= 0, got {msg.data}')
            return
        self.reset(int(msg.data))
