"""Model-output fuzzing: whatever the model writes, nothing crashes and nothing unsafe leaves.

The model is untrusted input. These properties drive the real parse -> ground -> time -> gate
path (``PlanPipeline`` with the real ``Planner``; the answer text comes from the
``FaultInjectingBackend`` test double's ``garbage`` fault, i.e. a backend that returns exactly
the fuzzed text) with answers that are mostly *mutations of valid plans*, so they get past
JSON decoding and exercise schema validation, grounding and the gate instead of dying in the
tokenizer: truncations, character edits, NaN/Infinity and overflowing numbers, coordinates
outside 0-1000 (outside the image), thousands of waypoints, deep nesting, wrong types, long
strings, reasoning that contains a *different* JSON plan, unclosed blocks, lone surrogates,
non-UTF-8 bytes and oversized answers.

Properties:

- no crash: ``PlanPipeline.run`` never raises; at component level ``parse_answer`` raises only
  ``ParseError``, grounding only ``GroundingError``, the gate only ``SafetyRejection``;
- no invalid plan published: every OK outcome's plan validates against the *published*
  ``config/plan_v1.schema.json``, every 3D point lies inside the workspace box, every segment
  respects the step and velocity limits (recomputed here from positions and times, not read
  from the gate), times are finite and strictly increasing, and the points are those of the
  final answer, not of JSON quoted in the reasoning;
- most cases are mutations that reach schema validation (the share is counted, printed and
  held above a floor).

Reproducible: the ``ci`` hypothesis profile (``test/conftest.py``) derandomizes with no
example database, so CI sees the same cases each run; ``scripts/fuzz.sh`` draws new ones.
About 10,500 cases in total; runtime about 40-70 s on 2 busy cores.
Rerun: ``python -m pytest test/reliability/test_fuzz_model_output.py -q -s`` (``-s`` prints
the tallies).
"""

from collections import Counter
import json
import logging
import math
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from hypothesis import given, HealthCheck, settings, strategies as st
import jsonschema
import numpy as np
import pytest

from cosmos_planner.backends.faults import Fault, FaultInjectingBackend
from cosmos_planner.geometry.camera_model import CameraModel
from cosmos_planner.errors import GroundingError, ParseError, SafetyRejection
from cosmos_planner.frames.types import Clip, DepthFrame, Frame
from cosmos_planner.geometry.grounding import Grounder
from cosmos_planner.model.parser import MAX_TEXT_CHARS, parse_answer
from cosmos_planner.pipeline.plan_pipeline import PipelineInputs, PlanPipeline
from cosmos_planner.pipeline.config import PipelineConfig
from cosmos_planner.model.plan_schema import MAX_POINTS, PlanV1
from cosmos_planner.pipeline.planner import Planner
from cosmos_planner.resources import config_path
from cosmos_planner.model.results import PlanStatus
from cosmos_planner.geometry.safety import SafetyConfig, SafetyGate
from cosmos_planner.geometry.timing import TimedTrajectory

STAMP = 1_000 * 10**9
#: Cases per property; the four properties below add up to 10,500 generated cases.
PIPELINE_CASES = 6000
RAW_PARSER_CASES = 2000
GATE_CASES = 1500
GROUNDING_CASES = 1000
#: Share of pipeline cases that must get through JSON decoding into schema validation.
VALIDATION_FLOOR = 0.65
#: Share of pipeline cases that must become plans that grounding and the gate then judge.
GATE_FLOOR = 0.25


def fuzz(cases: int) -> settings:
    """Return settings for ``cases`` examples; the profile (conftest) decides if random."""
    return settings(max_examples=cases, deadline=None, suppress_health_check=list(HealthCheck))


PUBLISHED_SCHEMA = json.loads(Path(config_path('plan_v1.schema.json')).read_text())
SCHEMA_VALIDATOR = jsonschema.Draft202012Validator(PUBLISHED_SCHEMA)


# --- the scene: cameras 1 m above a table, looking down (PipelineConfig defaults) ---------

def _camera(width: int, height: int, f: float, d: Tuple[float, ...] = ()) -> CameraModel:
    return CameraModel(width, height, [f, 0, width / 2, 0, f, height / 2, 0, 0, 1], d,
                       'plumb_bob', 'cam_optical')


CAMERAS = (
    _camera(640, 480, 500.0),
    _camera(1280, 720, 900.0, (-0.2, 0.05, 0.001, -0.001, 0.0)),
    _camera(4096, 2160, 2600.0),
    _camera(33, 17, 20.0),
    _camera(1, 1, 1.0),
)
CONFIGS: Dict[str, PipelineConfig] = {
    'plane': PipelineConfig(),
    'depth': PipelineConfig.from_flat({'ground.mode': 'depth', 'ground.depth_patch_px': 3}),
    'tight': PipelineConfig.from_flat({
        'safety.workspace_min': [-0.2, -0.2, 0.0], 'safety.workspace_max': [0.2, 0.2, 0.3],
        'safety.max_step_m': 0.15, 'safety.max_waypoints': 12,
        'safety.max_velocity_mps': 0.05, 'timing.nominal_speed_mps': 0.2,
        'heights.approach_m': 0.08, 'heights.carry_m': 0.1}),
    'no_dwell': PipelineConfig.from_flat({'timing.gripper_dwell_s': 0.0,
                                          'heights.insert_approach': False}),
}


def _backend() -> FaultInjectingBackend:
    return FaultInjectingBackend(None, then=Fault('garbage', text=''))


PIPELINES = {name: PlanPipeline(Planner(_backend(), 'plan', max_attempts=1), cfg)
             for name, cfg in CONFIGS.items()}


def _depth_image(kind: str, camera: CameraModel) -> Optional[DepthFrame]:
    w, h = min(camera.width, 64), min(camera.height, 64)
    scale = max(camera.width / w, camera.height / h)
    w, h = max(1, round(camera.width / scale)), max(1, round(camera.height / scale))
    if kind == 'none':
        return None
    values = {'table': 1.0, 'nan': np.nan, 'zero': 0.0, 'inf': np.inf, 'negative': -1.0,
              'far': 1e30}
    depth = np.full((h, w), values.get(kind, 1.0), dtype=np.float32)
    if kind == 'holes':
        depth[::2, ::2] = np.nan
    if kind == 'wrong_aspect':
        depth = np.ones((h, w * 3 + 1), dtype=np.float32)
    return DepthFrame('front', STAMP, depth, 'cam_optical')


# --- valid plans, then mutations ----------------------------------------------------------

COORD = st.one_of(st.integers(0, 1000), st.floats(0, 1000, allow_nan=False),
                  st.sampled_from([0, 1000, 0.0, 1000.0, 499.5, 5e-324]))
GRIPPER = st.sampled_from([None, None, None, 'open', 'close', 'Closed', 'OPEN', 'opened'])


@st.composite
def valid_answers(draw: Callable) -> Dict[str, Any]:
    """Draw a schema-valid answer; points mostly a short walk, so a good share pass the gate."""
    n = draw(st.integers(1, 8))
    if draw(st.booleans()):
        x, y = draw(st.integers(300, 700)), draw(st.integers(300, 700))
        points = []
        for _ in range(n):
            points.append([x, y])
            x = min(1000, max(0, x + draw(st.integers(-60, 60))))
            y = min(1000, max(0, y + draw(st.integers(-60, 60))))
    else:
        points = [[draw(COORD), draw(COORD)] for _ in range(n)]
    trajectory = []
    for p in points:
        item: Dict[str, Any] = {'point_2d': p, 'label': 'gripper trajectory'}
        g = draw(GRIPPER)
        if g is not None:
            item['gripper'] = g
        trajectory.append(item)
    return {'next_action': draw(st.sampled_from(['pick up the cube', 'move left', '', None])),
            'steps': draw(st.lists(st.sampled_from(['grasp', 'lift', 'place']), max_size=3)),
            'trajectory': trajectory}


BAD_NUMBERS = [math.nan, math.inf, -math.inf, -1, -1e-9, 1000.0001, 1001, 1e308, 10**40,
               -10**40, 10**400, '12', '', True, False, None, [], {}, [1, 2], 1e-320]
BAD_VALUES = [None, 1, -1.5, True, 'x', '', [], {}, [[]], {'a': 1}, 'a' * 500, [1] * 50]


def _json_paths(value: Any, prefix: Tuple = ()) -> List[Tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _json_paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _json_paths(v, prefix + (i,))
    return out


def _set(doc: Any, path: Tuple, value: Any) -> Any:
    if not path:
        return value
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


def _points(doc: Dict[str, Any]) -> List[Dict[str, Any]]:
    return doc['trajectory']


STRUCTURAL = ('valid', 'coord', 'out_of_image', 'wrong_type', 'drop_key', 'extra_keys',
              'many_points', 'long_text', 'many_steps', 'arity', 'deep_nest', 'bare_list',
              'pairs', 'objects_no_list', 'duplicate_key')
#: Text mutations that keep the answer's meaning, then ones that break it; drawn half/half.
KEEPING = ('none', 'none', 'fence', 'open_fence', 'think_json', 'think_twice')
BREAKING = ('truncate', 'edit', 'prose', 'think_unclosed', 'nan_literal', 'control',
            'surrogate', 'huge', 'number_literal')
TEXTUAL = st.one_of(st.sampled_from(KEEPING), st.sampled_from(BREAKING))


@st.composite
def answer_texts(draw: Callable) -> Tuple[str, str, str, Optional[list]]:
    """(structural mutation, textual mutation, text, intended final points or None)."""
    doc = draw(valid_answers())
    kind = draw(st.sampled_from(STRUCTURAL))
    points = _points(doc)
    i = draw(st.integers(0, len(points) - 1))
    if kind == 'coord':
        points[i]['point_2d'][draw(st.integers(0, 1))] = draw(st.sampled_from(BAD_NUMBERS))
    elif kind == 'out_of_image':
        points[i]['point_2d'] = [draw(st.floats(-1e6, 1e6, allow_nan=False)),
                                 draw(st.floats(-1e6, 1e6, allow_nan=False))]
    elif kind == 'wrong_type':
        path = draw(st.sampled_from(_json_paths(doc)))
        doc = _set(doc, path, draw(st.sampled_from(BAD_VALUES)))
    elif kind == 'drop_key':
        key = draw(st.sampled_from(['point_2d', 'label', 'trajectory', 'next_action']))
        if key == 'trajectory' or key == 'next_action':
            doc.pop(key, None)
        else:
            points[i].pop(key, None)
    elif kind == 'extra_keys':
        doc['bbox_2d'] = [1, 2, 3, 4]
        points[i]['z'] = 'up'
        points[i]['point_3d'] = [1, 2, 3]
    elif kind == 'many_points':
        count = draw(st.sampled_from([MAX_POINTS, MAX_POINTS + 1, 100, 1000, 5000]))
        doc['trajectory'] = [dict(points[k % len(points)]) for k in range(count)]
    elif kind == 'long_text':
        field, n = draw(st.sampled_from(['next_action', 'label', 'step'])), \
            draw(st.sampled_from([200, 201, 5000]))
        if field == 'label':
            points[i]['label'] = 'L' * n
        elif field == 'step':
            doc['steps'] = ['s' * n]
        else:
            doc['next_action'] = 'a' * n
    elif kind == 'many_steps':
        doc['steps'] = ['step'] * draw(st.sampled_from([16, 17, 1000]))
    elif kind == 'arity':
        points[i]['point_2d'] = draw(st.sampled_from(
            [[], [5], [1, 2, 3], [[1, 2]], [[1], [2]], 'x,y', {'x': 1, 'y': 2}]))
    elif kind == 'deep_nest':
        depth = draw(st.sampled_from([1, 2, 14, 15, 16, 17, 100, 5000]))
        text = '[' * depth + json.dumps(doc) + ']' * depth
        return kind, 'none', text, None
    elif kind == 'bare_list':
        doc = points
    elif kind == 'pairs':
        doc = [p['point_2d'] for p in points]
    elif kind == 'objects_no_list':
        text = ', '.join(json.dumps(p) for p in points)
        return kind, 'none', text, [p['point_2d'] for p in points]
    elif kind == 'duplicate_key':
        decoy = json.dumps([{'point_2d': [1, 1]}])
        body = json.dumps(doc)
        text = '{"trajectory": ' + decoy + ', ' + body[1:]
        return kind, 'none', text, [p['point_2d'] for p in points]
    text = json.dumps(doc)
    final = _intended_points(doc)
    textual = draw(TEXTUAL)
    text, final = _mutate_text(draw, textual, text, final)
    return kind, textual, text, final


def _intended_points(doc: Any) -> Optional[list]:
    """Return the points a correct parser must publish for this (unbroken) document."""
    try:
        items = doc if isinstance(doc, list) else doc['trajectory']
        return [p if isinstance(p, list) else p['point_2d'] for p in items]
    except (TypeError, KeyError, IndexError):
        return None


def _mutate_text(draw: Callable, kind: str, text: str,
                 final: Optional[list]) -> Tuple[str, Optional[list]]:
    if kind == 'none':
        return text, final
    if kind == 'truncate':
        return text[:draw(st.integers(0, max(0, len(text) - 1)))], None
    if kind == 'edit':
        chars = list(text)
        for _ in range(draw(st.integers(1, 4))):
            pos = draw(st.integers(0, len(chars)))
            op = draw(st.sampled_from(['insert', 'delete', 'replace']))
            ch = draw(st.sampled_from(list('[]{}",:0-9.eE+- \\') + ['\x00', 'NaN']))
            if op == 'insert' or not chars:
                chars.insert(pos, ch)
            elif op == 'delete':
                del chars[min(pos, len(chars) - 1)]
            else:
                chars[min(pos, len(chars) - 1)] = ch
        return ''.join(chars), None
    if kind == 'fence':
        return f'Here is the plan:\n```json\n{text}\n```\nDone.', final
    if kind == 'open_fence':
        return f'```json\n{text}', final
    if kind == 'prose':
        return f'Sure [see below] {{not json}}: {text} (pixels [3, 4] are approximate)', None
    if kind == 'think_json':
        decoy = json.dumps({'trajectory': [{'point_2d': [7, 7]}, {'point_2d': [993, 993]}]})
        return f'<think>I could go {decoy} or [[1, 2]]. </think>\n{text}', final
    if kind == 'think_unclosed':
        return f'<think>thinking about {text}', None
    if kind == 'think_twice':
        return f'<think>a</think> [[9, 9]] </think> {text}', final
    if kind == 'nan_literal':
        literal = draw(st.sampled_from(['NaN', 'Infinity', '-Infinity', '1e999', '-1e999']))
        return text.replace('[', f'[{literal}, ', 1) if '[' in text else text, None
    if kind == 'number_literal':
        literal = draw(st.sampled_from(['9' * 40, '0' * 50 + '1', '1e-400', '-0', '1E3',
                                        '0x10', '1_000', '+5', '.5', '5.']))
        return text.replace('[', f'[{literal}, ', 1) if '[' in text else text, None
    if kind == 'control':
        return text.replace(',', ',\x00\x1b\u2028', 2), None
    if kind == 'surrogate':
        return text[:len(text) // 2] + '\ud800' + text[len(text) // 2:], None
    if kind == 'huge':
        return text + ' ' * (MAX_TEXT_CHARS + 1 - len(text)), None
    raise AssertionError(kind)


# --- the checks ---------------------------------------------------------------------------

def _check_published(out: Any, cfg: PipelineConfig, camera: CameraModel,
                     inputs: PipelineInputs, final: Optional[list]) -> None:
    """Everything that must hold for a plan that left the pipeline (independent of the gate)."""
    plan, traj = out.plan, out.trajectory
    assert plan is not None and traj is not None
    doc = json.loads(plan.to_json())
    errors = sorted(SCHEMA_VALIDATOR.iter_errors(doc), key=str)
    assert not errors, errors[0].message
    assert PlanV1.model_validate(doc) == plan
    safety: SafetyConfig = cfg.safety
    lo, hi = np.array(safety.workspace_min), np.array(safety.workspace_max)
    pos, times = np.asarray(traj.positions), np.asarray(traj.times_s)
    assert 1 <= len(pos) <= safety.max_waypoints
    assert np.all(np.isfinite(pos)) and np.all(np.isfinite(times))
    assert np.all((pos >= lo) & (pos <= hi)), 'waypoint outside the workspace'
    assert times[0] >= 0 and np.all(np.diff(times) > 0)
    chain, chain_t = pos, times
    if inputs.ee_position is not None:
        chain = np.vstack([inputs.ee_position, pos])
        chain_t = np.concatenate([[0.0], times])
    dist = np.linalg.norm(np.diff(chain, axis=0), axis=1)
    assert np.all(dist <= safety.max_step_m), 'step above max_step_m'
    dt = np.diff(chain_t)
    assert np.all(dt >= 0) and np.all(dist[dt == 0] == 0), 'a jump in zero time'
    speeds = dist[dt > 0] / dt[dt > 0]
    assert np.all(speeds <= safety.max_velocity_mps * (1 + 1e-9)), 'segment too fast'
    assert 1 <= len(plan.trajectory) <= MAX_POINTS
    width, height = camera.size
    for p in plan.trajectory:
        assert all(0.0 <= c <= 1000.0 for c in p.point_2d)
        assert 0.0 <= p.pixel[0] <= width and 0.0 <= p.pixel[1] <= height
        if p.position is not None:
            assert np.all((np.array(p.position) >= lo) & (np.array(p.position) <= hi))
        assert p.gripper in (None, 'open', 'close')
    assert plan.stamp == pytest.approx(inputs.clip.newest.stamp_ns * 1e-9)
    assert plan.valid_until - plan.stamp == pytest.approx(safety.max_plan_age_s)
    if final is not None:
        got = [list(p.point_2d) for p in plan.trajectory]
        assert got == [[float(c) for c in q] for q in final], 'published points differ'


REACHED_VALIDATION = ('answer is not a valid plan',)


def _tally(stats: Counter, out: Any) -> None:
    stats['cases'] += 1
    stats[f'status:{out.status.value}'] += 1
    error = out.result.error if out.result is not None else ''
    if out.status is not PlanStatus.PARSE_FAILED:
        stats['reached_validation'] += 1
        stats['reached_gate'] += 1
    elif any(marker in error for marker in REACHED_VALIDATION):
        stats['reached_validation'] += 1


def _print_table(title: str, stats: Counter) -> None:
    print(f'\n{title}')
    for key in sorted(stats):
        print(f'  {key:40s} {stats[key]:6d}')


@pytest.fixture(autouse=True)
def _quiet_planner_logs() -> Any:
    """Parse failures log a warning each; thousands of them only slow the run down."""
    logger = logging.getLogger('cosmos_planner')
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


def test_pipeline_never_crashes_and_publishes_only_valid_plans() -> None:
    stats: Counter = Counter()

    @fuzz(PIPELINE_CASES)
    @given(answer=answer_texts(), config=st.sampled_from(sorted(CONFIGS)),
           camera=st.sampled_from(CAMERAS),
           depth=st.sampled_from(['table', 'table', 'holes', 'nan', 'zero', 'inf', 'negative',
                                  'far', 'wrong_aspect', 'none']),
           ee=st.sampled_from([None, None, (0.0, 0.0, 0.1), (0.05, -0.05, 0.2),
                               (2.0, 0.0, 0.1), (1e12, 0.0, 0.0)]),
           late_ns=st.sampled_from([0, 10**6, 6 * 10**9, -1]))
    def run(answer: Tuple[str, str, str, Optional[list]], config: str, camera: CameraModel,
            depth: str, ee: Optional[Tuple[float, float, float]], late_ns: int) -> None:
        structural, textual, text, final = answer
        pipeline = PIPELINES[config]
        pipeline.planner.backend.then = Fault('garbage', text=text)
        frame = Frame('front', STAMP, np.zeros((8, 8, 3), np.uint8), camera.size, 'cam_optical')
        inputs = PipelineInputs(Clip('front', (frame,)), 'put the cube in the bowl', 'task',
                                camera, _depth_image(depth, camera), now_ns=STAMP,
                                ee_position=ee)
        out = pipeline.run(inputs, now_fn=lambda: STAMP + late_ns)   # must not raise
        assert isinstance(out.status, PlanStatus)
        _tally(stats, out)
        stats[f'mutation:{structural}'] += 1
        if out.ok:
            stats['published'] += 1
            _check_published(out, CONFIGS[config], camera, inputs, final)
        else:
            assert out.plan is None and out.trajectory is None
            assert out.reason

    run()
    _print_table('pipeline fuzz', stats)
    assert stats['cases'] >= PIPELINE_CASES
    assert stats['published'] > 0 and stats['status:rejected'] > 0
    assert stats['reached_validation'] / stats['cases'] >= VALIDATION_FLOOR, stats
    assert stats['reached_gate'] / stats['cases'] >= GATE_FLOOR, stats


def test_parser_alone_raises_only_parse_error() -> None:
    """Raw hostile text and bytes, straight into the parser: ParsedAnswer or ParseError."""
    stats: Counter = Counter()
    raw = st.one_of(
        st.text(max_size=200),
        st.binary(max_size=200),
        st.text(alphabet='[]{}",:0123456789.eE+-NaInfity <>/thk`json\n\\u', max_size=300),
        answer_texts().map(lambda a: a[2]),
        answer_texts().map(lambda a: a[2].encode('utf-8', 'surrogatepass')[:-1]
                           + b'\xff\xfe'),
    )

    @fuzz(RAW_PARSER_CASES)
    @given(text=raw, size=st.sampled_from([(1, 1), (640, 480), (4096, 2160)]))
    def run(text: Any, size: Tuple[int, int]) -> None:
        stats['cases'] += 1
        try:
            answer = parse_answer(text, size)
        except ParseError as exc:
            assert isinstance(exc.raw, str)
            stats['parse_error'] += 1
            return
        stats['parsed'] += 1
        assert 1 <= len(answer.points_model) <= MAX_POINTS
        for (x, y), (u, v) in zip(answer.points_model, answer.points_px):
            assert 0 <= x <= 1000 and 0 <= y <= 1000
            assert math.isfinite(u) and math.isfinite(v)
            assert 0 <= u <= size[0] and 0 <= v <= size[1]

    run()
    _print_table('raw parser fuzz', stats)
    assert stats['cases'] >= RAW_PARSER_CASES and stats['parsed'] > 0


FLOATS = st.one_of(st.floats(-0.3, 0.3), st.floats(-0.3, 0.3), st.floats(-2, 2),
                   st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0.0, 0.6, -0.6, 0.9, -0.05, 1e308, -1e308]))


@st.composite
def trajectories(draw: Callable) -> TimedTrajectory:
    """Arbitrary timed trajectories, including non-finite and huge ones."""
    n = draw(st.sampled_from([0, 1, 2, 3, 5, 8, 99, 100, 101, 2000]))
    floats = FLOATS if draw(st.booleans()) else st.floats(-0.3, 0.3)
    if n > 8:
        base = np.array([draw(floats) for _ in range(3)])
        pos = base + np.linspace(0, draw(st.floats(0, 2)), n)[:, None]
    else:
        pos = np.array([[draw(floats) for _ in range(3)] for _ in range(n)]).reshape(-1, 3)
    steps = np.array([draw(st.floats(1e-6, 100)) for _ in range(min(n, 8))] or [1.0])
    times = np.cumsum(np.resize(steps, n)) if n else np.zeros(0)
    if n and draw(st.integers(0, 3)) == 0:
        times = times.copy()
        times[draw(st.integers(0, n - 1))] = draw(st.sampled_from([np.nan, np.inf]))
    start = draw(st.sampled_from([None, (0.0, 0.0, 0.1), (np.nan, 0.0, 0.0),
                                  (5.0, 5.0, 5.0)]))
    try:
        return TimedTrajectory('world', STAMP, times, pos, (1, 0, 0, 0), (None,) * n,
                               ('open',) * n, tuple(range(n)), (False,) * n, ('',) * n,
                               start)
    except ValueError:
        # The constructor refuses non-increasing times; the gate never sees those.
        return TimedTrajectory('world', STAMP, np.arange(1, n + 1, dtype=float), pos,
                               (1, 0, 0, 0), (None,) * n, ('open',) * n, tuple(range(n)),
                               (False,) * n, ('',) * n, start)


@pytest.mark.filterwarnings('ignore:overflow encountered:RuntimeWarning')
def test_gate_passes_only_what_is_safe() -> None:
    stats: Counter = Counter()
    gate = SafetyGate(SafetyConfig())
    cfg = gate.config

    @fuzz(GATE_CASES)
    @given(traj=trajectories(), late_ns=st.sampled_from([None, 0, -1, 10**9, 6 * 10**9]))
    def run(traj: TimedTrajectory, late_ns: Optional[int]) -> None:
        stats['cases'] += 1
        now = None if late_ns is None else STAMP + late_ns
        try:
            gate.check(traj, now)
        except SafetyRejection as exc:
            stats[f'rejected:{exc.check}'] += 1
            json.dumps(exc.detail)   # details go to ~/status as JSON
            return
        stats['passed'] += 1
        pos, times = traj.positions, traj.times_s
        assert 1 <= len(pos) <= cfg.max_waypoints
        assert np.all(np.isfinite(pos)) and np.all(np.isfinite(times))
        assert np.all((pos >= cfg.workspace_min) & (pos <= cfg.workspace_max))
        chain = pos if traj.start_position is None else np.vstack([traj.start_position, pos])
        assert np.all(np.linalg.norm(np.diff(chain, axis=0), axis=1) <= cfg.max_step_m)
        assert np.all(traj.segment_speeds() <= cfg.max_velocity_mps * (1 + 1e-9))
        if now is not None:
            assert STAMP <= now <= STAMP + cfg.max_plan_age_s * 1e9

    run()
    _print_table('gate fuzz', stats)
    assert stats['cases'] >= GATE_CASES and stats['passed'] > 0


def test_grounding_raises_only_grounding_error() -> None:
    """Pixels anywhere (outside the image, NaN, huge) and odd cameras: GroundingError only."""
    stats: Counter = Counter()
    grounders = {name: Grounder(cfg.grounding) for name, cfg in CONFIGS.items()}
    pixel = st.one_of(st.floats(0, 16), st.floats(0, 600), st.floats(-10, 5000),
                      st.floats(allow_nan=True, allow_infinity=True))

    @fuzz(GROUNDING_CASES)
    @given(name=st.sampled_from(sorted(CONFIGS)), camera=st.sampled_from(CAMERAS),
           pixels=st.lists(st.tuples(pixel, pixel), min_size=0, max_size=6),
           gripper=st.sampled_from([None, None, 'open', 'close', 'squeeze']),
           depth=st.sampled_from(['table', 'table', 'holes', 'nan', 'far', 'wrong_aspect',
                                  'none']))
    def run(name: str, camera: CameraModel, pixels: list, gripper: Optional[str],
            depth: str) -> None:
        stats['cases'] += 1
        n = len(pixels)
        try:
            plan = grounders[name].ground(pixels, [(0.0, 0.0)] * n, [gripper] * n,
                                          ['p'] * n, camera, _depth_image(depth, camera),
                                          STAMP)
        except GroundingError:
            stats['grounding_error'] += 1
            return
        stats['grounded'] += 1
        assert len(plan.waypoints) >= n
        assert plan.positions.shape[1] == 3
        assert np.all(np.isfinite(plan.positions))

    run()
    _print_table('grounding fuzz', stats)
    assert stats['cases'] >= GROUNDING_CASES and stats['grounded'] > 0
