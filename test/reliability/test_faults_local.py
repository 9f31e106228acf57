"""Fault injection on the local (embedded transformers) backend, through the planner.

The real ``LocalBackend`` on the tiny random Qwen3-VL checkpoint, the real ``Planner`` and
``PlanPipeline``. Faults are injected, not waited for:

- out of memory: the model's ``generate`` is wrapped by ``OomInjector`` (a fault-injection
  double, named so) that raises ``torch.cuda.OutOfMemoryError`` (GPU) or the CPU allocator's
  ``RuntimeError`` on chosen calls; the request ends ``backend_failed`` with a reason that
  says memory, it is not retried (retrying an OOM only repeats it), the backend stays
  healthy and not busy, and the very next request plans;
- cancel during generation: ``on_step`` (called after every generated token) cancels the
  request's token at the second token of every other request, 20 requests in a row; each
  cancelled request ends ``cancelled``, the others plan, and threads and open fds end where
  they began;
- the ``FaultInjectingBackend`` wrapped around the real backend (retryable error, OOM,
  hang-until-cancelled, unavailable, garbage, truncation): backend errors end the request
  at once (the planner retries only unusable answers; transport retries belong to the
  remote backend), unusable answers are retried a bounded number of times, the next request
  recovers, and its ``health()`` counts what was injected.

Runtime: about 15-25 s (tiny generations of 0.3-0.5 s each).
Rerun: ``python -m pytest test/reliability/test_faults_local.py -q``.
"""

import dataclasses
import os
import threading
from typing import Any, Callable, Iterator, List, Optional

import numpy as np
import pytest

from cosmos_planner.backends.faults import Fault, FaultInjectingBackend
from cosmos_planner.geometry.camera_model import CameraModel
from cosmos_planner.model.cancel import CancelToken
from cosmos_planner.model.response_schemas import DecodingLimits
from cosmos_planner.frames.types import Clip, Frame
from cosmos_planner.pipeline.plan_pipeline import PipelineInputs, PlanPipeline
from cosmos_planner.pipeline.planner import Planner
from cosmos_planner.model.prompts import load_preset
from cosmos_planner.model.results import PlanStatus

torch = pytest.importorskip('torch')
local = pytest.importorskip('cosmos_planner.backends.local.backend')

STAMP = 10**12
CAMERA = CameraModel(640, 480, [500, 0, 320, 0, 500, 240, 0, 0, 1], (), 'none', 'cam')
#: Short answers from the random model; the grammar and generation path are the real ones.
PRESET = dataclasses.replace(load_preset('plan'), limits=DecodingLimits(
    min_points=2, max_points=4, max_steps=2, max_text_chars=24))
#: Statuses of a request whose answer came back and parsed (the random model's plans are
#: often refused by grounding or the gate, which is beside the point here).
ANSWERED = (PlanStatus.OK, PlanStatus.REJECTED, PlanStatus.GROUNDING_FAILED)


class OomInjector:
    """Fault-injection double for ``model.generate``: raise OOM on the calls listed."""

    def __init__(self, real: Callable[..., Any], fail_calls: List[int],
                 error: Callable[[], BaseException]) -> None:
        """Wrap ``real``; calls numbered from 0 that are in ``fail_calls`` raise ``error()``."""
        self.real = real
        self.fail_calls = set(fail_calls)
        self.error = error
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Raise the injected error or generate for real."""
        index = self.calls
        self.calls += 1
        if index in self.fail_calls:
            raise self.error()
        return self.real(*args, **kwargs)


class StepHook:
    """The backend's ``on_step`` callback, re-targetable per test."""

    def __init__(self) -> None:
        """Do nothing until a test sets ``action``."""
        self.action: Optional[Callable[[int], None]] = None

    def __call__(self, step: int) -> None:
        """Forward the step count to the current action."""
        if self.action is not None:
            self.action(step)


@pytest.fixture(scope='module')
def hook() -> StepHook:
    return StepHook()


@pytest.fixture(scope='module')
def backend(tiny_checkpoint: Any, hook: StepHook) -> Iterator[Any]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    instance = local.LocalBackend(str(tiny_checkpoint), device='cpu', max_think_chars=80,
                                  on_step=hook)
    yield instance
    instance.close()
    torch.set_num_threads(previous)


def _inputs(seed: int = 0) -> PipelineInputs:
    image = np.random.default_rng(seed).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    clip = Clip('cam', (Frame('cam', STAMP, image, (640, 480), 'cam'),))
    return PipelineInputs(clip, 'pick up the red cube', f'task-{seed}', CAMERA, now_ns=STAMP)


def _counts() -> tuple:
    return threading.active_count(), len(os.listdir('/proc/self/fd'))


@pytest.mark.parametrize('error,words', [
    (lambda: torch.cuda.OutOfMemoryError('CUDA out of memory. Tried to allocate 20.00 GiB'),
     'out of GPU memory'),
    (lambda: RuntimeError('[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can\'t '
                          'allocate memory: you tried to allocate 21474836480 bytes'),
     'allocate memory'),
], ids=['cuda_oom', 'cpu_oom'])
def test_out_of_memory_fails_one_request_and_the_next_one_plans(
        backend: Any, monkeypatch: pytest.MonkeyPatch, error: Callable[[], BaseException],
        words: str) -> None:
    injector = OomInjector(backend.model.generate, fail_calls=[0, 2], error=error)
    monkeypatch.setattr(backend.model, 'generate', injector)
    pipeline = PlanPipeline(Planner(backend, PRESET, max_attempts=3))
    statuses = []
    for seed in range(4):
        out = pipeline.run(_inputs(seed))
        statuses.append(out.status)
        if out.status is PlanStatus.BACKEND_FAILED:
            assert words in out.reason and out.result.attempts == 1, out.reason
            assert out.plan is None
        health = backend.health()
        assert health['ok'] is True and health['busy'] is False
    assert statuses[0] is statuses[2] is PlanStatus.BACKEND_FAILED
    assert statuses[1] in ANSWERED and statuses[3] in ANSWERED
    assert injector.calls == 4


def test_cancel_mid_generation_twenty_times_leaves_nothing_behind(
        backend: Any, hook: StepHook) -> None:
    pipeline = PlanPipeline(Planner(backend, PRESET, max_attempts=1))
    pipeline.run(_inputs(99))                                       # warm-up
    threads0, fds0 = _counts()
    cancel_now = {'on': False}
    token = CancelToken()
    steps: List[int] = []

    def at_step(step: int) -> None:
        steps.append(step)
        if cancel_now['on'] and step == 2:
            token.cancel()

    hook.action = at_step
    try:
        statuses = []
        for i in range(20):
            cancel_now['on'] = i % 2 == 0
            steps.clear()
            token = CancelToken()               # one token per request, as the worker does
            out = pipeline.run(_inputs(i), cancel=token)
            statuses.append(out.status)
            if cancel_now['on']:
                assert out.status is PlanStatus.CANCELLED, out.reason
                assert max(steps) <= 4, steps                # stopped within a token or two
            else:
                assert out.status in ANSWERED, out.reason
                assert max(steps) > 4
            assert backend.health()['busy'] is False
    finally:
        hook.action = None
    assert statuses.count(PlanStatus.CANCELLED) == 10
    assert _counts() == (threads0, fds0)


def test_injected_faults_around_the_real_backend_end_or_retry_and_recover(
        backend: Any) -> None:
    faulty = FaultInjectingBackend(backend, [
        'error:retryable',                        # a backend error: not retried here
        'oom',                                    # not retried
        'unavailable',                            # not retried
        'garbage', 'garbage',                     # both attempts unusable: parse_failed
        Fault('truncate', keep=0.5), 'pass',      # cut-off answer retried
        'pass',                                   # and the next request plans
    ])
    pipeline = PlanPipeline(Planner(faulty, PRESET, max_attempts=2))
    statuses = [pipeline.run(_inputs(i)).status for i in range(6)]
    assert statuses[0] is PlanStatus.BACKEND_FAILED
    assert statuses[1] is PlanStatus.BACKEND_FAILED
    assert statuses[2] is PlanStatus.BACKEND_FAILED
    assert statuses[3] is PlanStatus.PARSE_FAILED
    assert statuses[4] in ANSWERED
    assert statuses[5] in ANSWERED
    assert faulty.calls == 8 and faulty.health()['injected'] == 6
    assert faulty.health()['ok'] is True


def test_hang_is_cancelled_and_the_backend_is_reusable(backend: Any) -> None:
    faulty = FaultInjectingBackend(backend, ['hang:60'])
    pipeline = PlanPipeline(Planner(faulty, PRESET, max_attempts=1))
    result = {}
    token = CancelToken()
    worker = threading.Thread(
        target=lambda: result.update(out=pipeline.run(_inputs(1), cancel=token)))
    worker.start()
    assert faulty.waiting.wait(30), 'the hang never started'
    token.cancel()
    worker.join(30)
    assert not worker.is_alive()
    assert result['out'].status is PlanStatus.CANCELLED
    assert pipeline.run(_inputs(2)).status in ANSWERED
