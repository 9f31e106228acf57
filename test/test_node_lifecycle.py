"""Lifecycle transitions driven from another process, and staleness after a slow generation.

The node starts with ``autostart: false`` (what a launch file with a lifecycle manager
does), so this process walks it through configure and activate with the standard
``lifecycle_msgs`` services and checks that it subscribes only when active. Its backend is
the TEST-ONLY ``faults`` wrapper with ``delay:2`` around a replay recording: a generation
that takes 2 s, during which this process moves ``/clock`` past the plan's validity, so
the plan must be refused as stale (ROS time, checked after generation) and never reach
``~/plan``. Deactivation unsubscribes and publishes a hold.

Runtime: about 10-15 s (one node start, one 2 s generation).
"""

import json
from pathlib import Path
import time
from typing import Any, Dict

from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
import pytest
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String
from trajectory_msgs.msg import MultiDOFJointTrajectory

import node_scene as scene
from ros_helpers import claim_domain_id, NodeProcess, node_command, release_domain_id
from ros_helpers import RosPeer, SimClock, wait_until, write_params_file

NODE = '/cosmos_planner'
NS = 1_000_000_000
TASK = 'open the drawer'
ANSWER = json.dumps([{'point_2d': [400, 500], 'label': 'gripper trajectory'},
                     {'point_2d': [450, 520], 'label': 'gripper trajectory'}])
STAMPS_S = (60.0, 60.5)
PARAMS: Dict[str, Any] = {
    'autostart': False,
    'backend.kind': 'faults', 'backend.faults_then': 'delay:2',
    'cameras.names': ['cam0'], 'qos.reliable': True, 'buffer.max_frames': 1,
    'prompt.preset': 'trajectory', 'planner.max_attempts': 1,
    'target.frame': '', 'tf.use_tf': False, 'safety.max_plan_age_s': 3.0,
    'ground.plane': [0.0, 0.0, 1.0, -1.0],           # 1 m in front of the camera
    'safety.workspace_min': [-2.0, -2.0, 0.0], 'safety.workspace_max': [2.0, 2.0, 2.0],
    'diagnostics.period_s': 0.2,
}


def frame_messages() -> list:
    return [('cam0/image', scene.raw_image(scene.colour_image(i), int(t * NS)))
            for i, t in enumerate(STAMPS_S)]


@pytest.fixture(scope='module')
def env(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp: Path = tmp_path_factory.mktemp('node_lifecycle')
    domain = claim_domain_id()
    recording = scene.write_recording(tmp / 'answers.jsonl', [
        (scene.request_fingerprint(PARAMS, frame_messages(), TASK), ANSWER)])
    params = dict(PARAMS, **{'backend.replay_path': str(recording)})
    params_file = write_params_file(tmp / 'params.yaml', 'cosmos_planner', params)
    cmd = node_command('planner_node', 'cosmos_planner.ros.planner_node') + [
        '--ros-args', '--params-file', str(params_file), '-p', 'use_sim_time:=true']
    node = NodeProcess(cmd, domain, tmp / 'node.log').start()
    peer = None
    try:
        peer = RosPeer(domain)
        yield node, peer
    finally:
        try:
            if peer is not None:
                peer.close()
        finally:
            node.stop()
            release_domain_id(domain)


def _transition(peer: RosPeer, transition_id: int) -> bool:
    req = ChangeState.Request(transition=Transition(id=transition_id))
    return peer.call(ChangeState, NODE + '/change_state', req, timeout=60).success


def test_lifecycle_and_staleness_after_a_slow_generation(env: Any) -> None:
    node, peer = env
    state = peer.wait_for_lifecycle_state(NODE, 'unconfigured', 60, node.alive)
    assert state == 'unconfigured', node.output()
    image = peer.publisher(Image, 'cam0/image')
    info = peer.publisher(CameraInfo, 'cam0/camera_info')
    task = peer.publisher(String, NODE + '/task')
    status = peer.collect(String, NODE + '/status')
    plans = peer.collect(String, NODE + '/plan')
    holds = peer.collect(MultiDOFJointTrajectory, NODE + '/trajectory')
    diagnostics = peer.collect(DiagnosticArray, '/diagnostics')
    clock = SimClock(peer, 10 * NS)
    try:
        time.sleep(1.0)
        assert image.get_subscription_count() == 0      # not active: not subscribed

        assert _transition(peer, Transition.TRANSITION_CONFIGURE)
        assert peer.wait_for_lifecycle_state(NODE, 'inactive', 10) == 'inactive'
        assert image.get_subscription_count() == 0
        assert _transition(peer, Transition.TRANSITION_ACTIVATE)
        assert peer.wait_for_lifecycle_state(NODE, 'active', 10) == 'active'
        for pub in (image, info, task):
            assert peer.wait_for_subscribers(pub), pub.topic_name

        info.publish(scene.camera_info(0))
        for _, msg in frame_messages():
            image.publish(msg)
        now = int((STAMPS_S[-1] + 0.2) * NS)
        clock.set(now)
        assert diagnostics.wait_for(
            lambda d: d.header.stamp.sec * NS + d.header.stamp.nanosec == now, 10)
        assert wait_until(lambda: any(
            kv.key == 'frames' and int(kv.value) >= 2
            for s in diagnostics.messages[-1].status for kv in s.values), 10)
        task.publish(String(data=json.dumps({'task': TASK, 'task_id': 'slow'})))
        assert status.wait_for(lambda m: json.loads(m.data).get('status') == 'accepted', 10)
        # 'accepted' is published before the worker's pre-generation staleness check: move the
        # clock only once generation (2 s) is surely under way, so the plan goes stale *after*
        # generating, which is what this test is about (a race otherwise, seen under load).
        time.sleep(0.8)
        clock.set(now + 10 * NS)          # the 2 s generation ends after valid_until
        final = status.wait_for(lambda m: json.loads(m.data).get('task_id') == 'slow'
                                and json.loads(m.data)['status'] not in ('accepted', 'generating'),
                                20)
        assert final is not None, node.output()[-3000:]
        data = json.loads(final.data)
        assert data['status'] == 'stale', data
        assert 'before generation' not in data['reason']   # caught after generating
        assert data['timings_ms']['generate'] >= 1000.0
        time.sleep(0.3)
        assert plans.count() == 0

        mark = holds.count()
        assert _transition(peer, Transition.TRANSITION_DEACTIVATE)
        assert peer.wait_for_lifecycle_state(NODE, 'inactive', 10) == 'inactive'
        assert holds.wait_for(lambda m: True, 5, start=mark) is not None
        assert wait_until(lambda: image.get_subscription_count() == 0, 10)
        assert _transition(peer, Transition.TRANSITION_CLEANUP)
        assert peer.wait_for_lifecycle_state(NODE, 'unconfigured', 10) == 'unconfigured'
    finally:
        clock.stop()
