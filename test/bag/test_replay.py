"""Offline replay of generated scene bags: tiny checkpoint, recorded answers, output checks.

The output bag is checked with an independent reader (``mcap_ros2``), not with the code
that wrote it. The tiny checkpoint's answers are random, so the safety limits are widened
(``WIDE``) for plans to pass the gate; what is tested is the plumbing and the timing.

Runtime: about 20-30 s on 2 cores (tiny-model generations dominate).
"""

import json
from pathlib import Path
import shutil
from typing import Any, Dict, List

import cv2
from mcap_ros2.reader import read_ros2_messages
import pytest

from cosmos_planner.bag.diff import diff_runs, load_run, plan_content
from cosmos_planner.bag.errors import BagError
from cosmos_planner.bag.reader import BagReader
from cosmos_planner.bag.replay import Replay, replay_bag, ReplayOptions
from cosmos_planner.bag.scenes import SceneSpec, TASK_TOPIC, write_scene_bag
from cosmos_planner.model.plan_schema import PlanV1

TASK = 'put the red cube in the blue bowl'
#: Ground in the camera optical frame with the scene's depth; limits wide enough for the
#: random points of the tiny checkpoint.
WIDE = {'ground.mode': 'depth', 'target.frame': '', 'heights.up': [0.0, 0.0, -1.0],
        'safety.workspace_min': [-5.0, -5.0, -5.0], 'safety.workspace_max': [5.0, 5.0, 5.0],
        'safety.max_step_m': 5.0}
OUTPUT_TOPICS = ('/cosmos_planner/plan', '/cosmos_planner/path',
                 '/cosmos_planner/trajectory', '/cosmos_planner/gripper',
                 '/cosmos_planner/markers')


def _records(out: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in (out / 'plans.jsonl').read_text().splitlines()]


def _read_output(out: Path) -> Dict[str, list]:
    topics: Dict[str, list] = {}
    for m in read_ros2_messages(str(out / 'bag' / 'bag.mcap')):
        topics.setdefault(m.channel.topic, []).append(m)
    return topics


def _stamp(header: Any) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


@pytest.fixture(scope='module')
def runs(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> Dict[str, Any]:
    """Two scene bags replayed with the tiny checkpoint, answers recorded."""
    root = tmp_path_factory.mktemp('replay')
    raw = write_scene_bag(root / 'raw', SceneSpec(duration_s=3.0, tasks=((0.55, TASK),)))
    jpeg = write_scene_bag(root / 'jpeg', SceneSpec(
        storage='sqlite3', image='compressed', depth='16UC1', duration_s=2.4,
        tasks=((0.55, TASK), (1.55, '{"task": "now open the gripper", "task_id": "T2"}'))))
    out = {'root': root, 'raw_bag': raw, 'jpeg_bag': jpeg}
    out['raw'] = replay_bag(ReplayOptions(
        bag=root / 'raw', out=root / 'raw_tiny', backend='local', model=str(tiny_checkpoint),
        record=root / 'raw_answers.jsonl', replan_period_s=1.0, params=WIDE, progress=False))
    out['jpeg'] = replay_bag(ReplayOptions(
        bag=root / 'jpeg', out=root / 'jpeg_tiny', backend='local',
        model=str(tiny_checkpoint), record=root / 'jpeg_answers.jsonl', params=WIDE,
        progress=False, video_fps=5.0))
    return out


def test_replay_output_bag_holds_what_the_node_publishes(runs: Dict[str, Any]) -> None:
    out = runs['root'] / 'raw_tiny'
    records = _records(out)
    ok = [r for r in records if r['status'] == 'ok']
    assert runs['raw'].plans == len(ok) >= 1 and runs['raw'].requests == len(records)
    topics = _read_output(out)
    for topic in OUTPUT_TOPICS:
        assert [m.log_time_ns for m in topics[topic]] == [r['publish_ns'] for r in ok], topic
    for rec, pmsg, path, traj, grip in zip(ok, topics['/cosmos_planner/plan'],
                                           topics['/cosmos_planner/path'],
                                           topics['/cosmos_planner/trajectory'],
                                           topics['/cosmos_planner/gripper']):
        plan = PlanV1.model_validate_json(pmsg.ros_msg.data)
        # stamping rule: headers carry the source frame's stamp, log time is publish time
        assert round(plan.stamp * 1e9) == rec['source_stamp_ns'] == rec['clip_stamps_ns'][-1]
        for msg in (path.ros_msg, traj.ros_msg, grip.ros_msg):
            assert _stamp(msg.header) == rec['source_stamp_ns']
            assert msg.header.frame_id == plan.frame_id == 'front_camera_optical_frame'
        assert len(traj.ros_msg.points) == len(grip.ros_msg.points) == len(path.ros_msg.poses)
        assert len(traj.ros_msg.points) >= len(plan.trajectory)
        assert plan_content(json.loads(pmsg.ros_msg.data)) == plan_content(rec['plan'])
        assert rec['publish_ns'] == rec['request_ns'] + round(rec['model_ms'] * 1e6)
    statuses = [json.loads(m.ros_msg.data) for m in topics['/cosmos_planner/status']]
    assert [s['status'] for s in statuses if s['status'] != 'accepted'] == \
        [r['status'] for r in records]
    assert [s['task'] for s in statuses if s['status'] == 'accepted'] == [TASK]


def test_replay_schedule_follows_task_and_period_in_bag_time(runs: Dict[str, Any]) -> None:
    records = _records(runs['root'] / 'raw_tiny')
    task_ns = 100_000_000_000 + 550_000_000
    assert (records[0]['trigger'], records[0]['request_ns']) == ('task', task_ns)
    for prev, rec in zip(records, records[1:]):
        assert rec['trigger'] == 'periodic' and rec['request_ns'] % 1_000_000_000 == 0
        assert rec['request_ns'] >= prev['publish_ns']  # one request in flight
    for rec in records:  # the clip holds only frames stamped before the request
        assert max(rec['clip_stamps_ns']) <= rec['request_ns']


def test_replay_copies_the_inputs_it_used(runs: Dict[str, Any]) -> None:
    topics = _read_output(runs['root'] / 'raw_tiny')
    used = {s for r in _records(runs['root'] / 'raw_tiny') for s in r['clip_stamps_ns']}
    copied = {_stamp(m.ros_msg.header): m for m in topics['/front/image_raw']}
    assert set(copied) == used
    with BagReader(runs['root'] / 'raw') as reader:
        originals = {m.log_time_ns: m.raw for m in reader.messages(['/front/image_raw'])}
    for stamp, m in copied.items():
        assert m.log_time_ns == stamp + 10_000_000  # recorded log time kept
        assert bytes(m.ros_msg.data) == bytes(reader_image_data(originals[m.log_time_ns]))
    assert [m.ros_msg.data for m in topics[TASK_TOPIC]] == [TASK]
    assert topics['/front/camera_info'] and topics['/front/depth/image_raw']


def reader_image_data(raw: bytes) -> bytes:
    """Pixel bytes of a recorded Image payload (decoded with rclpy, another serializer)."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image

    return bytes(deserialize_message(raw, Image).data)


def test_annotated_video_and_summary(runs: Dict[str, Any]) -> None:
    out = runs['root'] / 'raw_tiny'
    cap = cv2.VideoCapture(str(out / 'annotated.mp4'))
    frames = 0
    while cap.read()[0]:
        frames += 1
    cap.release()
    summary = json.loads((out / 'summary.json').read_text())
    assert frames == summary['video_frames'] == 15  # 5 fps camera, at the 5 fps cap (2 % slack)
    assert summary['statuses'].get('ok', 0) == summary['plans']
    assert 'generate' in summary['stage_ms'] and summary['frames'] == 15
    assert summary['decoded_frames'] < summary['frames']  # lazy decode skipped some


def test_compressed_sqlite_bag_with_tasks_from_the_bag(runs: Dict[str, Any]) -> None:
    records = _records(runs['root'] / 'jpeg_tiny')
    assert [(r['trigger'], r['task_id']) for r in records] == [('task', 'task-1'),
                                                               ('task', 'T2')]
    assert records[1]['task'] == 'now open the gripper'
    assert records[0]['request_ns'] == 100_550_000_000
    topics = _read_output(runs['root'] / 'jpeg_tiny')
    assert '/front/image_raw/compressed' in topics and '/front/depth/image_raw' in topics
    assert {_stamp(m.ros_msg.header) for m in topics['/front/depth/image_raw']} <= \
        {s for r in records for s in r['clip_stamps_ns']}


@pytest.mark.parametrize('name', ['raw', 'jpeg'])
def test_recorded_answers_reproduce_the_plans_without_a_model(
        runs: Dict[str, Any], name: str) -> None:
    root = runs['root']
    replayed = replay_bag(ReplayOptions(
        bag=root / name, out=root / f'{name}_again', responses=root / f'{name}_answers.jsonl',
        replan_period_s=1.0 if name == 'raw' else None, params=WIDE, progress=False,
        decode_all=(name == 'jpeg')))  # eager decoding must give the same pixels
    assert replayed.statuses == runs[name].statuses
    report = diff_runs(load_run(root / f'{name}_tiny'), load_run(root / f'{name}_again'))
    assert report.identical and report.aligned == runs[name].requests
    outputs = {}
    for run in ('tiny', 'again'):
        with BagReader(root / f'{name}_{run}' / 'bag') as reader:
            # all but ~/plan, whose JSON holds measured timings; compared as messages
            # because rclpy leaves CDR alignment padding bytes unset
            outputs[run] = sorted((m.topic, m.log_time_ns, repr(_rclpy_msg(m)))
                                  for m in reader.messages(OUTPUT_TOPICS[1:]))
    assert outputs['tiny'] == outputs['again']
    assert len(outputs['tiny']) == 4 * runs[name].plans


def _rclpy_msg(m: Any) -> Any:
    from rclpy.serialization import deserialize_message

    from cosmos_planner.bag.play import message_class

    return deserialize_message(m.raw, message_class(m.msgtype))


#: Fields that measure this run (time, bytes read) rather than say what it did.
MEASURED = frozenset({'timings_ms', 'wall_s', 'loop_s', 'frames_per_s', 'realtime_factor',
                      'stage_ms', 'read_bytes', 'out'})


def _unmeasured(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _unmeasured(v) for k, v in value.items() if k not in MEASURED}
    if isinstance(value, list):
        return [_unmeasured(v) for v in value]
    return value


def _run_content(out: Path) -> Dict[str, Any]:
    """Everything a run wrote, measured fields left out; output messages byte for byte."""
    messages = []
    with BagReader(out / 'bag', indexed=False) as reader:
        for m in reader.messages():
            if m.topic in ('/cosmos_planner/plan', '/cosmos_planner/status'):
                messages.append((m.topic, m.log_time_ns,
                                 _unmeasured(json.loads(reader.decode(m).data))))
            else:
                messages.append((m.topic, m.log_time_ns, m.raw))
    video = out / 'annotated.mp4'
    return {'records': _unmeasured(_records(out)),
            'summary': _unmeasured(json.loads((out / 'summary.json').read_text())),
            'messages': messages, 'video': video.read_bytes() if video.exists() else None}


#: (bag, options, whether the run leaves most payloads unread: no video, no copy of all).
INDEXED_CASES = [
    ('raw', dict(replan_period_s=1.0), False),
    ('raw', dict(replan_period_s=1.0, copy_inputs='all', debug_image=True, video=False),
     False),
    ('raw', dict(replan_period_s=1.0, decode_all=True), False),
    ('raw_sqlite3', dict(replan_period_s=1.0), False),
    ('jpeg', dict(), False),
    # no answers recorded for two cameras: failures take measured time, so model time zero
    ('two_cams', dict(cameras=['/front/image_raw', '/side/image_raw'], video=False,
                      model_time='zero'), True),
]


@pytest.mark.parametrize('name,options,lean', INDEXED_CASES)
def test_index_driven_read_gives_the_outputs_of_the_full_read(
        runs: Dict[str, Any], name: str, options: Dict[str, Any], lean: bool) -> None:
    """Reading payloads only when used changes nothing a run writes, only what it reads."""
    root = runs['root']
    bag = root / name
    if name == 'raw_sqlite3' and not bag.exists():
        write_scene_bag(bag, SceneSpec(duration_s=3.0, tasks=((0.55, TASK),),
                                       storage='sqlite3'))
    if name == 'two_cams' and not bag.exists():
        write_scene_bag(bag, SceneSpec(cameras=('front', 'side'), duration_s=1.2,
                                       tasks=((0.55, TASK),)))
    answers = root / ('jpeg_answers.jsonl' if name == 'jpeg' else 'raw_answers.jsonl')
    summaries, contents = [], []
    for full_read in (True, False):
        out = root / f'{name}_{len(options)}_{"full" if full_read else "indexed"}'
        summaries.append(replay_bag(ReplayOptions(
            bag=bag, out=out, responses=answers, params=WIDE, progress=False, force=True,
            full_read=full_read, **options)))
        contents.append(_run_content(out))
    full, indexed = contents
    assert indexed['records'] == full['records'] and indexed['summary'] == full['summary']
    assert indexed['messages'] == full['messages'] and indexed['video'] == full['video']
    assert full['records'] and full['messages']
    assert summaries[1].read_bytes <= summaries[0].read_bytes * 1.05  # index and headers
    if lean:
        assert summaries[1].read_bytes < summaries[0].read_bytes / 2


def test_existing_output_needs_force(runs: Dict[str, Any]) -> None:
    root = runs['root']
    opts = dict(bag=root / 'raw', out=root / 'raw_tiny', responses=root / 'raw_answers.jsonl',
                replan_period_s=1.0, params=WIDE, progress=False)
    before = (root / 'raw_tiny' / 'plans.jsonl').read_bytes()
    with pytest.raises(BagError) as err:
        replay_bag(ReplayOptions(**opts))
    assert err.value.kind == 'exists' and '--force' in str(err.value)
    assert (root / 'raw_tiny' / 'plans.jsonl').read_bytes() == before
    keep = root / 'not_a_run'
    keep.mkdir()
    (keep / 'thesis.tex').write_text('precious')
    with pytest.raises(BagError):
        replay_bag(ReplayOptions(**{**opts, 'out': keep, 'force': True}))
    assert (keep / 'thesis.tex').exists()


def test_missing_topics_and_task_are_clear_errors(runs: Dict[str, Any]) -> None:
    root = runs['root']
    with pytest.raises(BagError) as err:
        replay_bag(ReplayOptions(bag=root / 'raw', out=root / 'x1', cameras=['/rear/image'],
                                 task=TASK, progress=False))
    assert err.value.kind == 'missing_topic' and '/front/image_raw' in str(err.value)
    notask = write_scene_bag(root / 'notask', SceneSpec(duration_s=0.4, tasks=()))
    with pytest.raises(BagError) as err:
        replay_bag(ReplayOptions(bag=notask.path, out=root / 'x2', progress=False))
    assert '--task' in str(err.value)
    assert not (root / 'x1').exists() and not (root / 'x2').exists()


def test_corrupt_bag_stops_with_error_and_readable_output(runs: Dict[str, Any]) -> None:
    root = runs['root']
    bag = root / 'damaged'
    write_scene_bag(bag, SceneSpec(duration_s=10.0, image='both', tasks=((0.55, TASK),)))
    f = bag / 'damaged.mcap'
    data = bytearray(f.read_bytes())
    data[len(data) // 2: len(data) // 2 + 200_000] = bytes(200_000)
    f.write_bytes(bytes(data))
    with pytest.raises(BagError) as err:
        replay_bag(ReplayOptions(bag=bag, out=root / 'damaged_out', progress=False,
                                 cameras=['/front/image_raw'],
                                 responses=root / 'raw_answers.jsonl', params=WIDE,
                                 replan_period_s=1.0))
    assert err.value.kind == 'corrupt'
    summary = json.loads((root / 'damaged_out' / 'summary.json').read_text())
    assert 'corrupt' in summary['error'] and summary['frames'] > 0
    statuses = [m for m in read_ros2_messages(str(root / 'damaged_out' / 'bag' / 'bag.mcap'),
                                              topics=['/cosmos_planner/status'])]
    assert statuses  # everything written before the damage is readable


class InterruptingReplay(Replay):
    """FAULT INJECTION: Ctrl-C arrives after a few messages."""

    def _deliver(self, reader: Any, msg: Any) -> None:
        if self.summary.messages == 20:
            raise KeyboardInterrupt
        super()._deliver(reader, msg)


def test_ctrl_c_leaves_a_readable_run(runs: Dict[str, Any]) -> None:
    root = runs['root']
    out = root / 'interrupted'
    with pytest.raises(KeyboardInterrupt):
        InterruptingReplay(ReplayOptions(
            bag=root / 'raw', out=out, responses=root / 'raw_answers.jsonl',
            replan_period_s=1.0, params=WIDE, progress=False)).run()
    assert json.loads((out / 'summary.json').read_text())['interrupted'] is True
    assert (out / 'bag' / 'metadata.yaml').exists()
    copied = list(read_ros2_messages(str(out / 'bag' / 'bag.mcap')))
    assert copied and max(m.log_time_ns for m in copied) < 102_000_000_000
    shutil.rmtree(out)


def test_cli_replay_all_inputs_and_debug_image(runs: Dict[str, Any],
                                               capsys: pytest.CaptureFixture) -> None:
    from cosmos_planner.cli.main import main

    root = runs['root']
    args = ['replay', str(root / 'raw'), '--out', str(root / 'cli'), '--responses',
            str(root / 'raw_answers.jsonl'), '--replan-period', '1', '--copy-inputs', 'all',
            '--debug-image', '--no-progress', '--no-video']
    args += [a for k, v in WIDE.items() for a in ('-p', f'{k}:={json.dumps(v)}')]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f'plans {runs["raw"].plans}' in printed and 'x real time' in printed
    topics = _read_output(root / 'cli')
    assert {t: len(v) for t, v in topics.items() if not t.startswith('/cosmos_planner')} == \
        {t: n for t, n in runs['raw_bag'].counts.items() if t != TASK_TOPIC}
    assert len(topics['/cosmos_planner/debug_image']) == runs['raw'].plans
    assert not (root / 'cli' / 'annotated.mp4').exists()
    assert main(args) == 1 and '--force' in capsys.readouterr().err  # no silent overwrite


def test_two_cameras_primary_and_context(runs: Dict[str, Any]) -> None:
    root = runs['root']
    write_scene_bag(root / 'two', SceneSpec(cameras=('front', 'side'), duration_s=1.2,
                                            tasks=((0.55, TASK),)))
    summary = replay_bag(ReplayOptions(
        bag=root / 'two', out=root / 'two_out', cameras=['/front/image_raw', '/side/image_raw'],
        responses=root / 'raw_answers.jsonl', params=WIDE, progress=False))
    assert summary.frames == 12 and summary.requests == 1
    assert summary.statuses == {'backend_failed': 1}  # nothing recorded for these clips
    run = json.loads((root / 'two_out' / 'run.json').read_text())
    assert run['params']['cameras.names'] == ['front', 'side']
    assert run['params']['cameras.side.depth_topic'] == '/side/depth/image_raw'
    topics = _read_output(root / 'two_out')
    assert topics['/side/image_raw'] and topics['/front/image_raw']  # context frames copied


def test_missing_model_is_reported_in_the_run(runs: Dict[str, Any]) -> None:
    from cosmos_planner.errors import PlannerError

    root = runs['root']
    with pytest.raises(PlannerError) as err:
        replay_bag(ReplayOptions(bag=root / 'raw', out=root / 'nomodel', backend='local',
                                 model=str(root / 'no-such-model'), progress=False))
    summary = json.loads((root / 'nomodel' / 'summary.json').read_text())
    assert str(err.value) in summary['error'] and summary['requests'] == 0


def test_same_scene_in_a_humble_sqlite3_bag_gives_the_same_plans(runs: Dict[str, Any]) -> None:
    """Storage, rosbag2 version and distro change nothing: same frames, same plans."""
    root = runs['root']
    write_scene_bag(root / 'humble', SceneSpec(duration_s=3.0, tasks=((0.55, TASK),),
                                               storage='sqlite3', version=8, distro='humble'))
    replay_bag(ReplayOptions(bag=root / 'humble', out=root / 'humble_out',
                             responses=root / 'raw_answers.jsonl', replan_period_s=1.0,
                             params=WIDE, progress=False, typestore='humble'))
    report = diff_runs(load_run(root / 'raw_tiny'), load_run(root / 'humble_out'))
    assert report.identical and report.aligned == runs['raw'].requests


def test_an_overlong_task_in_the_bag_is_refused_and_the_replay_goes_on(
        runs: Dict[str, Any]) -> None:
    """As on the node: ``bad_task`` on ``~/status`` for the task, then the next task plans."""
    root = runs['root']
    bag = write_scene_bag(root / 'long_task', SceneSpec(
        duration_s=1.2, tasks=((0.2, json.dumps({'task': 'x' * 600, 'task_id': 'big'})),
                               (0.55, TASK))))
    summary = replay_bag(ReplayOptions(bag=bag.path, out=root / 'long_task_out',
                                       responses=root / 'raw_answers.jsonl', params=WIDE,
                                       progress=False))
    statuses = [json.loads(m.ros_msg.data)
                for m in _read_output(root / 'long_task_out')['/cosmos_planner/status']]
    refused = [s for s in statuses if s.get('status') == 'bad_task']
    assert len(refused) == 1 and refused[0]['task_id'] == 'big', statuses
    assert 'at most 500' in refused[0]['reason'] and refused[0]['task'].endswith('\u2026')
    assert summary.requests >= 1
    assert all(r['task'] == TASK for r in _records(root / 'long_task_out'))
