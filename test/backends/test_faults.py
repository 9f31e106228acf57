"""Tests of backends/faults.py: injected faults in call order, hangs, bad fault specs."""

import threading

import pytest

from cosmos_planner.backends.faults import Fault, FaultInjectingBackend
from cosmos_planner.backends.recording import ReplayBackend
from cosmos_planner.errors import (BackendError, BackendUnavailable, ConfigError,
                                   GenerationCancelled)
from cosmos_planner.model.cancel import CancelToken
from planner_helpers import PLAN_ANSWER


def test_faults_follow_the_call_sequence(recorded, requests_):
    faults = FaultInjectingBackend(
        ReplayBackend(recorded, when_exhausted='repeat_last'),
        faults=['error:retryable', 'unavailable', 'oom', 'garbage', 'truncate:0.5',
                'delay:0.01', Fault('error', message='custom')], then='pass')
    request = requests_[0]
    with pytest.raises(BackendError) as info:
        faults.generate(request)
    assert info.value.retryable is True and type(info.value) is BackendError
    with pytest.raises(BackendUnavailable) as info:
        faults.generate(request)
    assert info.value.retryable is True
    with pytest.raises(BackendError, match='out of memory') as info:
        faults.generate(request)
    assert info.value.retryable is False
    assert faults.generate(request).text == Fault().text
    truncated = faults.generate(request)
    assert truncated.text == PLAN_ANSWER[:len(PLAN_ANSWER) // 2]
    assert truncated.finish_reason == 'length'
    assert faults.generate(request).text == PLAN_ANSWER  # delayed, then passed through
    with pytest.raises(BackendError, match='custom'):
        faults.generate(request)
    assert faults.generate(request).text == PLAN_ANSWER  # 'then' applies from here on
    assert faults.applied == ['error', 'unavailable', 'oom', 'garbage', 'truncate', 'delay',
                              'error', 'pass']
    assert faults.health()['injected'] == 7


def test_hang_until_cancelled(requests_):
    faults = FaultInjectingBackend(faults=['hang'])
    caught = []
    token = CancelToken()
    thread = threading.Thread(
        target=lambda: caught.append(_raises(faults.generate, requests_[0], token)))
    thread.start()
    assert faults.waiting.wait(10)
    token.cancel()
    thread.join(10)
    assert not thread.is_alive()
    assert isinstance(caught[0], GenerationCancelled)


def test_hang_that_is_never_cancelled_fails(requests_):
    with pytest.raises(BackendError, match='never cancelled'):
        FaultInjectingBackend(faults=['hang:0.01']).generate(requests_[0])


def _raises(func, *args):
    try:
        func(*args)
    except Exception as exc:  # noqa: BLE001 - the test inspects whatever was raised
        return exc
    return None


@pytest.mark.parametrize('spec', ['explode', 'delay:soon', 'truncate:2', 'error:maybe', 3])
def test_bad_fault_specs(spec):
    with pytest.raises(ConfigError):
        Fault.parse(spec)


def test_pass_through_needs_an_inner_backend(requests_):
    with pytest.raises(ConfigError, match='inner'):
        FaultInjectingBackend(faults=['pass']).generate(requests_[0])
