"""The scripted expert (TEST ORACLE): model-format answers that the real core accepts.

Its answers go through the real parser, the real Planner (prompt presets, parse) and the
real Grounder, and must land on the ground truth. Real MuJoCo for the ground truth; about
5 s.
"""

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from planner_helpers import one_frame_clip

from cosmos_planner.model.cancel import CancelToken
from cosmos_planner.model.protocol import GenerationRequest
from cosmos_planner.sim.expert import answer_text, ScriptedExpertBackend
from cosmos_planner.backends.registry import make_backend
from cosmos_planner.geometry.camera_model import CameraModel
from cosmos_planner.errors import BackendError, ConfigError, GenerationCancelled
from cosmos_planner.geometry.grounding import GroundingConfig, Grounder
from cosmos_planner.model.parser import parse_answer
from cosmos_planner.pipeline.planner import Planner
from cosmos_planner.sim.config import load_sim_config
from cosmos_planner.sim.ground_truth import GROUND_TRUTH_ENV, GroundTruthReader
from cosmos_planner.sim.ground_truth import GroundTruthWriter
from cosmos_planner.sim.tabletop import TabletopSim

SIZE = (320, 240)


@pytest.fixture(scope='module')
def scene(tmp_path_factory):
    """Ground truth of two frames (stamps 0 and 0.2 s) written like the sim node does."""
    path = tmp_path_factory.mktemp('gt') / 'ground_truth.json'
    sim = TabletopSim(load_sim_config(), seed=11)
    writer = GroundTruthWriter(path)
    writer.reset(sim.episode)
    rgb = sim.render_rgb()
    writer.add(0, sim.ground_truth())
    sim.step(20)
    writer.add(200_000_000, sim.ground_truth())
    truth = sim.ground_truth()
    pose = sim.optical_pose()
    sim.close()
    return {'path': path, 'rgb': rgb, 'truth': truth, 'pose': pose,
            'K': np.asarray(truth['camera']['K'])}


def _grounder(pose, mode='plane') -> Grounder:
    return Grounder(GroundingConfig(mode=mode, target_frame='world',
                                    target_translation=tuple(pose.translation),
                                    target_rotation_xyzw=pose.quaternion_xyzw()))


@pytest.mark.parametrize('form', ['plan', 'trajectory'])
def test_answers_parse_in_the_models_own_formats(scene, form) -> None:
    text = answer_text(scene['truth'], form)
    raw = json.loads(text)
    if form == 'trajectory':
        assert isinstance(raw, list) and raw[0]['label'] == 'gripper trajectory'
    else:
        assert set(raw) == {'next_action', 'steps', 'trajectory'}
    for point in (raw if form == 'trajectory' else raw['trajectory']):
        assert all(isinstance(c, int) and 0 <= c <= 1000 for c in point['point_2d'])
    parsed = parse_answer(text, SIZE)
    assert parsed.gripper == (None, 'close', None, None, 'open')
    assert len(parsed.points_px) == 5


def test_plane_grounding_of_the_answer_lands_on_the_ground_truth(scene) -> None:
    truth = scene['truth']
    parsed = parse_answer(answer_text(truth, 'plan'), SIZE)
    camera = CameraModel(SIZE[0], SIZE[1], scene['K'].reshape(-1), [0.0] * 5, 'plumb_bob',
                         'sim_camera')
    plan = _grounder(scene['pose']).ground(parsed.points_px, parsed.points_model,
                                           parsed.gripper, parsed.labels, camera)
    by_role = {}
    for w in plan.waypoints:
        by_role.setdefault(w.role, []).append(np.asarray(w.position))
    cube = np.asarray(truth['objects']['red_cube']['position'])
    basket = np.asarray(truth['basket']['position'])
    # 0-1000 integer coordinates quantise to about 1 mm at this range.
    assert np.linalg.norm(by_role['grasp'][0][:2] - cube[:2]) < 0.005
    assert np.linalg.norm(by_role['release'][0][:2] - basket[:2]) < 0.005
    assert all(p[2] > 0.1 for p in by_role['carry']), 'carried high over the basket wall'


def test_backend_through_the_planner_answers_for_the_clips_newest_frame(scene) -> None:
    backend = make_backend('expert', ground_truth=str(scene['path']))
    assert isinstance(backend, ScriptedExpertBackend)
    for preset in ('plan', 'trajectory'):
        clip = one_frame_clip(scene['rgb'], 200_000_000, 'sim', SIZE, 'sim_camera')
        result = Planner(backend, preset).plan(clip, 'put it in')
        assert result.ok, result.error
        assert result.completion.meta['oracle'] is True
        assert result.completion.meta['ground_truth_stamp_ns'] == 200_000_000
        assert 'test oracle' in result.completion.model
    health = backend.health()
    assert health['ok'] and health['oracle']


def test_unknown_stamp_and_missing_file_are_retryable_backend_errors(scene, tmp_path) -> None:
    backend = ScriptedExpertBackend(ground_truth=str(scene['path']))
    clip = one_frame_clip(scene['rgb'], 999_000_000, 'sim', SIZE, 'sim_camera')
    request = GenerationRequest(clip=clip, messages=(), preset='plan')
    with pytest.raises(BackendError) as err:
        backend.generate(request)
    assert err.value.retryable and '999000000' in str(err.value)
    missing = ScriptedExpertBackend(ground_truth=str(tmp_path / 'none.json'))
    with pytest.raises(BackendError):
        missing.generate(request)
    assert missing.health()['ok'] is False


def test_needs_a_ground_truth_channel(monkeypatch) -> None:
    monkeypatch.delenv(GROUND_TRUTH_ENV, raising=False)
    with pytest.raises(ConfigError, match=GROUND_TRUTH_ENV):
        ScriptedExpertBackend()
    with pytest.raises(ConfigError):
        ScriptedExpertBackend(ground_truth='x', grounding='lidar')


def test_delay_is_cancellable(scene) -> None:
    backend = ScriptedExpertBackend(ground_truth=str(scene['path']), delay_s=30.0)
    request = GenerationRequest(clip=one_frame_clip(scene['rgb'], 0, 'sim', SIZE, 'sim_camera'),
                                messages=(), preset='plan')
    token = CancelToken()
    threading.Timer(0.2, token.cancel).start()   # before or during the wait: both cancel
    with pytest.raises(GenerationCancelled):
        backend.generate(request, token)


def test_done_state_and_reset_of_the_channel(scene, tmp_path) -> None:
    truth = dict(scene['truth'])
    truth['state'] = dict(truth['state'], in_basket=True)
    text = answer_text(truth, 'plan')
    assert 'already in the basket' in json.loads(text)['next_action']
    path = tmp_path / 'gt.json'
    writer = GroundTruthWriter(path)
    writer.reset(1)
    writer.add(0, scene['truth'])
    assert GroundTruthReader(path).lookup(0)['stamp_ns'] == 0
    writer.reset(2)  # a sim reset: old frames must not answer new requests
    with pytest.raises(BackendError):
        GroundTruthReader(Path(path)).lookup(0)
    assert GroundTruthReader(path).read()['episode'] == 2
