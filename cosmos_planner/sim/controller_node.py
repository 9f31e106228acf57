"""``ControllerNode``: executes the planner's ``~/trajectory`` and ``~/gripper`` in the sim.

What a real Cartesian controller does with the planner's output:

- ``trajectory`` (trajectory_msgs/MultiDOFJointTrajectory): waypoints are followed by
  ``time_from_start``, interpolating linearly, in the frame of the header (``world``, or
  the camera optical frame ``sim_camera``, transformed with the camera's pose; other frames
  are refused). Motion starts when the message is executed, from where the tool is, never
  faster than ``max_speed`` (later points shift instead). The header stamp is the time of
  the camera frame the plan was made from (the planner's convention), so it is used to
  refuse stale plans, not as a start time: a stamp in the future belongs to the timeline
  before a sim reset and is dropped, as is a plan older than ``max_plan_age_s``.
- An empty trajectory is a stop (hold the current target); one point at time 0 is a hold
  at that point. Stops are always obeyed, whatever their stamp.
- ``gripper`` (trajectory_msgs/JointTrajectory, one joint): the commanded finger opening
  per point on the same time base; a position nearer ``gripper_closed_position`` than
  ``gripper_open_position`` means closed. It is paired with the trajectory that has the
  same header stamp (either may arrive first).
- Publishes the tool pose on ``ee_pose`` (geometry_msgs/PoseStamped, ``world``), so the
  planner can start trajectories at the real gripper position.

Messages are only queued by the subscription callbacks; they are applied on the physics
thread at the next control tick (``tick``), so execution is deterministic in sim time.
A sim reset clears the queue and the running trajectory.
"""

import threading
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Tuple

import numpy as np
from geometry_msgs.msg import Point, Pose, PoseStamped, Quaternion
from rclpy.node import Node
from std_msgs.msg import Header
from trajectory_msgs.msg import JointTrajectory, MultiDOFJointTrajectory

from cosmos_planner.errors import ConfigError
from cosmos_planner.sim.commands import gripper_events, stale_reason, stamp_ns
from cosmos_planner.sim.commands import trajectory_points
from cosmos_planner.sim.follower import TrajectoryFollower
from cosmos_planner.sim.sim_node import ISAAC_QOS, ns_to_time_msg, SimNode

#: Tool orientation published on ee_pose: z axis pointing down (top-down gripper).
TOOL_DOWN_XYZW = (1.0, 0.0, 0.0, 0.0)


class ControllerNode(Node):
    """Cartesian controller of the sim's gripper, driven by the planner's topics."""

    def __init__(self, sim_node: SimNode, node_name: str = 'sim_controller', **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self._sim_node = sim_node
        self.sim = sim_node.sim
        p = self.declare_parameter
        traj_topic: str = p('trajectory_topic', '/cosmos_planner/trajectory').value
        grip_topic: str = p('gripper_topic', '/cosmos_planner/gripper').value
        pose_topic: str = p('ee_pose_topic', 'ee_pose').value
        self.max_speed = float(p('max_speed', 0.3).value)
        self.max_plan_age_s = float(p('max_plan_age_s', 5.0).value)
        self.open_position = float(p('gripper_open_position', 0.04).value)
        self.closed_position = float(p('gripper_closed_position', 0.0).value)
        self.pose_rate_hz = float(p('ee_pose_rate_hz', 20.0).value)
        if self.open_position == self.closed_position:
            raise ConfigError('gripper_open_position equals gripper_closed_position')
        self.follower = TrajectoryFollower(self.max_speed)
        self._queue: Deque[Tuple[str, Any]] = deque()
        self._qlock = threading.Lock()
        self._pending_gripper: Dict[int, JointTrajectory] = {}
        self._next_pose_s = 0.0
        #: One record per executed command (plans, holds, stops), for the episode runner.
        self.executions: List[Dict[str, Any]] = []
        self.dropped: Dict[str, int] = {}
        #: Messages received per topic kind (``trajectory``, ``gripper``).
        self.received: Dict[str, int] = {'trajectory': 0, 'gripper': 0}
        self.create_subscription(MultiDOFJointTrajectory, traj_topic, self._on_trajectory,
                                 ISAAC_QOS)
        self.create_subscription(JointTrajectory, grip_topic, self._on_gripper, ISAAC_QOS)
        self.pub_pose = self.create_publisher(PoseStamped, pose_topic, ISAAC_QOS)
        sim_node.add_tick_hook(self.tick)
        sim_node.add_reset_hook(self.reset)
        self.follower.stop(self.sim.ee_target())

    # ------------------------------------------------------------ executor thread
    def _on_trajectory(self, msg: MultiDOFJointTrajectory) -> None:
        with self._qlock:
            self._queue.append(('trajectory', msg))
            self.received['trajectory'] += 1

    def _on_gripper(self, msg: JointTrajectory) -> None:
        with self._qlock:
            self._queue.append(('gripper', msg))
            self.received['gripper'] += 1

    # ------------------------------------------------------------ physics thread
    def reset(self, episode: int) -> None:
        """Sim reset: forget queued and running commands; hold the new start pose."""
        with self._qlock:
            self._queue.clear()
        self._pending_gripper.clear()
        self.follower.stop(self.sim.ee_target())
        self._next_pose_s = 0.0

    def tick(self, now_s: float) -> None:
        """Apply queued messages, then command the tool target and gripper for ``now_s``."""
        with self._qlock:
            items = list(self._queue)
            self._queue.clear()
        now_ns = int(round(now_s * 1e9))
        for kind, msg in items:
            try:
                if kind == 'trajectory':
                    self._apply_trajectory(msg, now_s, now_ns)
                else:
                    self._apply_gripper(msg, now_s, now_ns)
            except (ConfigError, ValueError, IndexError) as exc:
                self._drop('bad_message', f'{kind}: {exc}')
        target = self.follower.target(now_s)
        if target is not None:
            self.sim.set_ee_target(target)
        closed = self.follower.gripper_due(now_s)
        if closed is not None:
            self.sim.set_gripper(closed)
        if now_s >= self._next_pose_s:
            self._publish_pose(now_ns)
            self._next_pose_s = now_s + 1.0 / self.pose_rate_hz

    def is_idle(self, now_s: float) -> bool:
        """Nothing queued or left to execute."""
        with self._qlock:
            queued = bool(self._queue)
        return not queued and self.follower.done(now_s)

    # ------------------------------------------------------------ internals
    def _drop(self, reason: str, detail: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        self.get_logger().warning(f'dropped command ({reason}): {detail}')

    def _to_world(self, frame_id: str, points: np.ndarray) -> Optional[np.ndarray]:
        cfg = self.sim.cfg
        if frame_id in ('', cfg.world_frame_id):
            return points
        if frame_id == cfg.camera_frame_id:
            return self.sim.optical_pose().optical_to_world(points)
        return None

    def _stale(self, stamp: int, now_ns: int) -> Optional[str]:
        return stale_reason(stamp, now_ns, self.max_plan_age_s)

    def _apply_trajectory(self, msg: MultiDOFJointTrajectory, now_s: float,
                          now_ns: int) -> None:
        stamp = stamp_ns(msg.header)
        record = {'stamp_ns': stamp, 'received_s': now_s, 'frame_id': msg.header.frame_id,
                  'points': len(msg.points)}
        if not msg.points:
            self.follower.stop(self.sim.ee_target())
            self.executions.append({**record, 'kind': 'stop'})
            return
        stale = self._stale(stamp, now_ns)
        if stale:
            self._drop(stale, f'trajectory stamped {stamp * 1e-9:.3f} s at {now_s:.3f} s')
            return
        times, pts = trajectory_points(msg)
        world = self._to_world(msg.header.frame_id, pts)
        if world is None:
            self._drop('unknown_frame', f'frame {msg.header.frame_id!r} is neither '
                       f'{self.sim.cfg.world_frame_id!r} nor {self.sim.cfg.camera_frame_id!r}')
            return
        path = self.follower.start(now_s, self.sim.ee_target(), times, world, stamp)
        kind = 'hold' if len(pts) == 1 and times[0] == 0.0 else 'plan'
        self.executions.append({**record, 'kind': kind, 'started_s': now_s,
                                'latency_s': now_s - stamp * 1e-9,
                                'duration_s': float(path.end_s - now_s)})
        pending = self._pending_gripper.pop(stamp, None)
        self._pending_gripper.clear()
        if pending is not None:
            self._attach_gripper(pending)

    def _apply_gripper(self, msg: JointTrajectory, now_s: float, now_ns: int) -> None:
        stamp = stamp_ns(msg.header)
        stale = self._stale(stamp, now_ns)
        if stale:
            self._drop(stale, f'gripper schedule stamped {stamp * 1e-9:.3f} s')
            return
        path = self.follower.path
        if path is not None and path.stamp_ns == stamp:
            self._attach_gripper(msg)
        else:
            self._pending_gripper[stamp] = msg

    def _attach_gripper(self, msg: JointTrajectory) -> None:
        self.follower.set_gripper_schedule(
            gripper_events(msg, self.open_position, self.closed_position))

    def _publish_pose(self, now_ns: int) -> None:
        pos = self.sim.ee_position()
        x, y, z, w = TOOL_DOWN_XYZW
        msg = PoseStamped(
            header=Header(stamp=ns_to_time_msg(now_ns), frame_id=self.sim.cfg.world_frame_id),
            pose=Pose(position=Point(x=float(pos[0]), y=float(pos[1]), z=float(pos[2])),
                      orientation=Quaternion(x=x, y=y, z=z, w=w)))
        self.pub_pose.publish(msg)
