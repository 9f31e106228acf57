"""``cosmos-planner diff``: plans aligned on source frames, tolerances, bag input, exit codes.

Runtime: under 2 s.
"""

import copy
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from cosmos_planner.bag.diff import diff_runs, format_report, load_run
from cosmos_planner.bag.writer import BagWriter
from cosmos_planner.cli.main import main
from cosmos_planner.model.plan_schema import PlannedPoint, PlanV1

S = 1_000_000_000


def _plan(stamp_ns: int, action: str = 'pick up the cube', shift_px: float = 0.0,
          model: str = 'model-a') -> Dict[str, Any]:
    points = [PlannedPoint(point_2d=(500.0 + shift_px, 400.0), pixel=(320.0 + shift_px, 192.0),
                           position=(0.1, 0.0, 0.7), gripper=None),
              PlannedPoint(point_2d=(600.0, 450.0), pixel=(384.0, 216.0),
                           position=(0.2, 0.05, 0.75), gripper='close')]
    plan = PlanV1(task_id='task-1', plan_id=f'plan-{stamp_ns}', task='pick', stamp=stamp_ns * 1e-9,
                  frame_id='cam', image_size=(640, 480), valid_until=stamp_ns * 1e-9 + 5.0,
                  next_action=action, steps=['grasp', 'lift'], trajectory=points, model=model,
                  timings_ms={'generate': 123.0})
    return plan.model_dump(by_alias=True, mode='json')


def _record(stamp_ns: Optional[int], plan: Optional[Dict[str, Any]] = None,
            status: str = 'ok', reason: str = '') -> Dict[str, Any]:
    return {'source_stamp_ns': stamp_ns, 'status': status, 'reason': reason, 'plan': plan,
            'task': 'pick'}


def _write(path: Path, records: List[Dict[str, Any]]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / 'plans.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in records))
    return path


@pytest.fixture
def base() -> List[Dict[str, Any]]:
    return [_record(100 * S, _plan(100 * S)), _record(101 * S, _plan(101 * S)),
            _record(102 * S, None, 'rejected', 'step too long'),
            _record(None, None, 'no_frames')]


def test_identical_runs_ignore_ids_timings_and_model(tmp_path: Path, base: list) -> None:
    other = copy.deepcopy(base)
    for rec in other:
        if rec['plan']:
            rec['plan'].update(plan_id='other', task_id='x', model='model-b',
                               timings_ms={'generate': 999.0})
    report = diff_runs(load_run(_write(tmp_path / 'a', base)),
                       load_run(_write(tmp_path / 'b', other)))
    assert report.identical and report.aligned == 3 and report.same == 3
    assert report.models == ('model-a', 'model-b') and report.unstamped == (1, 1)
    assert 'identical' in format_report(report)


def test_changed_plans_are_listed_per_frame(tmp_path: Path, base: list) -> None:
    other = copy.deepcopy(base)
    other[0]['plan'] = _plan(100 * S, action='push the cube', shift_px=3.0)
    other[1]['plan'] = _plan(101 * S, shift_px=0.2)  # within the 0.5 px tolerance
    other[2] = _record(102 * S, _plan(102 * S))  # B planned where A was rejected
    other.append(_record(103 * S, _plan(103 * S)))  # only B planned this frame
    report = diff_runs(load_run(_write(tmp_path / 'a', base)),
                       load_run(_write(tmp_path / 'b', other)))
    assert not report.identical
    by_stamp = {d.stamp_ns: d for d in report.differences}
    assert set(by_stamp) == {100 * S, 102 * S, 103 * S}
    first = by_stamp[100 * S]
    assert first.kind == 'changed' and first.max_px == pytest.approx(3.0)
    assert first.fields == ['next_action', 'trajectory.point_2d', 'trajectory.pixel']
    assert by_stamp[102 * S].fields == ['status']
    assert by_stamp[103 * S].kind == 'only_b'
    table = format_report(report)
    assert '| 100.000 |' in table and 'push the cube' in table


def test_plans_of_a_bag_compare_with_the_run_records(tmp_path: Path, base: list) -> None:
    run = _write(tmp_path / 'run', base)
    with BagWriter(tmp_path / 'bag') as bag:
        bag.add_topic('/cosmos_planner/plan', 'std_msgs/msg/String')
        cls = bag.typestore.types['std_msgs/msg/String']
        for rec in base:
            if rec['plan']:
                bag.write_msg('/cosmos_planner/plan', rec['source_stamp_ns'] + 5,
                              cls(data=json.dumps(rec['plan'])))
    from_bag = load_run(tmp_path / 'bag')
    assert [r.stamp_ns for r in from_bag] == [100 * S, 101 * S]
    report = diff_runs(load_run(run), from_bag)
    # the bag holds plans only: the rejected frame exists in the run alone
    assert report.same == 2 and [d.kind for d in report.differences] == ['only_a']


def test_cli_exit_codes_and_json(tmp_path: Path, base: list,
                                 capsys: pytest.CaptureFixture) -> None:
    a = _write(tmp_path / 'a', base)
    b = _write(tmp_path / 'b', base[:1])
    assert main(['diff', str(a), str(a)]) == 0
    assert main(['diff', str(a), str(b), '--json', str(tmp_path / 'r.json')]) == 1
    report = json.loads((tmp_path / 'r.json').read_text())
    assert [d['kind'] for d in report['differences']] == ['only_a', 'only_a']
    assert main(['diff', str(a), str(tmp_path / 'missing')]) == 2
    assert 'does not exist' in capsys.readouterr().err
    (tmp_path / 'bad').mkdir()
    (tmp_path / 'bad' / 'plans.jsonl').write_text('{"status": "ok"\n')
    assert main(['diff', str(a), str(tmp_path / 'bad')]) == 2
