"""Sim node and controller node over real DDS: Isaac's topics, /clock, reset, execution.

The sim and controller run in their own rclpy context (as in ``cosmos-planner sim``); the
test talks to them from a separate participant (``RosPeer``) like any other ROS process.
Physics is advanced by exact amounts of sim time (``SimNode.advance``). About 15 s.
"""

import json
import os

import numpy as np
import pytest
from rclpy.qos import HistoryPolicy, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from trajectory_msgs.msg import MultiDOFJointTrajectory, MultiDOFJointTrajectoryPoint

from ros_helpers import claim_domain_id, release_domain_id, RosPeer, wait_until

from cosmos_planner.sim.config import load_sim_config


def _stamp(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def _time_msg(t: float):
    from builtin_interfaces.msg import Time
    ns = int(round(t * 1e9))
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def _duration(t: float):
    from builtin_interfaces.msg import Duration
    ns = int(round(t * 1e9))
    return Duration(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def trajectory(frame: str, stamp: float, points, times) -> MultiDOFJointTrajectory:
    from geometry_msgs.msg import Quaternion, Transform, Vector3
    msg = MultiDOFJointTrajectory()
    msg.header.frame_id = frame
    msg.header.stamp = _time_msg(stamp)
    msg.joint_names = ['end_effector']
    for p, t in zip(points, times):
        msg.points.append(MultiDOFJointTrajectoryPoint(
            transforms=[Transform(translation=Vector3(x=float(p[0]), y=float(p[1]),
                                                      z=float(p[2])),
                                  rotation=Quaternion(x=1.0, y=0.0, z=0.0, w=0.0))],
            time_from_start=_duration(t)))
    return msg


@pytest.fixture(scope='module')
def loop(tmp_path_factory):
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    import threading

    from cosmos_planner.sim.controller_node import ControllerNode
    from cosmos_planner.sim.sim_node import SimNode

    domain = claim_domain_id()
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    gt = tmp_path_factory.mktemp('sim') / 'ground_truth.json'
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain)
    cfg = load_sim_config(width=160, height=120, real_time_factor=0.0)
    sim = SimNode(cfg, ground_truth_path=str(gt), start=False, context=ctx)
    ctrl = ControllerNode(sim, context=ctx)
    executor = MultiThreadedExecutor(num_threads=2, context=ctx)
    executor.add_node(sim)
    executor.add_node(ctrl)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    peer = RosPeer(domain, 'sim_test_peer')
    topics = {
        'rgb': peer.collect(Image, '/rgb'), 'depth': peer.collect(Image, '/depth'),
        'info': peer.collect(CameraInfo, '/camera_info'),
        'clock': peer.collect(Clock, '/clock', depth=1000),
    }
    pubs = {'traj': peer.publisher(MultiDOFJointTrajectory, '/cosmos_planner/trajectory'),
            'grip': peer.publisher(JointTrajectory, '/cosmos_planner/gripper')}
    for pub in pubs.values():
        assert peer.wait_for_subscribers(pub)
    assert peer.wait_for_publishers('/rgb')
    wait_until(lambda: sim.pub_rgb.get_subscription_count() > 0, 10.0)
    yield {'sim': sim, 'ctrl': ctrl, 'peer': peer, 'topics': topics, 'pubs': pubs, 'gt': gt}
    peer.close()
    executor.shutdown()
    spin.join(10)
    sim.close()
    ctrl.destroy_node()
    sim.destroy_node()
    rclpy.try_shutdown(context=ctx)
    release_domain_id(domain)


def _send(loop, kind: str, msg) -> None:
    ctrl = loop['ctrl']
    before = ctrl.received['trajectory' if kind == 'traj' else 'gripper']
    loop['pubs'][kind].publish(msg)
    key = 'trajectory' if kind == 'traj' else 'gripper'
    assert wait_until(lambda: ctrl.received[key] > before, 10.0), 'controller got nothing'


def test_publishes_isaac_bridge_topics_in_sim_time(loop) -> None:
    sim, topics = loop['sim'], loop['topics']
    sim.reset(1)
    assert sim.advance(0.45)
    rgb = topics['rgb'].wait_for(lambda m: abs(_stamp(m) - 0.4) < 1e-6)
    depth = topics['depth'].wait_for(lambda m: abs(_stamp(m) - 0.4) < 1e-6)
    info = topics['info'].wait_for(lambda m: abs(_stamp(m) - 0.4) < 1e-6)
    assert rgb is not None and depth is not None and info is not None
    assert (rgb.encoding, rgb.width, rgb.height, rgb.step) == ('rgb8', 160, 120, 480)
    assert (depth.encoding, depth.step, depth.is_bigendian) == ('32FC1', 640, 0)
    assert {rgb.header.frame_id, depth.header.frame_id, info.header.frame_id} == {'sim_camera'}
    d = np.frombuffer(bytes(depth.data), '<f4').reshape(120, 160)
    assert np.nanmin(d) > 0.3 and np.nanmax(d) < 20.0, 'metres along the optical axis'
    assert np.allclose(np.asarray(info.k).reshape(3, 3), sim.sim.intrinsics.K)
    assert info.distortion_model == 'plumb_bob' and not any(info.d)
    stamps = [round(_stamp(m), 3) for m in topics['rgb'].messages]
    assert {0.0, 0.2, 0.4} <= set(stamps), 'frames at the camera rate of sim time'
    for topic in ('/rgb', '/depth', '/camera_info', '/clock'):
        # Discovery carries reliability, not history depth: that is checked locally.
        infos = loop['peer'].node.get_publishers_info_by_topic(topic)
        assert infos[0].qos_profile.reliability == ReliabilityPolicy.RELIABLE, topic
    for pub in (sim.pub_rgb, sim.pub_depth, sim.pub_info, sim.pub_clock):
        assert pub.qos_profile.depth == 10 and pub.qos_profile.history == HistoryPolicy.KEEP_LAST


def test_reset_service_sends_time_back_to_zero_and_advances_the_seed(loop) -> None:
    sim, peer, clock = loop['sim'], loop['peer'], loop['topics']['clock']
    sim.reset(4)
    assert sim.advance(1.0)
    assert clock.wait_for(lambda m: m.clock.sec >= 0 and m.clock.nanosec > 9e8
                          or m.clock.sec >= 1)
    start = len(clock.messages)
    seed_before = sim.get_parameter('seed').value
    episode = sim.sim.episode
    response = peer.call(Trigger, '/sim/reset')
    assert response.success and f'seed {seed_before}' in response.message
    assert clock.wait_for(lambda m: m.clock.sec == 0 and m.clock.nanosec == 0, start=start)
    assert sim.sim.time == 0.0 and sim.sim.episode == episode + 1
    assert sim.get_parameter('seed').value == seed_before + 1
    doc = json.loads(loop['gt'].read_text())
    assert doc['episode'] == episode + 1 and doc['frames'] == []


def test_controller_executes_a_trajectory_given_in_the_camera_frame(loop) -> None:
    sim, ctrl = loop['sim'], loop['ctrl']
    sim.reset(2)
    assert sim.advance(0.1)
    with sim.lock:
        pose = sim.sim.optical_pose()
        start = sim.sim.ee_position()
    goal_world = start + np.array([0.08, 0.05, -0.04])
    goal_cam = pose.world_to_optical(goal_world[None])[0]
    _send(loop, 'traj', trajectory('sim_camera', sim.sim.time, [goal_cam], [1.0]))
    assert sim.advance(2.0)
    assert np.linalg.norm(sim.sim.ee_position() - goal_world) < 0.005
    assert ctrl.executions[-1]['kind'] == 'plan'
    assert ctrl.executions[-1]['frame_id'] == 'sim_camera'


def test_empty_trajectory_stops_motion(loop) -> None:
    sim = loop['sim']
    sim.reset(2)
    assert sim.advance(0.1)
    start = sim.sim.ee_position()
    far = start + np.array([0.2, 0.0, 0.0])
    _send(loop, 'traj', trajectory('world', sim.sim.time, [far], [4.0]))
    assert sim.advance(0.5)
    _send(loop, 'traj', trajectory('world', sim.sim.time, [], []))
    assert sim.advance(0.3)
    stopped = sim.sim.ee_position()
    assert sim.advance(1.5)
    assert np.linalg.norm(sim.sim.ee_position() - stopped) < 0.002
    assert np.linalg.norm(stopped - start) < 0.1, 'it stopped well before the goal'
    assert loop['ctrl'].executions[-1]['kind'] == 'stop'


def test_stale_and_unknown_frame_commands_are_dropped(loop) -> None:
    sim, ctrl = loop['sim'], loop['ctrl']
    sim.reset(2)
    assert sim.advance(0.5)
    start = sim.sim.ee_position()
    before = dict(ctrl.dropped)
    # Stamped 10 s ahead: made before a reset, on the old timeline.
    _send(loop, 'traj', trajectory('world', 10.5, [start + [0.1, 0, 0]], [0.5]))
    _send(loop, 'traj', trajectory('base_link', sim.sim.time, [start + [0.1, 0, 0]], [0.5]))
    assert sim.advance(1.0)
    assert ctrl.dropped.get('future_stamp', 0) == before.get('future_stamp', 0) + 1
    assert ctrl.dropped.get('unknown_frame', 0) == before.get('unknown_frame', 0) + 1
    assert np.linalg.norm(sim.sim.ee_position() - start) < 0.002


def test_gripper_schedule_pairs_with_its_trajectory_and_grasps(loop) -> None:
    sim = loop['sim']
    sim.reset(9)
    assert sim.advance(0.1)
    with sim.lock:
        cube = sim.sim.object_position('red_cube')
    stamp = sim.sim.time
    grip = JointTrajectory()
    grip.header.frame_id = 'world'
    grip.header.stamp = _time_msg(stamp)
    grip.joint_names = ['gripper']
    for t, pos in ((0.0, 0.08), (3.0, 0.0)):
        grip.points.append(JointTrajectoryPoint(positions=[pos], time_from_start=_duration(t)))
    # The gripper schedule arrives first; it waits for the trajectory with its stamp.
    _send(loop, 'grip', grip)
    _send(loop, 'traj', trajectory('world', stamp, [cube + [0, 0, 0.1], cube, cube],
                                   [1.5, 2.5, 3.5]))
    assert sim.advance(4.0)
    assert sim.sim.grasped == 'red_cube'
