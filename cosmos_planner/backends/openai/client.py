"""A backend that asks an OpenAI-compatible server (vLLM, NVIDIA NIM) for the answer.

Many robots can share one GPU server this way; the node stays one process per robot. The
request body is built by ``payload`` (media, sampling, response schema); this module
owns the transport: the official ``openai`` client, timeouts, bounded retries with backoff,
cancellation, error mapping and health.

Design decisions (documented here because callers depend on them):

- API key: read only from the environment variable *named* by ``api_key_env`` (e.g.
  ``NGC_API_KEY``); never a constructor value, never logged, never in ``repr`` or
  ``health()``. Without ``api_key_env``, or when the named variable is unset or empty, the
  placeholder ``EMPTY`` is sent (vLLM without ``--api-key`` accepts it; the node's default
  names ``OPENAI_API_KEY``, usually unset for a local server) and a warning names the
  variable; a server that then answers 401/403 gets an error saying the variable is unset.
- Streaming (default on): the answer arrives as server-sent events, so a cancelled or
  timed-out request is closed at the next token and vLLM aborts it (it frees the GPU for the
  other robots) instead of generating to the end. ``stream=False`` suits servers without
  streaming; a cancel then only stops waiting (the server finishes the request).
- Each attempt runs in a short-lived worker thread; ``generate`` waits for it, for the
  job's cancel token (``generate(request, cancel)``; a cancel wakes the wait through the
  token's callback and closes the response) or for the attempt deadline (``timeout_s``,
  which also catches servers that trickle bytes forever: the client's read timeout alone
  never fires on those).
- Retries: this backend is the only layer that retries a transport failure (the planner
  retries only answers that do not parse). ``max_retries`` more attempts after the first,
  only for retryable failures, with exponential backoff (``backoff_s`` doubling, capped at
  ``backoff_max_s``, jittered to 50-100 % so robots sharing a server do not retry in step; a
  server's ``Retry-After`` is honoured up to the cap), all within one deadline for the whole
  request, ``request_deadline_s`` = ``timeout_s * (1 + max_retries)``: a backoff that would
  end past it is not waited (the last error is raised) and the last attempt gets only what
  is left, so backoffs and ``Retry-After`` cannot stretch a request beyond it. A cancel
  during a backoff ends it at once.
- Error mapping: connection refused / DNS failure -> ``BackendUnavailable``; HTTP 5xx,
  408, 429, timeouts, connections closed mid-answer, truncated or garbage bodies, an error
  event (5xx or without code) inside the answer stream ->
  ``BackendError(retryable=True)``; other HTTP 4xx (bad request, unknown model, auth) ->
  ``BackendError(retryable=False)``; an answer with reasoning only -> see
  ``payload.finish_answer``. Messages name the URL and the status, never the key.
- Per-request ``mm_processor_kwargs``/``media_io_kwargs`` need vLLM's
  ``--trust-request-mm-kwargs`` (vLLM >= 0.2x answers HTTP 400 without it). On that 400 the
  backend resends at once without them and omits them from then on (a warning says so):
  the server's own ``--media-io-kwargs`` then decide how many frames it keeps.
- Health: ``GET /v1/models`` (standard, served by vLLM and NIM) with a short timeout. At
  construction the backend probes once (``probe=True``; ``wait_ready_s`` keeps polling while
  a server is still starting) and checks that ``model`` is served; ``model=None`` takes the
  only model the server serves.
"""

import logging
import os
import random
import threading
import time
from typing import Any, Dict, List, Optional, Set, Union

import openai

from cosmos_planner.model.cancel import CancelToken, token_or_new
from cosmos_planner.model.protocol import Completion, GenerationRequest
from cosmos_planner.backends.openai.config import OpenAICompatConfig
from cosmos_planner.backends.openai.payload import (Answer, build_payload, finish_answer,
                                                    message_reasoning, payload_size,
                                                    PayloadStats)
from cosmos_planner.errors import (BackendError, BackendUnavailable, ConfigError,
                                   GenerationCancelled, PlannerError)

LOG = logging.getLogger(__name__)
#: Placeholder key for servers started without ``--api-key`` (the client insists on one).
NO_KEY = 'EMPTY'
#: Status codes of 4xx that say "try again later", not "your request is wrong".
RETRYABLE_4XX = (408, 409, 429)
#: Timeout of the readiness probe and ``health()`` (seconds).
PROBE_TIMEOUT_S = 5.0


class _Call:
    """One ``generate`` in flight: the job's token, the event its waits wake on, its deadline.

    ``wake`` is set when an attempt ends and, through the token's callback, on cancel, so
    the waiting thread never polls.
    """

    def __init__(self, token: CancelToken, deadline: float) -> None:
        self.token = token
        #: ``time.monotonic()`` by which the whole request (every attempt) must end.
        self.deadline = deadline
        self.wake = threading.Event()


class _Attempt:
    """One HTTP exchange running in a worker thread."""

    def __init__(self) -> None:
        self.answer: Optional[Answer] = None
        self.error: Optional[BaseException] = None
        self.done = threading.Event()
        self.abandoned = False
        self.ttft_ms: Optional[float] = None
        self._lock = threading.Lock()
        self._response: Any = None

    def hold(self, response: Any) -> None:
        """Keep the open HTTP response so an abandon can close it (closes it if too late)."""
        with self._lock:
            self._response = response
            late = self.abandoned
        if late:
            _close_quietly(response)

    def abandon(self) -> None:
        """Give up on the exchange and close its response at once.

        Closing from the waiting thread ends the worker's blocked read immediately, so a
        server that trickles bytes cannot keep a thread and a socket per timed-out attempt.
        """
        with self._lock:
            self.abandoned = True
            response = self._response
        if response is not None:
            _close_quietly(response)


def _close_quietly(response: Any) -> None:
    try:
        response.close()
    except Exception:  # noqa: BLE001 - the connection may already be broken
        pass


def _chain(exc: Optional[BaseException]) -> List[BaseException]:
    out: List[BaseException] = []
    while exc is not None and exc not in out and len(out) < 10:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def _names(exc: BaseException) -> Set[str]:
    return {cls.__name__ for e in _chain(exc) for cls in type(e).__mro__}


def _status_detail(exc: 'openai.APIStatusError') -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get('error', body)
        msg = err.get('message') if isinstance(err, dict) else err
        if msg:
            return str(msg)[:300]
    text = getattr(exc.response, 'text', '') or ''
    return text[:300] or exc.message[:300]


def map_error(exc: BaseException, url: str, timeout_s: float) -> PlannerError:
    """Turn whatever the transport raised into the planner's typed errors."""
    if isinstance(exc, PlannerError):
        return exc
    names = _names(exc)
    if isinstance(exc, openai.APIStatusError):
        code = exc.status_code
        detail = _status_detail(exc)
        retryable = code >= 500 or code in RETRYABLE_4XX
        err = BackendError(f'{url}: HTTP {code}: {detail}', retryable=retryable)
        err.status_code = code
        err.retry_after = _retry_after(exc)
        return err
    if isinstance(exc, openai.APITimeoutError) or 'TimeoutException' in names:
        return BackendError(f'{url}: no answer within {timeout_s:g} s (timeout)', retryable=True)
    if 'ConnectError' in names or 'ConnectionRefusedError' in names:
        cause = _chain(exc)[-1]
        return BackendUnavailable(f'cannot connect to {url}: {cause or type(cause).__name__}')
    if isinstance(exc, openai.APIConnectionError) or names & {
            'RemoteProtocolError', 'ReadError', 'NetworkError', 'TransportError',
            'ConnectionResetError', 'BrokenPipeError'}:
        cause = _chain(exc)[-1]
        return BackendError(f'{url}: connection broke before the answer was complete '
                            f'({type(cause).__name__}: {cause})', retryable=True)
    if isinstance(exc, openai.APIError) and not isinstance(exc, openai.APIResponseValidationError):
        # An error event inside the answer stream (vLLM sends one when generation fails).
        event_code = _error_code(exc.body)
        retryable = event_code is None or event_code >= 500 or event_code in RETRYABLE_4XX
        return BackendError(f'{url}: the server reported an error while generating'
                            f'{f" (code {event_code})" if event_code else ""}: '
                            f'{exc.message[:300]}',
                            retryable=retryable)
    if names & {'JSONDecodeError', 'APIResponseValidationError', 'ValidationError'}:
        return BackendError(f'{url}: malformed response (truncated or not JSON): {exc}',
                            retryable=True)
    return BackendError(f'{url}: unexpected {type(exc).__name__}: {exc}', retryable=False)


def _error_code(body: Any) -> Optional[int]:
    err = body.get('error', body) if isinstance(body, dict) else None
    code = err.get('code') if isinstance(err, dict) else None
    try:
        return int(code) if code is not None else None
    except (TypeError, ValueError):
        return None


def _retry_after(exc: 'openai.APIStatusError') -> Optional[float]:
    try:
        value = exc.response.headers.get('retry-after')
        return float(value) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None


MM_KWARGS_KEYS = ('mm_processor_kwargs', 'media_io_kwargs')


def strip_mm_kwargs(body: Dict[str, Any]) -> bool:
    """Remove the per-request media kwargs from a body; True if there were any."""
    return bool([body.pop(key) for key in MM_KWARGS_KEYS if key in body])


def _refuses_mm_kwargs(exc: BackendError) -> bool:
    text = str(exc)
    return (getattr(exc, 'status_code', None) == 400 and 'trust-request-mm-kwargs' in text
            and any(key in text for key in MM_KWARGS_KEYS))


def backoff_delay(n: int, base_s: float, cap_s: float, retry_after: Optional[float] = None,
                  jitter: float = 1.0) -> float:
    """Return the delay before retry ``n`` (1-based), in seconds.

    ``base_s * 2**(n-1)`` capped at ``cap_s``, scaled to 50-100 % by ``jitter`` in [0, 1] (so
    robots sharing a server do not retry in step); a server's ``Retry-After`` raises it, up
    to the cap.
    """
    delay = min(cap_s, base_s * 2 ** (n - 1)) * (0.5 + 0.5 * jitter)
    if retry_after is not None and retry_after > 0:
        delay = min(cap_s, max(delay, retry_after))
    return delay


class OpenAICompatBackend:
    """Backend for an OpenAI-compatible chat-completions server (vLLM, NIM).

    Constructor: ``OpenAICompatBackend(base_url, model=None, **settings)`` with any field of
    ``OpenAICompatConfig`` as a keyword (each field's ``setting`` says what it does; None
    keeps the default, an unknown name is refused with the accepted ones), or
    ``OpenAICompatBackend(config)`` with a config built before. Only two options are not
    settings of the config, because they act once, at construction:
        probe: check at construction that the server is up and serves ``model``.
        wait_ready_s: keep probing this long while the server is unreachable or starting.

    """

    name = 'openai'

    def __init__(self, base_url: Union[str, OpenAICompatConfig], model: Optional[str] = None,
                 *, probe: bool = True, wait_ready_s: float = 0.0, **settings: object) -> None:
        if isinstance(base_url, OpenAICompatConfig):
            if model is not None or settings:
                raise ConfigError('give either a config or settings, not both')
            self.config = base_url
        else:
            self.config = OpenAICompatConfig.from_options(
                dict(settings, base_url=base_url, model=model))
        self.url = self.config.base_url
        self._key_hint = ''
        self._client = openai.OpenAI(
            base_url=self.url, api_key=self._api_key(), max_retries=0,
            timeout=openai.Timeout(self.config.timeout_s, connect=self.config.connect_timeout_s))
        self._lock = threading.Lock()
        self._stats: Dict[str, Any] = {'requests': 0, 'attempts': 0, 'succeeded': 0, 'failed': 0,
                                       'retries': 0, 'cancelled': 0, 'last_error': ''}
        self.model = self.config.model or ''
        #: Set once the server refused per-request mm kwargs (vLLM without
        #: --trust-request-mm-kwargs answers HTTP 400); later requests omit them.
        self._mm_kwargs_refused = False
        if probe:
            self.wait_ready(wait_ready_s)

    def __repr__(self) -> str:
        return f'OpenAICompatBackend(url={self.url!r}, model={self.model!r})'

    def _api_key(self) -> str:
        env = self.config.api_key_env
        if env is None:
            return NO_KEY
        key = os.environ.get(env)
        if not key:
            LOG.warning('$%s is not set: sending no API key to %s', env, self.url)
            self._key_hint = f' (no API key sent: ${env} is not set)'
            return NO_KEY
        return key

    # -- health -------------------------------------------------------------------------
    def served_models(self, timeout_s: float = PROBE_TIMEOUT_S) -> List[str]:
        """Model ids the server lists at ``GET /models``; raises BackendError."""
        client = self._client.with_options(
            timeout=openai.Timeout(timeout_s, connect=min(timeout_s, 2.0)), max_retries=0)
        try:
            return [m.id for m in client.models.list().data]
        except Exception as exc:  # noqa: BLE001 - mapped to typed errors
            err = map_error(exc, self.url, timeout_s)
            if getattr(err, 'status_code', None) in (401, 403) and self._key_hint:
                err.args = (str(err) + self._key_hint,)
            raise err from exc

    def probe(self) -> List[str]:
        """Check that the server answers and serves ``model`` (picked when unset)."""
        models = self.served_models()
        if not self.model:
            if len(models) != 1:
                raise ConfigError(f'{self.url} serves {len(models)} models ({models}); '
                                  'name one with model=')
            self.model = models[0]
        elif self.model not in models:
            raise ConfigError(f'{self.url} does not serve model {self.model!r}; it serves '
                              f'{models} (vLLM: --served-model-name)')
        return models

    def wait_ready(self, wait_s: float = 0.0) -> List[str]:
        """Probe until ready or ``wait_s`` passed; the last failure is raised."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                return self.probe()
            except BackendError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    def health(self) -> Dict[str, Any]:
        """Cheap diagnostics: server reachable, model served, probe latency, counters."""
        t0 = time.perf_counter()
        with self._lock:
            out: Dict[str, Any] = {'url': self.url, 'model': self.model, **self._stats}
        try:
            models = self.served_models()
            ok = bool(self.model) and self.model in models
            detail = 'ready' if ok else f'model {self.model!r} not among {models}'
            out.update(ok=ok, detail=detail, served_models=models)
        except BackendError as exc:
            out.update(ok=False, detail=str(exc), served_models=[])
        out['latency_ms'] = (time.perf_counter() - t0) * 1e3
        return out

    # -- generation ---------------------------------------------------------------------
    @property
    def request_deadline_s(self) -> float:
        """Longest one ``generate`` may take, every attempt and backoff included (s)."""
        return self.config.timeout_s * (1 + self.config.max_retries)

    def generate(self, request: GenerationRequest,
                 cancel: Optional[CancelToken] = None) -> Completion:
        """One answer: encode, send (retrying what is retryable), read the answer.

        ``cancel`` is the job's token (None: nobody cancels): cancelling it ends the attempt
        or backoff in progress at once with GenerationCancelled (streaming: the server
        aborts the generation).
        """
        call = _Call(token_or_new(cancel), time.monotonic() + self.request_deadline_s)
        forget = call.token.on_cancel(call.wake.set)
        self._count('requests')
        try:
            return self._generate(request, call)
        except GenerationCancelled:
            self._count('cancelled')
            raise
        except BackendError as exc:
            self._count('failed', str(exc))
            raise
        finally:
            forget()

    def _count(self, key: str, error: str = '') -> None:
        with self._lock:
            self._stats[key] += 1
            if error:
                self._stats['last_error'] = error

    def _generate(self, request: GenerationRequest, call: _Call) -> Completion:
        if not self.model:
            self.probe()
        t0 = time.perf_counter()
        stats = PayloadStats()
        try:
            body = build_payload(request, self.config, self.model, stats)
            if self._mm_kwargs_refused:
                strip_mm_kwargs(body)
        except PlannerError as exc:
            raise BackendError(f'cannot encode the request: {exc}', retryable=False) from exc
        encode_ms = (time.perf_counter() - t0) * 1e3
        t_send = time.perf_counter()
        attempts = 1 + self.config.max_retries
        for n in range(1, attempts + 1):
            call.token.raise_if_cancelled()
            t_attempt = time.perf_counter()
            try:
                attempt = self._attempt(body, call)
                break
            except BackendError as exc:
                if _refuses_mm_kwargs(exc) and strip_mm_kwargs(body):
                    # A shared server that does not trust per-request media kwargs: go on
                    # without them (its own --media-io-kwargs then decide the frame rate).
                    LOG.warning('%s refuses per-request mm kwargs (%s); sending without '
                                'them from now on', self.url, exc)
                    self._mm_kwargs_refused = True
                    try:
                        attempt = self._attempt(body, call)
                        break
                    except BackendError as again:
                        exc = again
                if not exc.retryable or n == attempts:
                    if n > 1:
                        exc.args = (f'{exc} (after {n} attempts)',)
                    raise
                delay = self._backoff(n, exc)
                if time.monotonic() + delay >= call.deadline:
                    exc.args = (f'{exc} (after {n} attempts: no time left for another '
                                f'within the request deadline of '
                                f'{self.request_deadline_s:g} s)',)
                    raise
                LOG.warning('attempt %d/%d to %s failed (%s); retrying in %.2f s',
                            n, attempts, self.url, exc, delay)
                self._count('retries', str(exc))
                if call.token.wait(delay):
                    raise GenerationCancelled('generation cancelled') from None
        answer = attempt.answer
        if answer is None:  # cannot happen: _attempt returns only with an answer
            raise BackendError(f'{self.url}: no answer', retryable=False)
        text, reasoning, meta = finish_answer(answer, request, request.sampling.max_tokens)
        self._count('succeeded')
        meta.update(
            attempts=n, encode_ms=encode_ms, url=self.url, media=stats.media,
            media_bytes=stats.media_bytes, request_chars=payload_size(body),
            attempt_ms=(time.perf_counter() - t_attempt) * 1e3, stream=self.config.stream)
        if attempt.ttft_ms is not None:
            meta['ttft_ms'] = attempt.ttft_ms
        if stats.fps:
            meta['fps'] = stats.fps
        meta['mm_kwargs_sent'] = any(key in body for key in MM_KWARGS_KEYS)
        return Completion(
            text=text, reasoning=reasoning, finish_reason=answer.finish_reason or 'stop',
            prompt_tokens=answer.prompt_tokens, completion_tokens=answer.completion_tokens,
            model=answer.model or self.model, backend=self.name,
            generate_ms=(time.perf_counter() - t_send) * 1e3, meta=meta)

    def _backoff(self, n: int, exc: BackendError) -> float:
        return backoff_delay(n, self.config.backoff_s, self.config.backoff_max_s,
                             getattr(exc, 'retry_after', None), random.random())

    def _attempt(self, body: Dict[str, Any], call: _Call) -> _Attempt:
        """Run one exchange in a worker; return it done, or raise on error/cancel/deadline."""
        self._count('attempts')
        attempt = _Attempt()
        call.wake.clear()
        worker = threading.Thread(target=self._exchange, args=(body, attempt, call),
                                  name='openai-compat-request', daemon=True)
        worker.start()
        own_deadline = time.monotonic() + self.config.timeout_s
        deadline = min(own_deadline, call.deadline)
        while not attempt.done.is_set():
            if call.token.cancelled:
                attempt.abandon()
                raise GenerationCancelled('generation cancelled')
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                attempt.abandon()
                limit = (f'{self.config.timeout_s:g} s' if deadline == own_deadline else
                         f'the request deadline of {self.request_deadline_s:g} s')
                raise BackendError(f'{self.url}: no complete answer within {limit} '
                                   '(timeout)', retryable=True)
            call.wake.wait(remaining)
            call.wake.clear()
        if attempt.error is not None:
            err = map_error(attempt.error, self.url, self.config.timeout_s)
            if getattr(err, 'status_code', None) in (401, 403) and self._key_hint:
                err.args = (str(err) + self._key_hint,)
            raise err
        return attempt

    def _exchange(self, body: Dict[str, Any], attempt: _Attempt, call: _Call) -> None:
        """Worker thread: send the request and collect the answer into ``attempt``."""
        t0 = time.perf_counter()
        extra = {k: v for k, v in body.items() if k not in ('model', 'messages', 'stream')}
        try:
            if self.config.stream:
                stream = self._client.chat.completions.create(
                    model=body['model'], messages=body['messages'], stream=True,
                    extra_body=extra)
                attempt.hold(stream)
                try:
                    attempt.answer = self._read_stream(stream, attempt, t0)
                finally:
                    stream.close()
            else:
                # A raw response handle (not a parsed object) so an abandon can close it.
                with self._client.chat.completions.with_streaming_response.create(
                        model=body['model'], messages=body['messages'],
                        extra_body=extra) as raw:
                    attempt.hold(raw)
                    response = raw.parse()
                attempt.answer = self._read_response(response)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            attempt.error = exc
        finally:
            attempt.done.set()
            call.wake.set()

    def _read_stream(self, stream: Any, attempt: _Attempt, t0: float) -> Answer:
        answer = Answer()
        content: List[str] = []
        reasoning: List[str] = []
        for chunk in stream:
            if attempt.abandoned:
                raise GenerationCancelled('abandoned')  # closes the stream: server aborts
            answer.model = getattr(chunk, 'model', None) or answer.model
            usage = getattr(chunk, 'usage', None)
            if usage is not None:
                answer.prompt_tokens = usage.prompt_tokens or 0
                answer.completion_tokens = usage.completion_tokens or 0
            for choice in getattr(chunk, 'choices', None) or ():
                delta = choice.delta
                piece = getattr(delta, 'content', None) if delta is not None else None
                thought = message_reasoning(delta) if delta is not None else None
                if (piece or thought) and attempt.ttft_ms is None:
                    attempt.ttft_ms = (time.perf_counter() - t0) * 1e3
                if piece:
                    content.append(piece)
                if thought:
                    reasoning.append(thought)
                if choice.finish_reason:
                    answer.finish_reason = choice.finish_reason
        if answer.finish_reason is None:
            raise BackendError(
                f'{self.url}: the answer stream ended before the answer was finished (no '
                f'finish_reason after {len(content)} pieces): connection closed mid-answer '
                'or the server sent no events', retryable=True)
        answer.content = ''.join(content) if content else None
        answer.reasoning = ''.join(reasoning) if reasoning else None
        return answer

    def _read_response(self, response: Any) -> Answer:
        choices = getattr(response, 'choices', None)
        if not choices:
            raise BackendError(f'{self.url}: malformed response without choices: '
                               f'{str(response)[:200]}', retryable=True)
        choice = choices[0]
        message = choice.message
        usage = getattr(response, 'usage', None)
        return Answer(
            content=getattr(message, 'content', None),
            reasoning=message_reasoning(message),
            finish_reason=choice.finish_reason,
            prompt_tokens=(usage.prompt_tokens or 0) if usage else 0,
            completion_tokens=(usage.completion_tokens or 0) if usage else 0,
            model=getattr(response, 'model', '') or '')
