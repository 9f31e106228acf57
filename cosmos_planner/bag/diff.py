"""``cosmos-planner diff RUN_A RUN_B``: compare two runs' plans frame by frame.

A regression question is "for the same camera frame, did the new prompt / model / parser
decide differently?". Plans are therefore aligned on their *source-frame stamp* (the stamp
of the newest primary frame the plan was made from: the plan's ``stamp``), not on request
order or wall time, so runs with different model latencies still line up where they planned
on the same frame.

A run is a replay output directory (its ``plans.jsonl``, one record per planning request,
failures included) or any bag holding the planner's ``~/plan`` topic (a replay output bag
or a recording of the live node; plans only, failures are not in ``~/plan``).

Content compared: status, next action, steps, trajectory (model points, pixels within
``--px-tol``, 3D positions within ``--m-tol``, gripper commands, labels), frame ids, image
size, valid-until, preset and reasoning. Not compared: ids, timings and the model name
(shown in the header: a new model is the point of many diffs). Exit status: 0 when every
aligned plan is identical and no frame was planned in only one run, 1 otherwise, 2 when a
run cannot be read.
"""

import argparse
from collections import Counter
from dataclasses import dataclass, field
import json
import math
from pathlib import Path
import sys
from typing import Any, Dict, Iterable, List, Optional, Tuple

from cosmos_planner.bag.errors import BagError

PLANS_FILE = 'plans.jsonl'
DEFAULT_PLAN_TOPIC = '/cosmos_planner/plan'
#: Plan fields that do not describe the decision.
IGNORED_FIELDS = ('task_id', 'plan_id', 'timings_ms', 'model')

Key = Tuple[int, int]


@dataclass
class RunRecord:
    """One planning request of a run, reduced to what diff needs."""

    stamp_ns: Optional[int]
    status: str
    plan: Optional[Dict[str, Any]] = None
    reason: str = ''
    task: str = ''


@dataclass
class Difference:
    """One aligned frame whose outcomes differ (or that only one run planned)."""

    stamp_ns: int
    occurrence: int
    kind: str
    fields: List[str] = field(default_factory=list)
    a: Optional[RunRecord] = None
    b: Optional[RunRecord] = None
    max_px: float = 0.0


@dataclass
class DiffReport:
    """Everything diff found; ``identical`` is the exit criterion."""

    a: str
    b: str
    models: Tuple[str, str] = ('', '')
    aligned: int = 0
    same: int = 0
    differences: List[Difference] = field(default_factory=list)
    unstamped: Tuple[int, int] = (0, 0)
    status_a: Dict[str, int] = field(default_factory=dict)
    status_b: Dict[str, int] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        return not self.differences

    def to_json(self) -> Dict[str, Any]:
        return {
            'a': self.a, 'b': self.b, 'models': list(self.models), 'aligned': self.aligned,
            'same': self.same, 'identical': self.identical,
            'status_a': self.status_a, 'status_b': self.status_b,
            'unstamped': list(self.unstamped),
            'differences': [{
                'stamp_ns': d.stamp_ns, 'occurrence': d.occurrence, 'kind': d.kind,
                'fields': d.fields, 'max_px': d.max_px,
                'a': _summary(d.a), 'b': _summary(d.b)} for d in self.differences],
        }


def _summary(rec: Optional[RunRecord]) -> Optional[Dict[str, Any]]:
    if rec is None:
        return None
    plan = rec.plan or {}
    return {'status': rec.status, 'reason': rec.reason, 'next_action': plan.get('next_action'),
            'points': len(plan.get('trajectory') or [])}


def plan_content(plan: Dict[str, Any]) -> Dict[str, Any]:
    """Strip ids, timings and model name from a plan (PlanV1 JSON dict): what must match."""
    return {k: v for k, v in plan.items() if k not in IGNORED_FIELDS}


def stamp_ns_of(plan: Dict[str, Any]) -> int:
    """Source-frame stamp of a plan in integer ns (PlanV1 stores float seconds)."""
    return int(round(float(plan['stamp']) * 1e9))


# -- loading runs ----------------------------------------------------------------------------
def load_run(path: Path, plan_topic: str = DEFAULT_PLAN_TOPIC) -> List[RunRecord]:
    """Load the records of a run directory (``plans.jsonl``) or of a bag's plan topic."""
    path = Path(path)
    if (path / PLANS_FILE).is_file():
        return _load_jsonl(path / PLANS_FILE)
    if path.is_file() and path.suffix == '.jsonl':
        return _load_jsonl(path)
    if path.exists():
        return _load_bag(path, plan_topic)
    raise BagError(f'run {path} does not exist', kind='not_found')


def _load_jsonl(path: Path) -> List[RunRecord]:
    out = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            plan = rec.get('plan')
            stamp = rec.get('source_stamp_ns')
            out.append(RunRecord(stamp_ns=None if stamp is None else int(stamp),
                                 status=str(rec['status']), plan=plan,
                                 reason=str(rec.get('reason') or ''),
                                 task=str(rec.get('task') or '')))
        except (ValueError, KeyError, TypeError) as exc:
            raise BagError(f'{path}:{number} is not a plan record: {exc}',
                           kind='bad_run') from None
    return out


def _load_bag(path: Path, plan_topic: str) -> List[RunRecord]:
    from cosmos_planner.bag.reader import BagReader

    out = []
    with BagReader(path) as reader:
        reader.require(plan_topic, ('std_msgs/msg/String',))
        for msg in reader.messages([plan_topic]):
            text = reader.decode(msg).data
            try:
                plan = json.loads(text)
                out.append(RunRecord(stamp_ns=stamp_ns_of(plan), status='ok', plan=plan,
                                     task=str(plan.get('task', ''))))
            except (ValueError, KeyError, TypeError) as exc:
                raise BagError(f'{plan_topic} at log time {msg.log_time_ns} in {path} is not '
                               f'a plan: {exc}', kind='bad_run') from None
    return out


def _index(records: Iterable[RunRecord]) -> Tuple[Dict[Key, RunRecord], int]:
    """Key records by (source stamp, occurrence); count those without a stamp."""
    seen: Counter = Counter()
    keyed: Dict[Key, RunRecord] = {}
    unstamped = 0
    for rec in records:
        if rec.stamp_ns is None:
            unstamped += 1
            continue
        keyed[(rec.stamp_ns, seen[rec.stamp_ns])] = rec
        seen[rec.stamp_ns] += 1
    return keyed, unstamped


# -- comparing -------------------------------------------------------------------------------
def _close(x: Any, y: Any, tol: float) -> bool:
    if x is None or y is None:
        return x is y
    return all(math.isclose(float(a), float(b), rel_tol=0.0, abs_tol=tol) or a == b
               for a, b in zip(x, y)) and len(x) == len(y)


def compare_plans(a: Dict[str, Any], b: Dict[str, Any], px_tol: float = 0.5,
                  m_tol: float = 1e-4) -> Tuple[List[str], float]:
    """Names of the fields that differ, and the largest pixel distance between points."""
    ca, cb = plan_content(a), plan_content(b)
    fields = sorted(k for k in set(ca) | set(cb)
                    if k != 'trajectory' and ca.get(k) != cb.get(k))
    ta, tb = ca.get('trajectory') or [], cb.get('trajectory') or []
    max_px = 0.0
    if len(ta) != len(tb):
        fields.append('trajectory.length')
    for pa, pb in zip(ta, tb):
        max_px = max(max_px, math.dist(pa['pixel'], pb['pixel']))
    checks = (('point_2d', px_tol), ('pixel', px_tol), ('position', m_tol))
    for name, tol in checks:
        if any(not _close(pa.get(name), pb.get(name), tol) for pa, pb in zip(ta, tb)):
            fields.append(f'trajectory.{name}')
    for name in ('gripper', 'label'):
        if any(pa.get(name) != pb.get(name) for pa, pb in zip(ta, tb)):
            fields.append(f'trajectory.{name}')
    return fields, max_px


def diff_runs(a: List[RunRecord], b: List[RunRecord], name_a: str = 'A', name_b: str = 'B',
              px_tol: float = 0.5, m_tol: float = 1e-4) -> DiffReport:
    """Align two runs on source-frame stamps and list where they differ."""
    ka, ua = _index(a)
    kb, ub = _index(b)

    def model(recs: List[RunRecord]) -> str:
        names = sorted({str((r.plan or {}).get('model', '')) for r in recs if r.plan})
        return ', '.join(n for n in names if n) or '?'

    report = DiffReport(a=name_a, b=name_b, models=(model(a), model(b)), unstamped=(ua, ub),
                        status_a=dict(Counter(r.status for r in a)),
                        status_b=dict(Counter(r.status for r in b)))
    for key in sorted(set(ka) | set(kb)):
        ra, rb = ka.get(key), kb.get(key)
        if ra is None or rb is None:
            report.differences.append(Difference(
                key[0], key[1], 'only_a' if rb is None else 'only_b', a=ra, b=rb))
            continue
        report.aligned += 1
        fields: List[str] = []
        max_px = 0.0
        if ra.status != rb.status:
            fields.append('status')
        if ra.plan is not None and rb.plan is not None:
            more, max_px = compare_plans(ra.plan, rb.plan, px_tol, m_tol)
            fields.extend(more)
        elif ra.reason != rb.reason and ra.status == rb.status:
            fields.append('reason')
        if fields:
            report.differences.append(Difference(key[0], key[1], 'changed', fields, ra, rb,
                                                 max_px))
        else:
            report.same += 1
    return report


def format_report(report: DiffReport, limit: int = 50) -> str:
    """Markdown summary plus one table row per differing frame (first ``limit``)."""
    lines = [f'# diff {report.a} -> {report.b}', '',
             f'models: {report.models[0]} -> {report.models[1]}',
             f'requests by status: A {report.status_a}  B {report.status_b}',
             f'aligned frames: {report.aligned}, identical: {report.same}, '
             f'differing: {sum(d.kind == "changed" for d in report.differences)}, '
             f'only in A: {sum(d.kind == "only_a" for d in report.differences)}, '
             f'only in B: {sum(d.kind == "only_b" for d in report.differences)}']
    if report.unstamped != (0, 0):
        lines.append(f'requests without frames (not aligned): A {report.unstamped[0]}, '
                     f'B {report.unstamped[1]}')
    if not report.differences:
        lines += ['', 'identical']
        return '\n'.join(lines)
    lines += ['', '| frame stamp (s) | A | B | differs in | max px |',
              '|---|---|---|---|---|']

    def cell(rec: Optional[RunRecord]) -> str:
        if rec is None:
            return '-'
        if rec.plan is None:
            return f'{rec.status} {rec.reason}'.strip()
        action = rec.plan.get('next_action') or ''
        return f'{rec.status}: {action[:40]} ({len(rec.plan.get("trajectory") or [])} pts)'

    for d in report.differences[:limit]:
        stamp = f'{d.stamp_ns * 1e-9:.3f}' + (f' #{d.occurrence}' if d.occurrence else '')
        lines.append(f'| {stamp} | {cell(d.a)} | {cell(d.b)} | '
                     f'{", ".join(d.fields) or d.kind} | {d.max_px:.1f} |')
    if len(report.differences) > limit:
        lines.append(f'... {len(report.differences) - limit} more')
    return '\n'.join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``cosmos-planner diff``."""
    parser.add_argument('run_a', help='replay output directory, plans.jsonl or bag')
    parser.add_argument('run_b', help='replay output directory, plans.jsonl or bag')
    parser.add_argument('--px-tol', type=float, default=0.5,
                        help='pixel / model-coordinate tolerance for trajectory points')
    parser.add_argument('--m-tol', type=float, default=1e-4,
                        help='tolerance for 3D positions, metres')
    parser.add_argument('--plan-topic', default=DEFAULT_PLAN_TOPIC,
                        help='plan topic when a run is a bag')
    parser.add_argument('--json', dest='json_out', default=None, metavar='FILE',
                        help='also write the full report as JSON')
    parser.add_argument('--limit', type=int, default=50, help='rows shown in the table')


def run(args: argparse.Namespace) -> int:
    """Entry point of ``cosmos-planner diff``: 0 identical, 1 different, 2 unreadable."""
    try:
        a = load_run(Path(args.run_a), args.plan_topic)
        b = load_run(Path(args.run_b), args.plan_topic)
    except BagError as exc:
        print(f'cosmos-planner diff: {exc}', file=sys.stderr)
        return 2
    report = diff_runs(a, b, args.run_a, args.run_b, args.px_tol, args.m_tol)
    print(format_report(report, args.limit))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report.to_json(), indent=2) + '\n')
    return 0 if report.identical else 1
