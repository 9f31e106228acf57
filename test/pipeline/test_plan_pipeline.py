"""PlanPipeline end to end with the real Planner, prompts, parser and a ReplayBackend.

The model answers are written as a recording (JSONL keyed by the request fingerprint that
``prompts.build_request`` gives this clip and task) and replayed by the real
``ReplayBackend``; failures a backend can cause (garbage, hanging until cancelled) come from
the ``FaultInjectingBackend`` test double. The scene is the same awkward camera as in
test_grounding (640x400, fx != fy, off-centre principal point, plumb_bob distortion, tilted
pose, sloped table); the model's 0-1000 coordinates are computed from known 3D points with
cv2.projectPoints, so the published 3D positions can be checked to the millimetre.
Runtime: about a second.
"""

import json
from pathlib import Path
import threading
from typing import List, Optional

import cv2
import jsonschema
import numpy as np
import pytest

from planner_helpers import block_image, one_frame_clip, write_recording

from cosmos_planner.model import prompts
from cosmos_planner.backends.faults import FaultInjectingBackend
from cosmos_planner.backends.recording import ReplayBackend
from cosmos_planner.model.cancel import CancelToken
from cosmos_planner.geometry.camera_model import CameraModel
from cosmos_planner.errors import ConfigError
from cosmos_planner.frames.types import Clip, DepthFrame
from cosmos_planner.geometry.grounding import GroundingConfig
from cosmos_planner.pipeline.plan_pipeline import PipelineInputs, PlanPipeline
from cosmos_planner.pipeline.config import PipelineConfig, SPECS
from cosmos_planner.model.plan_schema import plan_json_schema, PlanV1
from cosmos_planner.pipeline.planner import Planner
from cosmos_planner.model.results import PlanStatus
from cosmos_planner.geometry.safety import SafetyConfig
from cosmos_planner.geometry.transforms import matrix_to_quaternion, Transform

W, H = 640, 400
K = np.array([[520.0, 0.0, 300.5], [0.0, 480.0, 215.25], [0.0, 0.0, 1.0]])
D = [-0.28, 0.09, 0.0012, -0.0017, -0.012]
CAM = CameraModel(W, H, K.reshape(-1), D, 'plumb_bob', 'cam_optical')
STAMP = 1_700_000_000_000_000_000
TASK = 'put the red cube in the basket'
UP = np.array([0.0, 0.0, 1.0])
MM = 1e-3


def _look_at(eye: np.ndarray, target: np.ndarray) -> Transform:
    z = (target - eye) / np.linalg.norm(target - eye)
    x = np.cross(z, UP)
    x /= np.linalg.norm(x)
    return Transform(eye, matrix_to_quaternion(np.column_stack([x, np.cross(z, x), z])))


T_WORLD_CAM = _look_at(np.array([0.12, -0.45, 0.65]), np.array([0.02, 0.05, 0.0]))
NORMAL = np.array([0.08, -0.05, 1.0]) / np.linalg.norm([0.08, -0.05, 1.0])
OFFSET = -float(NORMAL @ [0.0, 0.0, 0.02])


def _on_table(xy: List[tuple]) -> np.ndarray:
    xy = np.asarray(xy, dtype=float)
    z = -(OFFSET + xy @ NORMAL[:2]) / NORMAL[2]
    return np.column_stack([xy, z])


# Gripper start, cube, a carry point, basket: on the sloped table, in world coordinates.
SURFACE = _on_table([(-0.05, -0.05), (0.05, 0.02), (0.12, 0.08), (0.18, 0.12)])


def _model_points(points_world: np.ndarray) -> List[List[float]]:
    """0-1000 coordinates the model would give for these points (independent projection)."""
    m = np.linalg.inv(T_WORLD_CAM.matrix)
    cam = points_world @ m[:3, :3].T + m[:3, 3]
    px, _ = cv2.projectPoints(cam.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K, np.array(D))
    edge_px = px.reshape(-1, 2) + 0.5  # plan pixels: 0 at the image edge
    return (edge_px / [W, H] * 1000.0).tolist()


def _config(**flat: object) -> PipelineConfig:
    base = {'ground.plane': [*NORMAL.tolist(), OFFSET],
            'target.frame': 'world',
            'target.translation': list(T_WORLD_CAM.translation),
            'target.rotation_xyzw': list(T_WORLD_CAM.quaternion_xyzw)}
    base.update(flat)
    return PipelineConfig.from_flat(base)


#: The one frame these tests plan from.
CLIP = one_frame_clip(block_image(40, 64, (10, 20), (20, 30), (200, 30, 30)), STAMP,
                      'front', (W, H), 'cam_optical')


def _replay(tmp_path: Path, preset: str, answers: List[str], clip: Clip) -> ReplayBackend:
    request = prompts.build_request(preset, clip, TASK)
    path = write_recording(tmp_path / 'answers.jsonl', [(request, text) for text in answers])
    return ReplayBackend(path)


def _bare_answer(points: np.ndarray) -> str:
    items = [{'point_2d': p, 'label': 'gripper trajectory'} for p in _model_points(points)]
    return '```json\n' + json.dumps(items) + '\n```'


def _labeled_answer(points: np.ndarray, gripper: List[Optional[str]]) -> str:
    traj = []
    for p, g in zip(_model_points(points), gripper):
        traj.append({'point_2d': p, 'label': 'gripper trajectory', **({'gripper': g} if g
                                                                      else {})})
    return json.dumps({'next_action': 'pick up the red cube',
                       'steps': ['grasp the cube', 'place it in the basket'],
                       'trajectory': traj})


def _inputs(clip: Optional[Clip] = None, **kw: object) -> PipelineInputs:
    args = dict(clip=clip or CLIP, task=TASK, task_id='task-1', camera=CAM,
                now_ns=STAMP + 100_000_000)
    args.update(kw)
    return PipelineInputs(**args)


def _counter() -> object:
    count = iter(range(1, 1000))
    return lambda: f'plan-{next(count)}'


def test_bare_list_plan_end_to_end(tmp_path: Path) -> None:
    clip = CLIP
    backend = _replay(tmp_path, 'trajectory', [_bare_answer(SURFACE)], clip)
    pipeline = PlanPipeline(Planner(backend, 'trajectory'), _config(), id_fn=_counter())
    ee = (-0.06, -0.04, 0.12)
    out = pipeline.run(_inputs(clip, ee_position=ee), now_fn=lambda: STAMP + 900_000_000)
    assert out.status is PlanStatus.OK, out.reason
    plan, traj = out.plan, out.trajectory
    # The published JSON validates against the published schema, and round-trips.
    doc = json.loads(plan.to_json())
    jsonschema.validate(doc, plan_json_schema())
    assert PlanV1.model_validate(doc) == plan
    assert doc['schema'] == 'cosmos_planner/plan/v1'
    assert (plan.plan_id, plan.task_id, plan.task) == ('plan-1', 'task-1', TASK)
    assert plan.stamp == pytest.approx(1.7e9) and plan.valid_until == pytest.approx(1.7e9 + 5)
    assert (plan.frame_id, plan.image_frame_id, plan.image_size) == ('world', 'cam_optical',
                                                                     (W, H))
    assert plan.model == 'recorded-model' and plan.preset == 'trajectory'
    assert plan.next_action is None
    # One plan point per model point; lift rule of a bare list; first point = end effector.
    expected = [np.array(ee), SURFACE[1] + 0.02 * UP, SURFACE[2] + 0.15 * UP,
                SURFACE[3] + 0.04 * UP]
    got = np.array([p.position for p in plan.trajectory])
    assert np.linalg.norm(got - np.array(expected), axis=1).max() < MM
    assert [p.gripper for p in plan.trajectory] == [None, 'close', None, 'open']
    np.testing.assert_allclose([p.point_2d for p in plan.trajectory], _model_points(SURFACE),
                               atol=1e-9)
    # The trajectory adds the approach waypoints and dwell points, all in the world frame.
    assert traj.frame_id == 'world' and traj.stamp_ns == STAMP
    assert list(traj.roles) == ['start', 'pre_grasp', 'grasp', 'grasp', 'carry',
                                'pre_release', 'release', 'release']
    np.testing.assert_allclose(traj.positions[1], SURFACE[1] + 0.1 * UP, atol=MM)
    assert traj.gripper_state == ('open', 'open', 'open', 'close', 'close', 'close', 'close',
                                  'open')
    assert np.all(np.diff(traj.times_s) > 0)
    assert np.all(traj.segment_speeds() <= 0.25)
    for stage in ('prepare', 'generate', 'parse', 'plan', 'ground', 'timing', 'gate',
                  'total'):
        assert stage in out.timings_ms and stage in plan.timings_ms
    assert backend.replayed == 1


def test_labeled_plan_with_depth_end_to_end(tmp_path: Path) -> None:
    clip = CLIP
    points = SURFACE[1:]
    answer = _labeled_answer(points, [None, 'close', 'open'])
    depth = np.full((H, W), np.nan, dtype=np.float32)
    z = T_WORLD_CAM.inverse().apply(points)[:, 2]
    for (u, v), zi in zip(np.array(_model_points(points)) / 1000 * [W, H] - 0.5, z):
        depth[int(round(v)) - 3:int(round(v)) + 4, int(round(u)) - 3:int(round(u)) + 4] = zi
        depth[int(round(v)), int(round(u))] = 0.0  # a hole right at the pixel
    frame = DepthFrame('front', STAMP - 10_000_000, depth, 'cam_optical')
    backend = _replay(tmp_path, 'plan', [answer], clip)
    pipeline = PlanPipeline(Planner(backend, 'plan'), _config(**{'ground.mode': 'depth'}))
    out = pipeline.run(_inputs(clip, depth=frame))
    assert out.status is PlanStatus.OK, out.reason
    plan = out.plan
    jsonschema.validate(json.loads(plan.to_json()), plan_json_schema())
    assert plan.next_action == 'pick up the red cube' and len(plan.steps) == 2
    expected = [points[0] + 0.1 * UP, points[1] + 0.02 * UP, points[2] + 0.04 * UP]
    got = np.array([p.position for p in plan.trajectory])
    assert np.linalg.norm(got - np.array(expected), axis=1).max() < MM
    assert len(plan.plan_id) == 32  # uuid4 hex by default


def test_missing_depth_point_fails_grounding_with_its_index(tmp_path: Path) -> None:
    clip = CLIP
    backend = _replay(tmp_path, 'trajectory', [_bare_answer(SURFACE)], clip)
    depth = DepthFrame('front', STAMP, np.zeros((H, W), dtype=np.float32), 'cam_optical')
    pipeline = PlanPipeline(Planner(backend, 'trajectory'),
                            _config(**{'ground.mode': 'depth'}))
    out = pipeline.run(_inputs(clip, depth=depth))
    assert out.status is PlanStatus.GROUNDING_FAILED
    assert out.check == 'no_depth' and out.detail['index'] == 0
    assert 'point 0' in out.reason
    assert out.plan is None and out.trajectory is None and out.result.ok


def test_workspace_rejection(tmp_path: Path) -> None:
    clip = CLIP
    backend = _replay(tmp_path, 'trajectory', [_bare_answer(SURFACE)], clip)
    cfg = _config(**{'safety.workspace_max': [0.6, 0.6, 0.1]})  # carry height is above it
    out = PlanPipeline(Planner(backend, 'trajectory'), cfg).run(_inputs(clip))
    assert out.status is PlanStatus.REJECTED
    assert out.check == 'workspace' and out.plan is None and out.trajectory is None
    assert 'gate' in out.timings_ms


@pytest.mark.parametrize('now_offset_ns,why', [(6 * 10**9, 'too_old'), (-1, 'clock_backwards')])
def test_stale_after_generation(tmp_path: Path, now_offset_ns: int, why: str) -> None:
    clip = CLIP
    backend = _replay(tmp_path, 'trajectory', [_bare_answer(SURFACE)], clip)
    pipeline = PlanPipeline(Planner(backend, 'trajectory'), _config())
    out = pipeline.run(_inputs(clip), now_fn=lambda: STAMP + now_offset_ns)
    assert out.status is PlanStatus.STALE and out.detail['why'] == why
    assert out.plan is None and out.trajectory is None
    assert backend.replayed == 1  # it was generated, then judged too old


def test_stale_before_generation_spends_no_generation(tmp_path: Path) -> None:
    clip = CLIP
    backend = _replay(tmp_path, 'trajectory', [_bare_answer(SURFACE)], clip)
    pipeline = PlanPipeline(Planner(backend, 'trajectory'), _config())
    out = pipeline.run(_inputs(clip, now_ns=STAMP + 60 * 10**9))
    assert out.status is PlanStatus.STALE and out.result is None
    assert 'before generation' in out.reason and backend.replayed == 0


def test_missing_inputs_fail_before_generation(tmp_path: Path) -> None:
    backend = FaultInjectingBackend(None, ['error'])
    pipeline = PlanPipeline(Planner(backend, 'trajectory'), _config())
    out = pipeline.run(PipelineInputs(None, TASK, 't', CAM))
    assert out.status is PlanStatus.NO_FRAMES
    out = pipeline.run(_inputs(camera=None))
    assert out.status is PlanStatus.GROUNDING_FAILED and out.check == 'no_camera'
    depth_pipeline = PlanPipeline(Planner(backend, 'trajectory'),
                                  _config(**{'ground.mode': 'depth'}))
    out = depth_pipeline.run(_inputs())
    assert out.status is PlanStatus.GROUNDING_FAILED and out.check == 'no_depth'
    assert backend.calls == 0


def test_parse_failure_passes_through(tmp_path: Path) -> None:
    backend = FaultInjectingBackend(None, ['garbage', 'garbage'])
    out = PlanPipeline(Planner(backend, 'trajectory', max_attempts=2), _config()).run(
        _inputs())
    assert out.status is PlanStatus.PARSE_FAILED and out.plan is None
    assert out.result.attempts == 2 and out.reason


def test_cancel_from_another_thread() -> None:
    backend = FaultInjectingBackend(None, ['hang:30'])
    pipeline = PlanPipeline(Planner(backend, 'trajectory'), _config())
    result = {}
    token = CancelToken()
    worker = threading.Thread(
        target=lambda: result.setdefault('out', pipeline.run(_inputs(), cancel=token)))
    worker.start()
    assert backend.waiting.wait(10.0)
    token.cancel()
    worker.join(10.0)
    assert not worker.is_alive()
    assert result['out'].status is PlanStatus.CANCELLED and result['out'].plan is None


def test_cancel_before_run_cancels_that_run_only(tmp_path: Path) -> None:
    clip = CLIP
    backend = _replay(tmp_path, 'trajectory', [_bare_answer(SURFACE)], clip)
    pipeline = PlanPipeline(Planner(backend, 'trajectory'), _config())
    token = CancelToken()
    token.cancel()
    out = pipeline.run(_inputs(clip), cancel=token)
    assert out.status is PlanStatus.CANCELLED and backend.replayed == 0
    assert pipeline.run(_inputs(clip)).status is PlanStatus.OK


def test_camera_info_at_another_resolution_is_scaled(tmp_path: Path) -> None:
    clip = CLIP
    backend = _replay(tmp_path, 'trajectory', [_bare_answer(SURFACE)], clip)
    k2 = K.copy()
    k2[:2] *= 2.0
    cam2 = CameraModel(2 * W, 2 * H, k2.reshape(-1), D, 'plumb_bob', 'cam_optical')
    out = PlanPipeline(Planner(backend, 'trajectory'), _config()).run(_inputs(clip,
                                                                              camera=cam2))
    assert out.status is PlanStatus.OK, out.reason
    got = np.array(out.plan.trajectory[1].position)
    assert np.linalg.norm(got - (SURFACE[1] + 0.02 * UP)) < MM


# ------------------------------------------------------------------------- PipelineConfig

BRIEF_NAMES = [
    'ground.mode', 'ground.depth_patch_px', 'ground.depth_sync_tolerance_s', 'ground.plane',
    'heights.approach_m', 'heights.grasp_offset_m', 'heights.carry_m', 'heights.place_m',
    'tool.orientation_xyzw', 'target.frame', 'target.translation', 'target.rotation_xyzw',
    'safety.workspace_min', 'safety.workspace_max', 'safety.max_step_m',
    'safety.max_waypoints', 'safety.max_velocity_mps', 'safety.max_plan_age_s',
    'timing.nominal_speed_mps', 'timing.gripper_dwell_s']


def test_flat_defaults_describe_every_parameter() -> None:
    specs = PipelineConfig.flat_defaults()
    assert set(BRIEF_NAMES) <= set(specs)
    assert list(specs) == [s.name for s in SPECS]
    for name, spec in specs.items():
        assert spec.description, name
        assert spec.type in ('bool', 'integer', 'double', 'string', 'double_array'), name
        if spec.type in ('integer', 'double'):
            assert spec.min is not None and spec.max is not None, name
            assert spec.min <= spec.default <= spec.max, name
        if spec.type == 'double_array':
            assert len(spec.default) == spec.length, name
    assert specs['ground.mode'].choices == ('depth', 'plane')
    assert specs['safety.max_plan_age_s'].default == 5.0


def test_from_flat_round_trip_and_mapping() -> None:
    cfg = PipelineConfig.from_flat({})
    assert cfg == PipelineConfig()
    assert PipelineConfig.from_flat(cfg.to_flat()) == cfg
    changed = PipelineConfig.from_flat({
        'ground.mode': 'depth', 'ground.depth_patch_px': 7, 'heights.carry_m': 0.2,
        'safety.workspace_min': (-1, -1, 0), 'safety.max_waypoints': 50.0,
        'timing.gripper_dwell_s': 1, 'target.frame': ''})
    assert changed.grounding == GroundingConfig(mode='depth', depth_patch_px=7, carry_m=0.2,
                                                target_frame='')
    assert changed.safety == SafetyConfig(workspace_min=(-1.0, -1.0, 0.0), max_waypoints=50)
    assert changed.timing.gripper_dwell_s == 1.0
    assert changed.with_changes({'heights.carry_m': 0.3}).grounding.carry_m == 0.3


@pytest.mark.parametrize('values,needle', [
    ({'safety.max_stepm': 0.2}, "did you mean 'safety.max_step_m'"),
    ({'ground.mode': 'lidar'}, 'ground.mode must be one of'),
    ({'ground.depth_patch_px': 2.5}, 'ground.depth_patch_px must be an integer'),
    ({'heights.carry_m': '0.2'}, 'heights.carry_m must be a finite number'),
    ({'heights.carry_m': True}, 'heights.carry_m must be a finite number'),
    ({'safety.max_velocity_mps': 20.0}, r'safety.max_velocity_mps = 20.0 is outside'),
    ({'target.translation': [0.0, 1.0]}, 'target.translation must be a list of 3'),
    ({'target.frame': 3}, 'target.frame must be a string'),
    ({'heights.insert_approach': 1}, 'heights.insert_approach must be a bool'),
    ({'safety.workspace_min': [1, 1, 1]}, 'safety.workspace_min'),
    ({'heights.approach_m': 1.5, 'safety.max_step_m': 0.5}, 'every plan would be rejected'),
])
def test_bad_flat_values_name_the_parameter(values: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        PipelineConfig.from_flat(values)
