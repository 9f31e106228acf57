"""Planner: clip + task -> prompt -> backend -> parse, with bounded retries and timings.

The one place where a model answer becomes a ``PlanResult``. Failures are statuses, not
exceptions. The planner retries exactly one kind of failure: an answer that does not parse
or fails schema validation is asked for again, up to ``max_attempts`` answers, and then
reported as PARSE_FAILED (never published). A backend failure is BACKEND_FAILED at once:
transport failures were already retried inside the backend (``backend.max_retries``, within
its request deadline), so retrying here would only multiply those attempts. Grounding and
safety-gate failures happen after the planner (``PlanPipeline``) and are not retried either:
asking again for an answer that parsed is no fix for a plan that cannot be grounded or is
unsafe. A cancelled generation is CANCELLED. Errors in the caller's own input (an unknown
preset, an empty task) still raise, because they are bugs or bad configuration, not
something a retry or a status can fix.

Cancelling: ``plan`` takes the job's ``CancelToken`` and hands it to every ``generate``; the
planner keeps no cancel state of its own, so one plan's cancel can never touch the next.

Stages are timed in milliseconds, summed over attempts: ``prepare`` (prompt and request),
``generate`` (the backend), ``parse`` (parse and validate), and ``total``.

Retries with a fixed sampling seed use seed + attempt, so a deterministic backend does not
repeat the same bad answer; an unseeded request is repeated as is (its fingerprint is
unchanged, which is why a replay returns recorded retries in order).
"""

import dataclasses
import logging
import threading
import time
from typing import Optional, Union

from cosmos_planner.model import prompts
from cosmos_planner.model.cancel import CancelToken, token_or_new
from cosmos_planner.model.protocol import Backend, Completion, GenerationRequest
from cosmos_planner.errors import BackendError, ConfigError, GenerationCancelled, ParseError
from cosmos_planner.frames.types import Clip
from cosmos_planner.model.parser import parse_answer
from cosmos_planner.model.results import PlanResult, PlanStatus

LOG = logging.getLogger(__name__)
#: Upper bound on attempts, so a misconfiguration cannot loop on a broken model for long.
MAX_ATTEMPTS_LIMIT = 10


class Planner:
    """Plan with one backend and one prompt preset; one ``plan`` at a time."""

    def __init__(self, backend: Backend, preset: Union[str, 'prompts.PromptPreset'],
                 reasoning: bool = False, max_attempts: int = 2) -> None:
        """Check the settings; ``max_attempts`` counts answers asked for per plan."""
        if not isinstance(max_attempts, int) or not 1 <= max_attempts <= MAX_ATTEMPTS_LIMIT:
            raise ConfigError(f'max_attempts must be an integer in 1-{MAX_ATTEMPTS_LIMIT}, '
                              f'got {max_attempts!r}')
        self.backend = backend
        self.preset = prompts.load_preset(preset) if isinstance(preset, str) else preset
        self.reasoning = bool(reasoning)
        self.max_attempts = max_attempts
        self._plan_lock = threading.Lock()

    def plan(self, clip: Optional[Clip], task: str,
             cancel: Optional[CancelToken] = None) -> PlanResult:
        """Plan for ``task`` from ``clip``; the answer's pixels are in the newest frame.

        ``cancel`` is the job's token (None: nobody cancels this plan); once it is
        cancelled, from any thread, the plan ends CANCELLED.
        """
        if not isinstance(task, str) or not task.strip():
            raise ConfigError('the task must be a non-empty instruction')
        with self._plan_lock:
            return self._plan(clip, task.strip(), token_or_new(cancel))

    def _plan(self, clip: Optional[Clip], task: str, cancel: CancelToken) -> PlanResult:
        start = time.perf_counter()
        result = PlanResult(status=PlanStatus.NO_FRAMES,
                            timings_ms={'prepare': 0.0, 'generate': 0.0, 'parse': 0.0})
        if clip is None:
            result.error = 'no frames to plan from'
            return self._finish(result, start)
        tick = time.perf_counter()
        request = prompts.build_request(self.preset, clip, task, self.reasoning)
        result.timings_ms['prepare'] = _ms(tick)
        image_size = clip.newest.native_size
        while result.attempts < self.max_attempts:
            if cancel.cancelled:
                return self._finish(self._cancel_result(result), start)
            result.attempts += 1
            attempt_request = _reseeded(request, result.attempts)
            tick = time.perf_counter()
            try:
                completion = self.backend.generate(attempt_request, cancel)
            except GenerationCancelled as exc:
                result.timings_ms['generate'] += _ms(tick)
                return self._finish(self._cancel_result(result, str(exc)), start)
            except BackendError as exc:
                # Final: the backend already retried what a retry can fix (see the docstring).
                result.timings_ms['generate'] += _ms(tick)
                result.status = PlanStatus.BACKEND_FAILED
                result.error = f'attempt {result.attempts}/{self.max_attempts}: {exc}'
                LOG.warning('backend %s failed (%s): %s', self.backend.name, exc.reason, exc)
                return self._finish(result, start)
            result.timings_ms['generate'] += _ms(tick)
            result.completion = completion
            result.raw_answers.append(completion.text)
            if cancel.cancelled:
                return self._finish(self._cancel_result(result), start)
            tick = time.perf_counter()
            try:
                result.answer = parse_answer(completion.text, image_size,
                                             reasoning=completion.reasoning)
            except ParseError as exc:
                result.timings_ms['parse'] += _ms(tick)
                result.status = PlanStatus.PARSE_FAILED
                result.error = (f'attempt {result.attempts}/{self.max_attempts}: {exc}'
                                + _finish_hint(completion))
                LOG.warning('unusable answer from %s: %s', self.backend.name, result.error)
                continue
            result.timings_ms['parse'] += _ms(tick)
            result.status = PlanStatus.OK
            result.error = ''
            return self._finish(result, start)
        return self._finish(result, start)

    def _cancel_result(self, result: PlanResult, detail: str = '') -> PlanResult:
        result.status = PlanStatus.CANCELLED
        result.answer = None
        result.error = detail or 'cancelled'
        return result

    @staticmethod
    def _finish(result: PlanResult, start: float) -> PlanResult:
        result.timings_ms['total'] = _ms(start)
        return result


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0


def _reseeded(request: GenerationRequest, attempt: int) -> GenerationRequest:
    seed = request.sampling.seed
    if attempt == 1 or seed is None:
        return request
    sampling = dataclasses.replace(request.sampling, seed=seed + attempt - 1)
    return dataclasses.replace(request, sampling=sampling)


def _finish_hint(completion: Completion) -> str:
    if completion.finish_reason == 'length':
        return ' (generation stopped at max_tokens)'
    return ''
