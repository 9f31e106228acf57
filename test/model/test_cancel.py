"""CancelToken: one job's cancel signal, seen by every layer (cosmos_planner.model.cancel).

Runtime: well under a second; no sleeps, every wait ends on an event.
"""

import threading
from typing import List

import pytest

from cosmos_planner.errors import GenerationCancelled
from cosmos_planner.model.cancel import CANCELLED, CancelToken, SUPERSEDED, token_or_new


def test_a_new_token_is_live_and_waits_time_out() -> None:
    token = CancelToken()
    assert not token.cancelled and token.reason == ''
    assert token.wait(0.001) is False
    token.raise_if_cancelled()  # does not raise


def test_cancel_sticks_and_the_first_call_reports_it() -> None:
    token = CancelToken()
    assert token.cancel() is True
    assert token.cancelled and token.reason == CANCELLED
    assert token.cancel() is False           # already cancelled: never reset
    assert token.wait(0) is True
    with pytest.raises(GenerationCancelled, match='stopped here'):
        token.raise_if_cancelled('stopped here')


def test_a_later_cancel_replaces_only_the_reason() -> None:
    token = CancelToken()
    calls: List[str] = []
    token.on_cancel(lambda: calls.append('woken'))
    token.cancel(SUPERSEDED)
    token.cancel(CANCELLED)
    assert token.reason == CANCELLED and calls == ['woken']


def test_callbacks_run_once_and_can_be_unregistered() -> None:
    token = CancelToken()
    calls: List[str] = []
    token.on_cancel(lambda: calls.append('a'))
    forget = token.on_cancel(lambda: calls.append('b'))
    forget()
    token.cancel()
    token.cancel()
    assert calls == ['a']
    # Registered after the cancel: runs at once, and forgetting it is harmless.
    token.on_cancel(lambda: calls.append('late'))()
    assert calls == ['a', 'late']


def test_a_failing_callback_does_not_stop_the_others() -> None:
    token = CancelToken()
    calls: List[str] = []

    def broken() -> None:
        raise RuntimeError('watcher bug')

    token.on_cancel(broken)
    token.on_cancel(lambda: calls.append('ok'))
    assert token.cancel() is True
    assert calls == ['ok'] and token.cancelled


def test_cancel_from_another_thread_ends_a_wait() -> None:
    token = CancelToken()
    waiting = threading.Event()
    result: List[bool] = []

    def waiter() -> None:
        waiting.set()
        result.append(token.wait(30))

    thread = threading.Thread(target=waiter)
    thread.start()
    assert waiting.wait(10)
    token.cancel()
    thread.join(10)
    assert not thread.is_alive() and result == [True]


def test_token_or_new() -> None:
    token = CancelToken()
    assert token_or_new(token) is token
    fresh = token_or_new(None)
    assert isinstance(fresh, CancelToken) and not fresh.cancelled
