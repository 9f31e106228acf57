"""Planner: statuses, retries, cancellation and timings around real recorded answers.

Retries: the planner asks again only for answers that do not parse; a backend error is
final here (transport failures are retried inside the backend, see backends/openai/test_client and
test_faults_remote).

Backends are ReplayBackend (real recorded answers through the full parse path) wrapped in
FaultInjectingBackend for the failures; one test runs the real tiny checkpoint end to end.
Runtime: about 1 s plus the tiny-checkpoint run (a few seconds, most of it loading torch).
"""

import dataclasses
import threading
from typing import Optional

import pytest

from cosmos_planner.backends.faults import FaultInjectingBackend
from cosmos_planner.backends.recording import RecordingBackend, ReplayBackend
from cosmos_planner.model.cancel import CancelToken
from cosmos_planner.model.protocol import Completion, GenerationRequest
from cosmos_planner.errors import ConfigError
from cosmos_planner.pipeline.planner import Planner
from cosmos_planner.model.prompts import build_request, load_preset
from cosmos_planner.model.results import PlanStatus
from planner_helpers import (NVIDIA_STYLE_ANSWER, NVIDIA_STYLE_POINTS, PLAN_ANSWER, TASK,
                             request_for, synthetic_clip, write_recording)

GARBAGE = 'The gripper should move towards the cube, then the basket.'


@pytest.fixture(scope='module')
def clip():
    return synthetic_clip(width=640, height=480)


def _replay(tmp_path, clip, answers, preset='plan', reasoning=False):
    request = request_for(clip, preset=preset, reasoning=reasoning)
    return ReplayBackend(write_recording(tmp_path / 'r.jsonl', [(request, a) for a in answers]))


def _stages_timed(result):
    assert set(result.timings_ms) == {'prepare', 'generate', 'parse', 'total'}
    assert all(v >= 0 for v in result.timings_ms.values())


def test_ok_plan_in_native_pixels(tmp_path, clip):
    result = Planner(_replay(tmp_path, clip, [PLAN_ANSWER]), 'plan').plan(clip, TASK)
    assert result.status is PlanStatus.OK and result.ok
    assert result.attempts == 1 and result.error == ''
    assert result.answer.next_action == 'Move the gripper above the red cube'
    assert result.answer.points_px[0] == (320.0, 96.0)  # [500, 200] of 640x480
    assert result.raw_answers == [PLAN_ANSWER]
    assert result.completion.text == PLAN_ANSWER
    _stages_timed(result)


def test_trajectory_preset_bare_list(tmp_path, clip):
    backend = _replay(tmp_path, clip, [NVIDIA_STYLE_ANSWER], preset='trajectory')
    result = Planner(backend, load_preset('trajectory')).plan(clip, TASK)
    assert result.ok and result.answer.points_model == NVIDIA_STYLE_POINTS
    assert result.answer.next_action is None


def test_reasoning_answer(tmp_path, clip):
    answer = '<think>\nThe cube is at [300, 600].\n</think>\n\n' + PLAN_ANSWER
    backend = _replay(tmp_path, clip, [answer], reasoning=True)
    result = Planner(backend, 'plan', reasoning=True).plan(clip, TASK)
    assert result.ok and result.answer.reasoning == 'The cube is at [300, 600].'


def test_parse_failure_is_retried(tmp_path, clip):
    # Two recorded answers for the same request: replayed in order, the second is good.
    backend = _replay(tmp_path, clip, [GARBAGE, PLAN_ANSWER])
    result = Planner(backend, 'plan', max_attempts=2).plan(clip, TASK)
    assert result.ok and result.attempts == 2
    assert result.raw_answers == [GARBAGE, PLAN_ANSWER]


def test_parse_failures_exhaust_attempts(tmp_path, clip):
    backend = FaultInjectingBackend(_replay(tmp_path, clip, [PLAN_ANSWER]),
                                    faults=['garbage', 'garbage', 'garbage'])
    result = Planner(backend, 'plan', max_attempts=3).plan(clip, TASK)
    assert result.status is PlanStatus.PARSE_FAILED and result.answer is None
    assert result.attempts == 3 and len(result.raw_answers) == 3
    assert result.error.startswith('attempt 3/3: answer is not valid JSON')
    assert backend.calls == 3
    _stages_timed(result)


def test_single_attempt_is_not_retried(tmp_path, clip):
    backend = FaultInjectingBackend(_replay(tmp_path, clip, [PLAN_ANSWER]),
                                    faults=['garbage'])
    result = Planner(backend, 'plan', max_attempts=1).plan(clip, TASK)
    assert result.status is PlanStatus.PARSE_FAILED and backend.calls == 1


def test_truncated_answer_says_max_tokens(tmp_path, clip):
    backend = FaultInjectingBackend(_replay(tmp_path, clip, [PLAN_ANSWER]),
                                    faults=['truncate:0.6'])
    result = Planner(backend, 'plan', max_attempts=1).plan(clip, TASK)
    assert result.status is PlanStatus.PARSE_FAILED
    assert 'max_tokens' in result.error


def test_fatal_backend_error_is_not_retried(tmp_path, clip):
    backend = FaultInjectingBackend(_replay(tmp_path, clip, [PLAN_ANSWER]), faults=['oom'])
    result = Planner(backend, 'plan', max_attempts=3).plan(clip, TASK)
    assert result.status is PlanStatus.BACKEND_FAILED
    assert result.attempts == 1 and 'out of memory' in result.error
    assert result.raw_answers == [] and result.answer is None
    _stages_timed(result)


def test_retryable_backend_error_is_not_retried_by_the_planner(tmp_path, clip):
    # The backend already retried it (its own max_retries): retrying here would multiply.
    backend = FaultInjectingBackend(_replay(tmp_path, clip, [PLAN_ANSWER]),
                                    faults=['unavailable'])
    result = Planner(backend, 'plan', max_attempts=2).plan(clip, TASK)
    assert result.status is PlanStatus.BACKEND_FAILED and result.attempts == 1
    assert backend.applied == ['unavailable']


def test_retryable_errors_end_the_plan_at_once(tmp_path, clip):
    backend = FaultInjectingBackend(_replay(tmp_path, clip, [PLAN_ANSWER]),
                                    faults=['error:retryable'] * 5)
    result = Planner(backend, 'plan', max_attempts=3).plan(clip, TASK)
    assert result.status is PlanStatus.BACKEND_FAILED and backend.calls == 1
    assert 'attempt 1/3' in result.error


def test_replay_miss_is_a_backend_failure(tmp_path, clip):
    backend = _replay(tmp_path, clip, [PLAN_ANSWER])
    result = Planner(backend, 'plan').plan(synthetic_clip(width=100, height=80), TASK)
    assert result.status is PlanStatus.BACKEND_FAILED and result.attempts == 1
    assert 'no recorded answer' in result.error


def test_cancel_a_hanging_generation(tmp_path, clip):
    backend = FaultInjectingBackend(_replay(tmp_path, clip, [PLAN_ANSWER]),
                                    faults=['hang:30'])
    planner = Planner(backend, 'plan', max_attempts=3)
    results = []
    token = CancelToken()
    thread = threading.Thread(target=lambda: results.append(planner.plan(clip, TASK, token)))
    thread.start()
    assert backend.waiting.wait(10)
    token.cancel()
    thread.join(10)
    assert not thread.is_alive()
    assert results[0].status is PlanStatus.CANCELLED and results[0].attempts == 1
    assert results[0].answer is None
    # A cancel affects only the plan in flight: the next one runs.
    assert planner.plan(clip, TASK).ok


class _CancelAfterAnswering:
    """Answers through ``inner``, then cancels the job: the cancel lands between attempts."""

    name = 'cancel-after-answering'

    def __init__(self, inner: FaultInjectingBackend) -> None:
        self.inner = inner

    def generate(self, request: GenerationRequest,
                 cancel: Optional[CancelToken] = None) -> Completion:
        assert cancel is not None, 'the planner passes its token down'
        completion = self.inner.generate(request, cancel)
        cancel.cancel()
        return completion


def test_cancel_between_attempts_stops_retrying(tmp_path, clip):
    backend = FaultInjectingBackend(_replay(tmp_path, clip, [PLAN_ANSWER]),
                                    faults=['garbage'])
    token = CancelToken()
    result = Planner(_CancelAfterAnswering(backend), 'plan', max_attempts=2).plan(
        clip, TASK, token)
    assert result.status is PlanStatus.CANCELLED
    assert backend.calls == 1


def test_cancel_before_the_plan_starts_cancels_it(tmp_path, clip):
    backend = FaultInjectingBackend(_replay(tmp_path, clip, [PLAN_ANSWER]))
    token = CancelToken()
    token.cancel()
    result = Planner(backend, 'plan').plan(clip, TASK, token)
    assert result.status is PlanStatus.CANCELLED and backend.calls == 0


def test_no_frames(tmp_path, clip):
    result = Planner(_replay(tmp_path, clip, [PLAN_ANSWER]), 'plan').plan(None, TASK)
    assert result.status is PlanStatus.NO_FRAMES and result.attempts == 0


@pytest.mark.parametrize('kwargs', [{'max_attempts': 0}, {'max_attempts': 11},
                                    {'max_attempts': 1.5}, {'max_attempts': -1},
                                    {'preset': 'no-such-preset'}])
def test_bad_configuration_raises(tmp_path, clip, kwargs):
    options = {'preset': 'plan', **kwargs}
    with pytest.raises(ConfigError):
        Planner(_replay(tmp_path, clip, []), **options)


@pytest.mark.parametrize('task', ['', '   ', None])
def test_empty_task_raises(tmp_path, clip, task):
    with pytest.raises(ConfigError):
        Planner(_replay(tmp_path, clip, []), 'plan').plan(clip, task)


def test_seeded_retries_change_the_seed(tmp_path, clip):
    preset = load_preset('plan')
    seeded = dataclasses.replace(
        preset, direct_sampling=dataclasses.replace(preset.direct_sampling, seed=7))
    first: GenerationRequest = build_request(seeded, clip, TASK)
    second = dataclasses.replace(
        first, sampling=dataclasses.replace(first.sampling, seed=8))
    assert first.fingerprint() != second.fingerprint()
    path = write_recording(tmp_path / 'seeded.jsonl', [(first, GARBAGE), (second, PLAN_ANSWER)])
    result = Planner(ReplayBackend(path), seeded, max_attempts=2).plan(clip, TASK)
    assert result.ok and result.raw_answers == [GARBAGE, PLAN_ANSWER]


def test_tiny_checkpoint_end_to_end_and_replay(tiny_checkpoint, tmp_path):
    """The real local backend on the tiny checkpoint: constrained decoding gives a valid plan.

    Recording that run and replaying it gives the identical parse.
    """
    from cosmos_planner.backends.local.backend import LocalBackend
    small = synthetic_clip(width=96, height=64)
    local = LocalBackend(str(tiny_checkpoint), device='cpu')
    try:
        with RecordingBackend(local, tmp_path / 'tiny.jsonl') as recorder:
            live = Planner(recorder, 'plan').plan(small, TASK)
    finally:
        local.close()
    assert live.status is PlanStatus.OK, live.error
    assert live.answer.points_px and all(0 <= u <= 96 and 0 <= v <= 64
                                         for u, v in live.answer.points_px)
    assert live.completion.meta.get('tiny_random') is True
    replayed = Planner(ReplayBackend(tmp_path / 'tiny.jsonl'), 'plan').plan(small, TASK)
    assert replayed.ok
    assert replayed.answer == live.answer
