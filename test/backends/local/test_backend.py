"""The local transformers backend (backends/local/backend.py) end to end on the tiny checkpoint.

What it proves: under constrained decoding every answer of a random model is a valid plan
(both reasoning modes, image and video input), without the constraint the same model fails;
cancel from another thread stops generation within a couple of tokens; missing weights and
too-large models fail early with guidance; health() counts successes, cancellations and
failures (with the last error). The processor inputs (video timestamps from the clip's real
fps) are tested in test_inputs.py, the placement from memory figures in test_memory.py.
About 30-60 s on 2 cores (most of it the eight short generations).
"""

import dataclasses
import json
import threading

import pytest

from cosmos_planner.backends.local.memory import count_parameters
from cosmos_planner.errors import (BackendError, GenerationCancelled, ModelNotFoundError,
                                   ModelTooLargeError, ParseError)
from cosmos_planner.model.cancel import CancelToken
from cosmos_planner.model.parser import parse_answer
from cosmos_planner.model.plan_schema import ModelAnswer
from cosmos_planner.model.prompts import build_request, load_preset
from cosmos_planner.model.response_schemas import DecodingLimits
from planner_helpers import LOCAL_NATIVE as NATIVE, LOCAL_TASK as TASK, local_clip as clip

torch = pytest.importorskip('torch')
local = pytest.importorskip('cosmos_planner.backends.local.backend')
LocalBackend = local.LocalBackend
# Tight bounds keep the random model's answers short; the grammar machinery is the same.
SMALL = DecodingLimits(min_points=2, max_points=4, max_steps=2, max_text_chars=24)


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def request(preset, frames, reasoning, limits=SMALL, seed=0, max_tokens=None):
    loaded = load_preset(preset)
    if limits is not None:
        loaded = dataclasses.replace(loaded, limits=limits)
    made = build_request(loaded, clip(frames), TASK, reasoning)
    sampling = dataclasses.replace(made.sampling, seed=seed,
                                   max_tokens=max_tokens or made.sampling.max_tokens)
    return dataclasses.replace(made, sampling=sampling)


def model_answer(text):
    """Validate what follows the think block; a bare list is a plan with no next action."""
    data = json.loads(text.rpartition('</think>')[2] if '</think>' in text else text)
    return ModelAnswer.model_validate({'trajectory': data} if isinstance(data, list) else data)


@pytest.mark.parametrize('preset,reasoning,frames', [
    ('trajectory', False, 1), ('trajectory', False, 4), ('trajectory', True, 1),
    ('trajectory', True, 4), ('plan', False, 4), ('plan', True, 1)])
def test_constrained_answers_are_valid_plans(backend, tiny_checkpoint, preset, reasoning,
                                             frames):
    completion = backend.generate(request(preset, frames, reasoning, seed=frames))
    assert completion.finish_reason == 'stop'
    parsed = parse_answer(completion.text, NATIVE)
    answer = model_answer(completion.text)
    assert 2 <= len(answer.trajectory) <= SMALL.max_points
    assert len(parsed.points_px) == len(answer.trajectory)
    assert (answer.next_action is not None) == (preset == 'plan')
    assert completion.text.startswith('<think>') == reasoning
    assert (completion.reasoning is not None) == reasoning
    assert completion.prompt_tokens > 20 and completion.completion_tokens > 10
    assert completion.generate_ms > 0 and completion.backend == 'local'
    assert completion.model == str(tiny_checkpoint)
    assert completion.meta['tiny_random'] is True and completion.meta['constrained'] is True


def test_preset_bounds_as_shipped_also_give_a_valid_plan(backend):
    completion = backend.generate(request('trajectory', 1, False, limits=None))
    answer = model_answer(completion.text)
    assert 2 <= len(answer.trajectory) <= load_preset('trajectory').limits.max_points


def test_without_the_constraint_the_same_model_fails(tiny_checkpoint):
    free = LocalBackend(str(tiny_checkpoint), device='cpu', constrained=False)
    try:
        for seed in range(3):
            completion = free.generate(request('trajectory', 1, False, seed=seed,
                                               max_tokens=48))
            assert completion.meta['constrained'] is False
            with pytest.raises(ParseError):
                parse_answer(completion.text, NATIVE)
    finally:
        free.close()


def test_max_tokens_reached_is_reported_as_length(backend):
    completion = backend.generate(request('plan', 1, False, max_tokens=5))
    assert completion.finish_reason == 'length' and completion.completion_tokens == 5


def test_cancel_from_another_thread_stops_within_tokens(tiny_checkpoint):
    steps, started = [], threading.Event()

    def on_step(n):
        steps.append(n)
        if n >= 3:
            started.set()

    slow = LocalBackend(str(tiny_checkpoint), device='cpu', constrained=False, on_step=on_step)
    outcome = {}
    token = CancelToken()

    def worker():
        try:
            outcome['completion'] = slow.generate(request('trajectory', 4, False,
                                                          max_tokens=4000), token)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome['error'] = exc

    try:
        CancelToken().cancel()  # another job's token: must not cancel this request
        thread = threading.Thread(target=worker)
        thread.start()
        assert started.wait(120), 'generation never started'
        at_cancel = steps[-1]
        token.cancel()
        thread.join(120)
        assert not thread.is_alive()
        assert isinstance(outcome.get('error'), GenerationCancelled), outcome
        assert steps[-1] <= at_cancel + 2 < 4000
        after = slow.generate(request('trajectory', 1, False, max_tokens=3))
        assert after.completion_tokens == 3  # the cancel did not stick
    finally:
        slow.close()


def test_health_counts_successes_cancellations_and_failures(tiny_checkpoint):
    """Like the remote backend, health() says how many requests failed and why."""
    calls = {'cancel_at_step': None}
    token = CancelToken()

    def on_step(n):
        if calls['cancel_at_step'] is not None and n >= calls['cancel_at_step']:
            token.cancel()

    counted = LocalBackend(str(tiny_checkpoint), device='cpu', constrained=False,
                           on_step=on_step)
    try:
        fresh = counted.health()
        assert (fresh['requests'], fresh['succeeded'], fresh['failed'],
                fresh['cancelled'], fresh['last_error']) == (0, 0, 0, 0, '')
        counted.generate(request('trajectory', 1, False, max_tokens=3))
        calls['cancel_at_step'] = 1
        with pytest.raises(GenerationCancelled):
            counted.generate(request('trajectory', 1, False, max_tokens=50), token)
    finally:
        counted.close()
    with pytest.raises(BackendError, match='closed'):
        counted.generate(request('trajectory', 1, False, max_tokens=3))
    health = counted.health()
    assert (health['requests'], health['succeeded'], health['cancelled'],
            health['failed']) == (3, 1, 1, 1)
    assert 'BackendError' in health['last_error'] and 'closed' in health['last_error']


def test_missing_weights_say_how_to_provide_them(tmp_path, monkeypatch, tiny_checkpoint):
    with pytest.raises(ModelNotFoundError, match='does not exist') as missing:
        LocalBackend(str(tmp_path / 'no-such-model'))
    for hint in ('config.json and *.safetensors', 'HF_HUB_OFFLINE=1', '--backend openai'):
        assert hint in str(missing.value)
    monkeypatch.setenv('HF_HUB_CACHE', str(tmp_path / 'empty-cache'))
    with pytest.raises(ModelNotFoundError, match='huggingface-cli download nvidia/Cosmos-R'):
        LocalBackend('nvidia/Cosmos-Reason2-8B')
    pickled = tmp_path / 'pickled'
    pickled.mkdir()
    (pickled / 'config.json').write_text((tiny_checkpoint / 'config.json').read_text())
    (pickled / 'pytorch_model.bin').write_bytes(b'\0')
    with pytest.raises(ModelNotFoundError, match='safetensors only'):
        LocalBackend(str(pickled))


def test_too_large_is_refused_before_loading(tiny_checkpoint, backend):
    assert count_parameters(tiny_checkpoint) == sum(
        p.numel() for p in backend.model.parameters())
    with pytest.raises(ModelTooLargeError, match='RAM'):
        LocalBackend(str(tiny_checkpoint), device='cpu', memory_bytes=64 * 1024)


def test_health_says_tiny_and_presence_penalty_hits_generated_tokens_only(backend):
    health = backend.health()
    assert health['ok'] and health['tiny_random'] and 'meaningless' in health['detail']
    penalty = local._PresencePenalty(1.5, prompt_len=2)
    ids = torch.tensor([[4, 5, 1, 1, 3]])
    scores = penalty(ids, torch.zeros(1, 8))
    assert scores[0].tolist() == [0, -1.5, 0, -1.5, 0, 0, 0, 0]


def test_split_reasoning():
    assert local.split_reasoning('<think>\nhm\n</think>\n\n[1]') == ('hm', '\n\n[1]')
    assert local.split_reasoning('[1]') == (None, '[1]')
