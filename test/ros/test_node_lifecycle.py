"""Lifecycle transitions driven from another process, and staleness after a slow generation.

The node starts with ``autostart: false`` (what a launch file with a lifecycle manager
does), so this process walks it through configure and activate with the standard
``lifecycle_msgs`` services and checks that it subscribes only when active. Its backend is
the TEST-ONLY ``faults`` wrapper with ``delay:4`` around a replay recording: a generation
that takes 4 s (time enough for a loaded machine to move the clock while it runs), during
which this process moves ``/clock`` past the plan's validity, so
the plan must be refused as stale (ROS time, checked after generation) and never reach
``~/plan``. Deactivation unsubscribes and publishes a hold.

Runtime: about 12-17 s (one node start, one 4 s generation).
"""

import json
from pathlib import Path
from typing import Any, Dict, Iterator

from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
import pytest
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String
from trajectory_msgs.msg import MultiDOFJointTrajectory

import node_scene as scene
from ros_helpers import NODE, NodeHarness, NS, RosPeer, wait_until

TASK = 'open the drawer'
ANSWER = json.dumps([{'point_2d': [400, 500], 'label': 'gripper trajectory'},
                     {'point_2d': [450, 520], 'label': 'gripper trajectory'}])
STAMPS_S = (60.0, 60.5)
PARAMS: Dict[str, Any] = {
    'autostart': False,
    'backend.kind': 'faults', 'backend.faults_then': 'delay:4',
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
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeHarness]:
    tmp: Path = tmp_path_factory.mktemp('node_lifecycle')
    recording = scene.write_recording(tmp / 'answers.jsonl', [
        (scene.node_request(PARAMS, frame_messages(), TASK), ANSWER)])
    params = dict(PARAMS, **{'backend.replay_path': str(recording)})
    with NodeHarness(tmp, params, sim_time=True, clock_ns=10 * NS) as harness:
        yield harness


def _transition(peer: RosPeer, transition_id: int) -> bool:
    req = ChangeState.Request(transition=Transition(id=transition_id))
    return peer.call(ChangeState, NODE + '/change_state', req, timeout=60).success


def test_lifecycle_and_staleness_after_a_slow_generation(env: NodeHarness) -> None:
    h = env
    node, peer, status, clock = h.node, h.peer, h.status, h.clock
    state = peer.wait_for_lifecycle_state(NODE, 'unconfigured', 60, node.alive)
    assert state == 'unconfigured', node.output()
    image = peer.publisher(Image, 'cam0/image')
    info = peer.publisher(CameraInfo, 'cam0/camera_info')
    plans = peer.collect(String, NODE + '/plan')
    holds = peer.collect(MultiDOFJointTrajectory, NODE + '/trajectory')
    # Diagnostics flow from the start (steady clock): one received proves discovery
    # between the node and this peer is done, so a subscription would be seen by now.
    assert h.diagnostics.wait_for(lambda d: True, 20) is not None, node.output()
    assert peer.wait_for_publishers(NODE + '/status')
    assert image.get_subscription_count() == 0      # not active: not subscribed

    assert _transition(peer, Transition.TRANSITION_CONFIGURE)
    assert peer.wait_for_lifecycle_state(NODE, 'inactive', 10) == 'inactive'
    assert image.get_subscription_count() == 0
    assert _transition(peer, Transition.TRANSITION_ACTIVATE)
    assert peer.wait_for_lifecycle_state(NODE, 'active', 10) == 'active'
    for pub in (image, info, h.task_pub):
        assert peer.wait_for_subscribers(pub), pub.topic_name

    info.publish(scene.camera_info(0))
    for _, msg in frame_messages():
        image.publish(msg)
    now = h.set_clock(int((STAMPS_S[-1] + 0.2) * NS))
    assert h.wait_diag_value('camera cam0', 'frames', 2) >= 2
    # The camera model too (its own topic): without it the request fails closed
    # (grounding_failed, no_camera) before generating, which is not what this test is about.
    assert h.wait_diag_value('camera cam0', 'camera_infos', 1) >= 1
    h.send('slow', TASK)
    assert status.wait_for(lambda m: json.loads(m.data).get('status') == 'accepted', 10)
    # 'accepted' is published before the worker's pre-generation staleness check; the
    # node says 'generating' once that passed and the 4 s generation started, so moving
    # the clock now makes the plan go stale *after* generating, which is the point here.
    h.wait_generating('slow')
    clock.set(now + 10 * NS)          # the 4 s generation ends after valid_until
    data = h.final_status('slow')
    assert data['status'] == 'stale', data
    assert 'before generation' not in data['reason']   # caught after generating
    assert data['timings_ms']['generate'] >= 1000.0
    # The node counted the outcome (after it would have published a plan): no plan, ever.
    planner = h.wait_outcome_counted('stale', 1)
    assert int(planner.get('outcome.ok', 0)) == 0, planner
    assert plans.count() == 0

    mark = holds.count()
    assert _transition(peer, Transition.TRANSITION_DEACTIVATE)
    assert peer.wait_for_lifecycle_state(NODE, 'inactive', 10) == 'inactive'
    assert holds.wait_for(lambda m: True, 5, start=mark) is not None
    assert wait_until(lambda: image.get_subscription_count() == 0, 10)
    assert _transition(peer, Transition.TRANSITION_CLEANUP)
    assert peer.wait_for_lifecycle_state(NODE, 'unconfigured', 10) == 'unconfigured'
