"""The planner node in its own process, driven from this one: every output checked.

The node runs as a user runs it (the ``planner_node`` console script with ``--ros-args``
and a params file), with ``backend.kind: replay`` so model answers are deterministic. This
process publishes two cameras (cam0 raw ``rgb8`` with padded rows plus registered 32FC1
depth; cam1 JPEG ``CompressedImage`` plus ``compressedDepth``, sent to the model as context),
their CameraInfo, ``/clock`` (sim time) and tasks, and checks what comes back:

- ``~/plan`` validates against ``config/plan_v1.schema.json`` and ``PlanV1``; its stamp is
  the newest primary frame's; its 3D points equal an independent computation (node_scene);
- ``~/path``, ``~/trajectory``, ``~/gripper``, ``~/markers``, ``~/debug_image`` carry the
  same points and stamp; the trajectory is strictly timed within the velocity limit;
- switching ``ground.mode`` to depth at run time grounds on the depth image instead;
- an unparseable answer, a backend error, stale frames: nothing on ``~/plan``, a reason on
  ``~/status``; bad images are counted in ``/diagnostics`` while the node keeps running;
- periodic replanning runs on the ROS clock;
- bad parameter values are refused with a message naming them.

The recording is keyed by request fingerprints; they are computed here with the same
ingest, buffer and prompt code the node uses, from the same messages.

Runtime: about 25-35 s (one node start, eight planning requests).
"""

import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

from nav_msgs.msg import Path as PathMsg
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, MultiDOFJointTrajectory
from visualization_msgs.msg import Marker, MarkerArray

import node_scene as scene
from ros_helpers import NODE, NodeHarness, NS, wait_until

from cosmos_planner.model.plan_schema import PlanV1
from cosmos_planner.model.protocol import GenerationRequest
from cosmos_planner.resources import config_path

TASK = 'put the red block on the plate'
POINTS = [(300, 375), (400, 500), (500, 625), (600, 500), (700, 375)]
GRIPPER = [None, 'close', None, None, 'open']
ANSWER = json.dumps({
    'next_action': 'pick up the red block', 'steps': ['grasp the block', 'place it'],
    'trajectory': [dict({'point_2d': list(p), 'label': 'gripper trajectory'},
                        **({'gripper': g} if g else {})) for p, g in zip(POINTS, GRIPPER)]})
GARBAGE = 'Sure! The gripper should move to [12, oops'
OPEN_M, CLOSED_M = 0.085, 0.0
MAX_VEL = 0.2
#: Scenario name -> (first frame stamp in seconds, image seed).
SCENARIOS = {'outputs': (100.0, 1), 'garbage': (200.0, 2), 'miss': (300.0, 3),
             'stale': (400.0, 4), 'periodic': (500.0, 5)}
FRAMES_PER_SCENARIO = 3
FRAME_SPACING_S = 0.5

PARAMS: Dict[str, Any] = {
    'backend.kind': 'replay',
    'cameras.names': ['cam0', 'cam1'],
    'cameras.cam0.depth_topic': 'cam0/depth',
    'cameras.cam1.compressed': True,
    'cameras.cam1.depth_topic': 'cam1/depth', 'cameras.cam1.depth_compressed': True,
    'qos.reliable': True,
    'buffer.max_frames': 2, 'buffer.fps': 2.0, 'buffer.window_s': 4.0,
    'prompt.preset': 'plan', 'planner.max_attempts': 1,
    'ground.mode': 'plane', 'ground.plane': list(scene.TABLE_PLANE),
    'target.frame': scene.TARGET_FRAME,
    'target.translation': list(scene.CAM_TRANSLATION),
    'target.rotation_xyzw': [float(v) for v in scene.CAM_QUAT],
    'heights.approach_m': 0.0, 'heights.grasp_offset_m': 0.0, 'heights.carry_m': 0.0,
    'heights.place_m': 0.0, 'heights.insert_approach': False,
    'timing.gripper_dwell_s': 0.0, 'timing.nominal_speed_mps': 0.3,
    'safety.max_velocity_mps': MAX_VEL, 'safety.max_step_m': 1.0,
    'safety.workspace_min': [-1.0, -1.0, -0.5], 'safety.workspace_max': [1.0, 1.0, 1.5],
    'safety.max_plan_age_s': 5.0,
    'gripper.joint_name': 'test_gripper', 'gripper.open_position': OPEN_M,
    'gripper.closed_position': CLOSED_M,
    'output.ee_joint': 'tool0', 'diagnostics.period_s': 0.2, 'tf.use_tf': False,
}


def scenario_messages(name: str) -> List[Tuple[str, Any]]:
    """(topic, message) in publish order for one scenario: both cameras and depth."""
    start, seed = SCENARIOS[name]
    depth = scene.depth_image()
    out: List[Tuple[str, Any]] = []
    for i in range(FRAMES_PER_SCENARIO):
        stamp = int(round((start + i * FRAME_SPACING_S) * NS))
        out.append(('cam0/image', scene.raw_image(scene.colour_image(seed * 10 + i), stamp)))
        out.append(('cam0/depth', scene.depth_msg(depth, stamp)))
        out.append(('cam1/image/compressed', scene.jpeg_image(
            scene.colour_image(seed * 10 + i + 5, 320, 240), stamp)))
        out.append(('cam1/depth', scene.compressed_depth_msg(depth[:, :320], stamp)))
    return out


def newest_stamp_ns(name: str) -> int:
    start, _ = SCENARIOS[name]
    return int(round((start + (FRAMES_PER_SCENARIO - 1) * FRAME_SPACING_S) * NS))


def request(name: str, task: str) -> GenerationRequest:
    """Build the request the node builds for ``task`` after ``name``'s frames."""
    return scene.node_request(PARAMS, scenario_messages(name), task)


class Harness(NodeHarness):
    """The shared node harness plus both cameras' publishers and every output collected."""

    def __init__(self, tmp: Path) -> None:
        recording = scene.write_recording(tmp / 'answers.jsonl', [
            (request('outputs', TASK), ANSWER),
            (request('outputs', TASK), ANSWER),     # replanned once with depth
            (request('garbage', TASK), GARBAGE)])
        params = dict(PARAMS, **{'backend.replay_path': str(recording)})
        super().__init__(tmp, params, sim_time=True, clock_ns=50 * NS, status_depth=50,
                         diagnostics_depth=20)
        p = self.peer
        self.pubs = {
            'cam0/image': p.publisher(Image, 'cam0/image'),
            'cam0/depth': p.publisher(Image, 'cam0/depth'),
            'cam0/camera_info': p.publisher(CameraInfo, 'cam0/camera_info'),
            'cam1/image/compressed': p.publisher(CompressedImage, 'cam1/image/compressed'),
            'cam1/camera_info': p.publisher(CameraInfo, 'cam1/camera_info'),
            'cam1/depth': p.publisher(CompressedImage, 'cam1/depth'),
            'task': self.task_pub,
        }
        self.out = {
            'status': self.status,
            'plan': p.collect(String, NODE + '/plan'),
            'path': p.collect(PathMsg, NODE + '/path'),
            'trajectory': p.collect(MultiDOFJointTrajectory, NODE + '/trajectory'),
            'gripper': p.collect(JointTrajectory, NODE + '/gripper'),
            'markers': p.collect(MarkerArray, NODE + '/markers'),
            'debug_image': p.collect(Image, NODE + '/debug_image'),
            'diagnostics': self.diagnostics,
        }
        self.sent = {'cam0': 0, 'cam1': 0, 'depth': 0, 'depth1': 0}

    def start(self) -> None:
        self.wait_active(list(self.pubs.values()), outputs=(
            'plan', 'path', 'trajectory', 'gripper', 'markers', 'debug_image'))
        self.pubs['cam0/camera_info'].publish(scene.camera_info(0))
        self.pubs['cam1/camera_info'].publish(
            scene.camera_info(0, 'cam1_optical', 320, 240, distorted=False))
        # Counted before any task: a request without the camera model fails closed.
        for cam in ('cam0', 'cam1'):
            assert self.wait_diag_value(f'camera {cam}', 'camera_infos', 1) >= 1, self.output()

    # -- helpers ----------------------------------------------------------------------------
    def publish_scenario(self, name: str) -> int:
        """Publish a scenario's frames; wait until the node buffered them; set the clock."""
        for topic, msg in scenario_messages(name):
            self.pubs[topic].publish(msg)
            key = {'cam0/depth': 'depth', 'cam1/depth': 'depth1'}.get(topic, topic[:4])
            self.sent[key] += 1
        want = dict(self.sent)

        def received(d: Dict[str, Dict[str, str]]) -> bool:
            c0, c1 = d['cosmos_planner: camera cam0'], d['cosmos_planner: camera cam1']
            return (int(c0['frames']) >= want['cam0'] and int(c1['frames']) >= want['cam1']
                    and int(c0['depth_frames']) >= want['depth']
                    and int(c1['depth_frames']) >= want['depth1'])
        self.diag(20, pred=received)
        return self.set_clock(newest_stamp_ns(name) + NS // 5)

    def nothing_published_for(self, task_id: str, status: str, plans_before: int,
                              ok_before: int, seen_before: int) -> None:
        """Assert that no plan came of ``task_id``, which ended with ``status``.

        The node counts every outcome in /diagnostics after publishing its plan, if any;
        once the count includes this request, an unchanged ``outcome.ok`` proves the node
        published no plan for it, so the plan topic holds nothing in flight either.
        """
        planner = self.wait_outcome_counted(status, seen_before + 1)
        assert int(planner.get('outcome.ok', 0)) == ok_before, planner
        assert self.out['plan'].count() == plans_before
        assert all(json.loads(mm.data)['task_id'] != task_id
                   for mm in self.out['plan'].messages)


def _status_of(msg: String, task_id: str) -> Any:
    data = json.loads(msg.data)
    return data.get('status') if data.get('task_id') == task_id else None


def _outcomes(h: Harness) -> Dict[str, int]:
    """Return the node's outcome counters, keyed by status.

    Read from the newest /diagnostics; callers have just set the clock, so that message was
    published after every earlier request was counted.
    """
    planner = h.diag()['cosmos_planner: planner']
    return {k[len('outcome.'):]: int(v) for k, v in planner.items()
            if k.startswith('outcome.')}


@pytest.fixture(scope='module')
def harness(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with Harness(tmp_path_factory.mktemp('node_outputs')) as h:
        h.start()
        yield h


def _stamp_ns(header: Any) -> int:
    return header.stamp.sec * NS + header.stamp.nanosec


def _wait_msg(h: Harness, topic: str, stamp_ns: int, timeout: float = 10.0) -> Any:
    msg = h.out[topic].wait_for(lambda mm: _stamp_ns(mm.header) == stamp_ns, timeout)
    assert msg is not None, f'nothing on ~/{topic} stamped {stamp_ns}'
    return msg


def test_bad_images_are_counted_and_the_node_keeps_running(harness: Harness) -> None:
    h = harness
    before = h.diag()
    cam0, cam1 = 'cosmos_planner: camera cam0', 'cosmos_planner: camera cam1'
    stamp = 50 * NS
    short = scene.raw_image(scene.colour_image(9), stamp, pad=0)
    short.step = scene.WIDTH * 3 - 6                   # rows shorter than the pixels
    h.pubs['cam0/image'].publish(short)
    weird = scene.raw_image(scene.colour_image(9), stamp)
    weird.encoding = 'xyz_unknown16'
    h.pubs['cam0/image'].publish(weird)
    corrupt = scene.jpeg_image(scene.colour_image(9, 320, 240), stamp)
    corrupt.data = bytes(corrupt.data[:200]) + b'\x00garbage' * 50
    h.pubs['cam1/image/compressed'].publish(corrupt)
    base0, base1 = int(before[cam0]['bad_inputs']), int(before[cam1]['bad_inputs'])
    after = h.diag(10, pred=lambda d: int(d[cam0]['bad_inputs']) >= base0 + 2
                   and int(d[cam1]['bad_inputs']) >= base1 + 1)
    kinds0 = {k for k in after[cam0] if k.startswith('bad.')}
    kinds1 = {k for k in after[cam1] if k.startswith('bad.')}
    assert 'bad.unknown_encoding' in kinds0, after[cam0]
    assert len(kinds0) >= 2, after[cam0]                # the step error has its own cause
    assert kinds1 & {'bad.corrupt_compressed', 'bad.bad_data'}, after[cam1]
    assert int(after[cam0]['frames']) == int(before[cam0]['frames'])
    assert h.node.alive(), h.node.output()
    response = h.peer.call(Trigger, NODE + '/replan')   # still serving requests
    assert response.message


def test_plan_and_every_output_topic(harness: Harness) -> None:
    h = harness
    stamp = newest_stamp_ns('outputs')
    h.publish_scenario('outputs')
    h.send('outputs-1', TASK)
    status = h.final_status('outputs-1')
    assert status['status'] == 'ok', status
    plan_id = status['plan_id']

    # ~/plan: schema, model, stamp, frames, points
    plan_msg = h.out['plan'].wait_for(lambda mm: json.loads(mm.data)['plan_id'] == plan_id)
    assert plan_msg is not None
    errors = scene.validate_plan_json(plan_msg.data, config_path('plan_v1.schema.json'))
    assert errors == []
    plan = PlanV1.model_validate_json(plan_msg.data)
    expected = scene.ground(POINTS, scene.TABLE_PLANE)
    assert round(plan.stamp * 1e9) == stamp
    assert plan.valid_until == pytest.approx(plan.stamp + 5.0)
    assert (plan.task_id, plan.task, plan.frame_id) == ('outputs-1', TASK, 'world')
    assert plan.image_frame_id == scene.CAMERA_FRAME
    assert tuple(plan.image_size) == (scene.WIDTH, scene.HEIGHT)
    assert plan.next_action == 'pick up the red block'
    assert plan.model == 'recorded-test-model' and plan.preset == 'plan'
    assert [p.gripper for p in plan.trajectory] == GRIPPER
    np.testing.assert_allclose([p.pixel for p in plan.trajectory],
                               np.asarray(POINTS) / 1000.0 * [scene.WIDTH, scene.HEIGHT])
    np.testing.assert_allclose([p.position for p in plan.trajectory], expected, atol=1e-6)

    # ~/path: the same points, stamped with the frame, in the target frame
    path = _wait_msg(h, 'path', stamp)
    assert path.header.frame_id == 'world'
    got = np.array([[q.pose.position.x, q.pose.position.y, q.pose.position.z]
                    for q in path.poses])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert all(_stamp_ns(q.header) == stamp for q in path.poses)

    # ~/trajectory: same points, strictly increasing times, within the velocity limit
    traj = _wait_msg(h, 'trajectory', stamp)
    assert traj.joint_names == ['tool0'] and traj.header.frame_id == 'world'
    pos = np.array([[p.transforms[0].translation.x, p.transforms[0].translation.y,
                     p.transforms[0].translation.z] for p in traj.points])
    np.testing.assert_allclose(pos, expected, atol=1e-6)
    times = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9
                      for p in traj.points])
    assert times[0] >= 0 and np.all(np.diff(times) > 0), times
    speeds = np.linalg.norm(np.diff(pos, axis=0), axis=1) / np.diff(times)
    assert np.all(speeds <= MAX_VEL * (1 + 1e-6)), speeds
    assert speeds.max() == pytest.approx(MAX_VEL, rel=1e-3)   # nominal 0.3 capped at 0.2

    # ~/gripper: open until the grasp, closed while carrying, open at the release
    grip = _wait_msg(h, 'gripper', stamp)
    assert grip.joint_names == ['test_gripper']
    opening = [p.positions[0] for p in grip.points]
    assert opening == [OPEN_M, CLOSED_M, CLOSED_M, CLOSED_M, OPEN_M]
    np.testing.assert_allclose([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9
                                for p in grip.points], times, atol=1e-9)

    # ~/markers: clear first, then a line through the points
    markers = h.out['markers'].wait_for(
        lambda mm: any(_stamp_ns(k.header) == stamp for k in mm.markers))
    assert markers.markers[0].action == Marker.DELETEALL
    line = next(k for k in markers.markers if k.type == Marker.LINE_STRIP)
    np.testing.assert_allclose([[q.x, q.y, q.z] for q in line.points], expected, atol=1e-6)

    # ~/debug_image: the primary frame the plan was made from, annotated
    debug = _wait_msg(h, 'debug_image', stamp)
    from cosmos_planner.frames.ingest import FrameIngest
    last = [mm for t, mm in scenario_messages('outputs') if t == 'cam0/image'][-1]
    source = FrameIngest(max_pixels=448 * 448).image(last, 'cam0')
    assert debug.encoding == 'rgb8' and debug.header.frame_id == scene.CAMERA_FRAME
    assert (debug.height, debug.width) == source.image.shape[:2]
    drawn = np.frombuffer(bytes(debug.data), np.uint8).reshape(debug.height, debug.width, 3)
    assert np.count_nonzero(np.any(drawn != source.image, axis=2)) > 100

    # diagnostics saw the depth and the camera infos
    d = h.diag()
    assert int(d['cosmos_planner: camera cam0']['depth_frames']) >= FRAMES_PER_SCENARIO
    assert int(d['cosmos_planner: camera cam0']['camera_infos']) >= 1
    assert int(d['cosmos_planner: camera cam1']['depth_frames']) >= FRAMES_PER_SCENARIO
    assert not any(k.startswith('bad.depth_') for k in d['cosmos_planner: camera cam1'])

    # run-time switch to depth grounding: the depth image shows a lower plane
    results = h.peer.set_parameters(NODE, {'ground.mode': 'depth'})
    assert results[0].successful, results[0].reason
    try:
        plans_before = h.out['plan'].count()
        assert h.peer.call(Trigger, NODE + '/replan').success
        second = h.out['status'].wait_for(
            lambda mm: _status_of(mm, 'outputs-1') == 'ok'
            and json.loads(mm.data)['plan_id'] != plan_id, 20)
        assert second is not None, h.node.output()[-3000:]
        assert json.loads(second.data)['trigger'] == 'replan'
        plan2 = PlanV1.model_validate_json(h.out['plan'].wait_for(
            lambda mm: json.loads(mm.data)['plan_id'] == json.loads(second.data)['plan_id'],
            start=plans_before).data)
        np.testing.assert_allclose([p.position for p in plan2.trajectory],
                                   scene.ground(POINTS, scene.DEPTH_PLANE), atol=3e-3)
    finally:
        assert h.peer.set_parameters(NODE, {'ground.mode': 'plane'})[0].successful


def test_unparseable_answer_goes_to_status_not_plan(harness: Harness) -> None:
    h = harness
    h.publish_scenario('garbage')
    plans_before, counted = h.out['plan'].count(), _outcomes(h)
    h.send('garbage-1', TASK)
    status = h.final_status('garbage-1')
    assert status['status'] == 'parse_failed', status
    assert status['reason'] and GARBAGE[:20] in status['raw']
    h.nothing_published_for('garbage-1', 'parse_failed', plans_before, counted.get('ok', 0),
                            counted.get('parse_failed', 0))


def test_backend_error_goes_to_status_not_plan(harness: Harness) -> None:
    h = harness
    h.publish_scenario('miss')           # no recorded answer: the replay backend fails
    plans_before, counted = h.out['plan'].count(), _outcomes(h)
    h.send('miss-1', TASK)
    status = h.final_status('miss-1')
    assert status['status'] == 'backend_failed', status
    assert 'no recorded answer' in status['reason']
    d = h.diag(pred=lambda dd: dd['cosmos_planner: planner'].get('last_status')
               == 'backend_failed')
    assert int(d['cosmos_planner: planner']['failures']) >= 1
    h.nothing_published_for('miss-1', 'backend_failed', plans_before, counted.get('ok', 0),
                            counted.get('backend_failed', 0))


def test_stale_frames_are_refused(harness: Harness) -> None:
    h = harness
    h.publish_scenario('stale')
    h.set_clock(newest_stamp_ns('stale') + 60 * NS)      # frames are a minute old
    plans_before, counted = h.out['plan'].count(), _outcomes(h)
    h.send('stale-1', TASK)
    status = h.final_status('stale-1')
    assert status['status'] == 'stale', status
    assert status['check'] == 'stale'
    h.nothing_published_for('stale-1', 'stale', plans_before, counted.get('ok', 0),
                            counted.get('stale', 0))


def test_periodic_replanning_runs_on_the_ros_clock(harness: Harness) -> None:
    h = harness
    h.publish_scenario('periodic')
    h.send('periodic-1', TASK)                 # plans (and fails: no recorded answer)
    first = h.final_status('periodic-1')
    assert (first['trigger'], first['status']) == ('task', 'backend_failed'), first
    mark = h.out['status'].count()
    assert h.peer.set_parameters(NODE, {'replan_period_s': 1.0})[0].successful
    try:
        start = h.clock.ns
        for step in range(1, 4):               # sim time moves 3 s: the timer fires
            h.set_clock(start + step * NS)
        periodic = h.out['status'].wait_for(
            lambda mm: json.loads(mm.data).get('trigger') == 'periodic', 10, start=mark)
        assert periodic is not None, 'no periodic replanning on the ROS clock'
        assert json.loads(periodic.data)['task_id'] == 'periodic-1'
    finally:
        assert h.peer.set_parameters(NODE, {'replan_period_s': 0.0})[0].successful


def test_bad_parameters_are_refused_with_their_name(harness: Harness) -> None:
    h = harness
    cases = {
        'safety.max_velocity_mps': -1.0,       # below the declared range
        'ground.mode': 'lidar',                # not one of the choices
        'safety.workspace_min': [2.0, 2.0, 2.0],   # cross-field: above workspace_max
        'backend.kind': 'local',               # read-only at run time
        'replan_period_s': 1e9,                # above the declared range
    }
    for name, value in cases.items():
        result = h.peer.set_parameters(NODE, {name: value})[0]
        assert not result.successful, (name, value)
        assert name in result.reason, (name, result.reason)
    now = h.peer.get_parameters(NODE, list(cases))
    assert now['safety.max_velocity_mps'] == MAX_VEL
    assert now['ground.mode'] == 'plane' and now['backend.kind'] == 'replay'
    assert list(now['safety.workspace_min']) == [-1.0, -1.0, -0.5]
    ok = h.peer.set_parameters(NODE, {'replan_period_s': 0.0, 'watchdog.timeout_s': 3.0})
    assert all(r.successful for r in ok)
    assert wait_until(h.node.alive, 0.5)
