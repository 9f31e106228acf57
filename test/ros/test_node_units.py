"""Pure tests of the node's building blocks: no executor, no subprocess, no discovery.

Message builders (the same ones the bag replay uses), the parameter table and its mapping
onto the core configs, the planning worker's supersede/cancel rules, and the diagnostics
counters. Runtime: about 1-2 s.
"""

import json
import threading
import time
from typing import Any, List, Optional, Tuple

from geometry_msgs.msg import PoseStamped
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo

from cosmos_planner.errors import ConfigError, GenerationCancelled, GroundingError
from cosmos_planner.model.plan_schema import PlannedPoint, PlanV1
from cosmos_planner.ros import messages as m
from cosmos_planner.ros.diagnostics import NodeStats, STALE, WARN
from cosmos_planner.ros.params import all_specs, node_config_from_values, NODE_PARAMS
from cosmos_planner.ros.params import descriptor, render_params_yaml, validate_changes
from cosmos_planner.ros.planner_node import parse_task, task_echo, task_problem
from cosmos_planner.pipeline.worker import PlanJob, PlanningWorker
from cosmos_planner.geometry.timing import time_waypoints, TimingConfig

NS = 1_000_000_000


# --- messages ------------------------------------------------------------------------------

@pytest.mark.parametrize('ns', [0, 1, NS - 1, NS, 1_795_560_018_151_217_700, 2 ** 62])
def test_stamps_round_trip_exactly(ns: int) -> None:
    assert m.stamp_to_ns(m.ns_to_stamp(ns)) == ns


def test_durations_round_to_the_nanosecond() -> None:
    d = m.seconds_to_duration(1.25)
    assert (d.sec, d.nanosec) == (1, 250_000_000)
    assert m.duration_to_seconds(m.seconds_to_duration(0.1 + 0.2)) == pytest.approx(0.3)


def _info(**kw: Any) -> CameraInfo:
    info = CameraInfo(width=640, height=480, distortion_model='plumb_bob',
                      d=[0.1, 0.0, 0.0, 0.0, 0.0],
                      k=[500.0, 0.0, 320.0, 0.0, 510.0, 240.0, 0.0, 0.0, 1.0])
    info.header.frame_id = 'cam'
    for key, value in kw.items():
        setattr(info, key, value)
    return info


def test_camera_model_from_info_keeps_intrinsics_and_frame() -> None:
    model = m.camera_model_from_info(_info())
    assert model.size == (640, 480) and model.frame_id == 'cam'
    assert model.matrix[0, 0] == 500.0 and model.matrix[1, 1] == 510.0
    assert model.D[0] == 0.1


def test_camera_model_from_info_applies_binning_and_roi() -> None:
    info = _info(binning_x=2, binning_y=2)
    info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = 20, 10, 400, 300
    model = m.camera_model_from_info(info)
    assert model.size == (200, 150)
    np.testing.assert_allclose(model.matrix[:2], [[250.0, 0.0, 150.0], [0.0, 255.0, 115.0]])


def test_uncalibrated_camera_info_is_refused() -> None:
    with pytest.raises(GroundingError, match='uncalibrated'):
        m.camera_model_from_info(_info(k=[0.0] * 9))


def test_pose_with_zero_quaternion_is_refused() -> None:
    pose = PoseStamped()
    pose.pose.orientation.w = 0.0
    with pytest.raises(ValueError, match='zero quaternion'):
        m.pose_from_msg(pose)
    pose.pose.orientation.z = 2.0
    _, _, _, quat = m.pose_from_msg(pose)
    np.testing.assert_allclose(quat, [0, 0, 1, 0])


def _plan_and_trajectory() -> Tuple[PlanV1, Any]:
    positions = np.array([[0.0, 0.0, 0.1], [0.1, 0.0, 0.1], [0.1, 0.2, 0.1]])
    traj = time_waypoints('world', 5 * NS + 7, positions, [None, 'close', 'open'],
                          (1.0, 0.0, 0.0, 0.0), TimingConfig(gripper_dwell_s=0.5), 0.2)
    points = [PlannedPoint(point_2d=(10.0 * i, 20.0), pixel=(1.0 * i, 2.0),
                           position=tuple(p)) for i, p in enumerate(positions)]
    plan = PlanV1(task_id='t', plan_id='p', task='x', stamp=5.000000007, frame_id='world',
                  image_size=(64, 48), valid_until=10.0, trajectory=points,
                  next_action='grasp')
    return plan, traj


def test_output_messages_share_points_timing_and_stamp() -> None:
    plan, traj = _plan_and_trajectory()
    out = m.build_output_messages(plan, traj, gripper=m.GripperSpec('g', 0.04, 0.0),
                                  ee_joint='tool0')
    assert set(out) == {'plan', 'path', 'trajectory', 'gripper', 'markers'}
    assert json.loads(out['plan'].data)['schema'] == 'cosmos_planner/plan/v1'
    n = len(traj)
    assert n == 5          # two dwell points for the two gripper commands
    for key in ('path', 'trajectory', 'gripper'):
        assert m.stamp_to_ns(out[key].header.stamp) == 5 * NS + 7
        assert out[key].header.frame_id == 'world'
    assert len(out['path'].poses) == len(out['trajectory'].points) == n
    times = [m.duration_to_seconds(p.time_from_start) for p in out['trajectory'].points]
    np.testing.assert_allclose(times, traj.times_s, atol=1e-9)
    assert [p.positions[0] for p in out['gripper'].points] == [0.04, 0.04, 0.0, 0.0, 0.04]
    first = out['trajectory'].points[0]
    assert first.velocities[0].linear.x == pytest.approx(0.1)   # nominal 0.1 m/s < cap 0.2
    assert out['markers'].markers[0].action == out['markers'].markers[0].DELETEALL


def test_hold_messages_hold_the_pose_or_stop() -> None:
    held = m.build_hold_messages(3 * NS, 'world', hold_position=(0.1, 0.2, 0.3))
    point = held['trajectory'].points[0]
    assert len(held['trajectory'].points) == 1 and point.time_from_start.sec == 0
    assert point.transforms[0].translation.z == 0.3
    assert held['path'].poses == [] and held['markers'].markers[0].action == 3
    assert m.build_hold_messages(3 * NS, 'world')['trajectory'].points == []


def test_status_json_accepts_numpy_and_enums() -> None:
    from cosmos_planner.model.results import PlanStatus
    data = json.loads(m.status_message({'a': np.float32(1.5), 'b': np.arange(2),
                                        's': PlanStatus.STALE}).data)
    assert data == {'a': 1.5, 'b': [0, 1], 's': 'stale'}


# --- parameters ------------------------------------------------------------------------------

def test_every_parameter_has_a_description_and_a_typed_default() -> None:
    for spec in all_specs(['camera']).values():
        assert len(spec.description) > 15, spec.name
        assert spec.check(spec.default) is None, spec.name
        desc = descriptor(spec)
        if spec.min is not None and isinstance(spec.default, float):
            assert desc.floating_point_range[0].from_value == spec.min
        if spec.min is not None and type(spec.default) is int:
            assert desc.integer_range[0].from_value == spec.min


@pytest.mark.parametrize('values, name', [
    ({'buffer.fps': -1.0}, 'buffer.fps'),
    ({'backend.kind': 'gpt'}, 'backend.kind'),
    ({'backend.kind': 'replay'}, 'backend.replay_path'),
    ({'cameras.primary': 'nope'}, 'cameras.primary'),
    ({'cameras.names': ['a', 'a']}, 'cameras.names'),
    ({'safety.workspace_min': [1.0, 1.0, 1.0], 'safety.workspace_max': [0.0, 0.0, 0.0]},
     'safety.workspace_min'),
    ({'ground.plane': [0.0, 0.0, 0.0, 1.0]}, 'ground.plane'),
    ({'backend.kind': 'faults', 'backend.faults': 'explode'}, 'backend.faults'),
    ({'planner.max_attempts': True}, 'planner.max_attempts'),
])
def test_bad_configurations_name_the_parameter(values: dict, name: str) -> None:
    with pytest.raises(ConfigError, match=name.replace('.', r'\.')):
        node_config_from_values(values)


def test_config_maps_cameras_backend_and_pipeline() -> None:
    cfg = node_config_from_values({
        'backend.kind': 'openai', 'backend.base_url': 'http://h:1/v1', 'cameras.names':
        ['front', 'wrist'], 'cameras.primary': 'wrist', 'cameras.front.compressed': True,
        'gripper.joint_name': 'finger', 'safety.max_velocity_mps': 0.1})
    assert cfg.primary == 'wrist' and cfg.context_cameras == ('front',)
    assert cfg.camera('front').image_topic == 'front/image/compressed'
    assert cfg.camera('wrist').info_topic == 'wrist/camera_info'
    assert cfg.backend_options['base_url'] == 'http://h:1/v1'
    assert cfg.pipeline.safety.max_velocity_mps == 0.1
    assert cfg.gripper.joint_name == 'finger'
    assert (cfg.backend_options['media'], cfg.backend_options['schema_mode'],
            cfg.backend_options['max_retries']) == ('video', 'structured_outputs', 2)


def test_remote_switches_for_servers_without_vllm_extras_reach_the_backend() -> None:
    """NIM or another server that lacks structured_outputs / video: the node can say so."""
    from cosmos_planner.backends.registry import backend_class

    cfg = node_config_from_values({
        'backend.kind': 'openai', 'backend.media': 'images',
        'backend.schema_mode': 'response_format', 'backend.max_retries': 0})
    opts = cfg.backend_options
    assert (opts['media'], opts['schema_mode'], opts['max_retries']) == (
        'images', 'response_format', 0)
    cls = backend_class('openai')
    backend = cls(**{**opts, 'probe': False})
    assert backend.config.media == 'images'
    assert backend.config.schema_mode == 'response_format'
    assert backend.config.max_retries == 0
    with pytest.raises(ConfigError, match=r'backend\.media'):
        node_config_from_values({'backend.kind': 'openai', 'backend.media': 'gif'})


def test_run_time_changes_are_validated_as_a_whole() -> None:
    specs = all_specs(['camera'])
    current = {name: spec.default for name, spec in specs.items()}
    assert validate_changes(specs, current, [('safety.max_velocity_mps', 0.3)]) is None
    assert 'safety.workspace_max' in validate_changes(
        specs, current, [('safety.workspace_max', [-1.0, -1.0, -1.0])])
    assert 'ground.mode' in validate_changes(specs, current, [('ground.mode', 'sonar')])
    assert validate_changes(specs, current, [('use_sim_time', True)]) is None


def test_rendered_yaml_lists_every_parameter() -> None:
    text = render_params_yaml(['a', 'b'])
    for spec in NODE_PARAMS:
        assert f'    {spec.name}: ' in text
    assert '    cameras.b.compressed: false' in text


@pytest.mark.parametrize('data, task, task_id', [
    ('  pick the cup ', 'pick the cup', 'new'),
    ('{"task": "open it", "task_id": "t7"}', 'open it', 't7'),
    ('{"task": "open it"}', 'open it', 'new'),
    ('{not json', '{not json', 'new'),
    ('', '', 'new'),
])
def test_task_messages(data: str, task: str, task_id: str) -> None:
    assert parse_task(data, lambda: 'new') == (task, task_id)


def test_overlong_task_is_refused_before_any_request_with_a_short_echo() -> None:
    """A task the prompt cannot carry is named as such; its status echo stays small."""
    text, task_id = parse_task(json.dumps({'task': 'x' * 20_000, 'task_id': 'big'}),
                               lambda: 'new')
    problem = task_problem(text)
    assert problem is not None and 'at most 500' in problem and task_id == 'big'
    echo = task_echo(text)
    assert echo == 'x' * 80 + '\u2026'
    assert task_problem('pick up the red cube') is None
    assert task_problem('y' * 500) is None and task_problem('y' * 501) is not None
    assert task_echo('pick up the red cube') == 'pick up the red cube'


# --- worker ---------------------------------------------------------------------------------

class _Generation:
    """A run_job that blocks until its job's cancel token is cancelled.

    ``release`` (set unless ``hold_before_start``) gates the start, so a test can land a
    cancel between "job taken" and "generation started" without guessing by sleeping;
    ``finish`` (set unless ``hold_after_cancel``) gates the return after the cancel.
    """

    def __init__(self, hold_before_start: bool = False,
                 hold_after_cancel: bool = False) -> None:
        self.taken = threading.Event()
        self.started = threading.Event()
        self.release = threading.Event()
        self.finish = threading.Event()
        if not hold_before_start:
            self.release.set()
        if not hold_after_cancel:
            self.finish.set()

    def run(self, job: PlanJob) -> str:
        self.taken.set()
        assert self.release.wait(10)
        self.started.set()
        cancelled = job.cancel.wait(10)
        assert self.finish.wait(10)
        return 'cancelled' if cancelled else 'finished'


def _worker(gen: _Generation) -> Tuple[PlanningWorker, List[Tuple[str, Any, bool]]]:
    done: List[Tuple[str, Any, bool]] = []
    worker = PlanningWorker(gen.run, lambda j, o, c: done.append((j.task_id, o, c)),
                            lambda j, e: done.append((j.task_id, e, False)))
    worker.start()
    return worker, done


def _wait(pred: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return False


def test_newer_job_supersedes_and_cancels_the_running_one() -> None:
    gen = _Generation()
    worker, done = _worker(gen)
    try:
        first = worker.submit('a', 'task a', 'task')
        assert gen.started.wait(5)
        gen.started.clear()
        worker.submit('b', 'task b', 'task')
        assert _wait(lambda: len(done) >= 1)
        assert done[0] == ('a', 'cancelled', False)
        assert worker.replaced_by(first) == 'superseded'
        assert first.cancel.reason == 'superseded'
        assert gen.started.wait(5) and worker.running.task_id == 'b'
    finally:
        assert worker.stop(5)
    assert done[-1][0] == 'b' and done[-1][2] is False   # stopped: cancelled, not current


def test_a_cancel_before_the_generation_starts_is_not_lost() -> None:
    gen = _Generation(hold_before_start=True)
    worker, done = _worker(gen)
    try:
        job = worker.submit('a', 'task a', 'task')
        assert gen.taken.wait(5)
        worker.cancel()                       # lands before the generation starts
        gen.release.set()
        assert _wait(lambda: len(done) == 1), 'the early cancel was lost'
        assert done[0] == ('a', 'cancelled', False)
        assert worker.replaced_by(job) == 'cancelled' and job.cancel.cancelled
    finally:
        worker.stop(5)


def test_a_cancel_after_a_supersede_reports_cancelled() -> None:
    gen = _Generation(hold_after_cancel=True)
    worker, done = _worker(gen)
    try:
        first = worker.submit('a', 'task a', 'task')
        assert gen.started.wait(5)
        second = worker.submit('b', 'task b', 'task')
        assert first.cancel.wait(5) and first.cancel.reason == 'superseded'
        worker.cancel()                       # drops b; a's result is cancelled, not replaced
        assert second.cancel.cancelled
        gen.finish.set()
        assert _wait(lambda: len(done) == 1)
        assert done[0] == ('a', 'cancelled', False)
        assert worker.replaced_by(first) == 'cancelled'
        assert not worker.busy
    finally:
        worker.stop(5)


def test_a_cancel_while_the_outcome_is_reported_drops_it() -> None:
    """A clock reset between "job finished" and "outcome published" still drops it."""
    seen: List[Optional[str]] = []

    def on_done(job: PlanJob, outcome: Any, current: bool) -> None:
        worker.cancel()                       # e.g. a clock reset on another thread
        seen.append(worker.replaced_by(job))

    worker = PlanningWorker(lambda job: 'finished', on_done, lambda j, e: None)
    worker.start()
    try:
        worker.submit('a', 'task a', 'task')
        assert _wait(lambda: len(seen) == 1)
        assert seen == ['cancelled']
    finally:
        worker.stop(5)


def test_errors_are_reported_and_the_worker_continues() -> None:
    calls = []

    def run(job: PlanJob) -> str:
        calls.append(job.task_id)
        if job.task_id == 'boom':
            raise GenerationCancelled('injected')
        return 'ok'

    done: List[Tuple[str, Any]] = []
    worker = PlanningWorker(run, lambda j, o, c: done.append((j.task_id, o)),
                            lambda j, e: done.append((j.task_id, e)))
    worker.start()
    try:
        worker.submit('boom', 'x', 'task')
        assert _wait(lambda: len(done) == 1)
        worker.submit('fine', 'y', 'task')
        assert _wait(lambda: len(done) == 2)
    finally:
        worker.stop(5)
    assert isinstance(done[0][1], GenerationCancelled) and done[1] == ('fine', 'ok')


# --- diagnostics -----------------------------------------------------------------------------

def test_silent_cameras_are_reported_once_per_silence() -> None:
    stats = NodeStats(['a', 'b'])
    stats.frame('a', 1, arrival_ros_ns=1 * NS, delay_ms=2.0)
    stats.frame('b', 1, arrival_ros_ns=1 * NS, delay_ms=None)
    assert stats.silent_cameras(2 * NS, 2 * NS) == []
    assert stats.silent_cameras(4 * NS, 2 * NS) == ['a', 'b']
    assert stats.silent_cameras(5 * NS, 2 * NS) == []
    stats.frame('a', 2, arrival_ros_ns=5 * NS, delay_ms=3.0)
    stats.bad_input('a', 'unknown_encoding', 'xyz')
    arr = stats.to_array(6 * NS, 2 * NS)
    levels = {s.name.split()[-1]: s.level for s in arr.status}
    assert levels['a'] == WARN and levels['b'] == STALE
    values = {kv.key: kv.value for kv in arr.status[0].values}
    assert values['bad.unknown_encoding'] == '1' and values['ingest_delay_samples'] == '2'
    assert stats.silent_cameras(9 * NS, 2 * NS) == ['a']
