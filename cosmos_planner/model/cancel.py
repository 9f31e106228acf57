"""One cancel token per job: the single signal every layer of that job watches.

Whoever starts a job creates its token: the node's planning worker one per planning job,
the bag replay and the CLI one per request they run (or none: ``None`` everywhere means a
token nobody cancels). It is passed down, never stored by the layers it crosses:
``PlanPipeline.run(..., cancel)`` -> ``Planner.plan(..., cancel)`` ->
``Backend.generate(request, cancel)`` -> wrappers -> the inner backend. A new job gets a new
token; a token is never reset, so a cancel is not lost when it lands before a layer has
started (between "job taken" and "generation started"): that layer sees it when it starts.
That is why nothing here needs an epoch, a re-cancelling thread or a flag cleared at the end
of a run.

How layers watch a token, from any thread:

- ``cancelled`` is polled at cheap points: between pipeline stages and attempts, after every
  generated token (local backend) and every streamed chunk (remote backend);
- ``wait(seconds)`` replaces ``sleep`` (retry backoffs, scripted delays): it returns True at
  once when the token is cancelled;
- ``on_cancel(callback)`` wakes something blocked elsewhere (a thread waiting for an HTTP
  answer); it returns a function that unregisters the callback, called when that wait ends.

The token knows nothing of planning, on purpose: a job that asks more than one question (a
plan, then a verification question about it) passes the same token to each ``generate``,
and a streamed partial answer is handed on at the same per-token check points, so whoever
consumes partial answers stops the generation through the same token.
"""

import logging
import threading
from typing import Callable, Dict, Optional

from cosmos_planner.errors import GenerationCancelled

LOG = logging.getLogger(__name__)

#: Reason of a plain cancel (a service call, deactivation, a clock reset, shutdown).
CANCELLED = 'cancelled'
#: Reason when a newer job replaced this one.
SUPERSEDED = 'superseded'


class CancelToken:
    """A job's cancel signal: set once, from any thread; seen by every layer of the job."""

    def __init__(self) -> None:
        """Create a token that is not cancelled."""
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._reason = ''
        self._callbacks: Dict[int, Callable[[], None]] = {}
        self._next_key = 0

    def __repr__(self) -> str:
        state = f'cancelled: {self._reason}' if self.cancelled else 'live'
        return f'CancelToken({state})'

    @property
    def cancelled(self) -> bool:
        """Tell whether the job is cancelled; cheap enough to poll per token or chunk."""
        return self._event.is_set()

    @property
    def reason(self) -> str:
        """Why the job was cancelled ('' while it is not); see ``cancel``."""
        with self._lock:
            return self._reason

    def cancel(self, reason: str = CANCELLED) -> bool:
        """Cancel the job; True when this call cancelled it, False when it already was.

        The first call wakes every watcher (callbacks run on the calling thread, so they must
        be quick and must not block); a later call only replaces ``reason``, so the one who
        cancels last says why (the worker's explicit cancel outranks the supersede before
        it).
        """
        with self._lock:
            self._reason = reason
            if self._event.is_set():
                return False
            self._event.set()
            callbacks = list(self._callbacks.values())
            self._callbacks.clear()
        for callback in callbacks:
            try:
                callback()
            except Exception:  # noqa: BLE001 - one broken watcher must not stop the others
                LOG.exception('a cancel callback failed')
        return True

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Sleep up to ``timeout`` seconds, ending early on cancel; True when cancelled."""
        return self._event.wait(timeout)

    def raise_if_cancelled(self, message: str = 'generation cancelled') -> None:
        """Raise GenerationCancelled(``message``) when the job was cancelled."""
        if self._event.is_set():
            raise GenerationCancelled(message)

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` once when the job is cancelled (now, if it already is).

        Returns a function that unregisters it; call it when the wait it serves is over, so a
        long job does not collect callbacks of waits that ended long ago.
        """
        with self._lock:
            if not self._event.is_set():
                key = self._next_key
                self._next_key += 1
                self._callbacks[key] = callback
                return lambda: self._forget(key)
        callback()
        return _nothing

    def _forget(self, key: int) -> None:
        with self._lock:
            self._callbacks.pop(key, None)


def _nothing() -> None:
    """Unregister a callback that already ran."""


def token_or_new(cancel: Optional[CancelToken]) -> CancelToken:
    """Return ``cancel``, or a fresh token for a caller that never cancels (None)."""
    return cancel if cancel is not None else CancelToken()
