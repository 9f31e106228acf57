"""Tests of backends/openai/client.py: the OpenAI-compatible backend's every error path.

The error paths run against ``fault_server.FaultServer``, a fault-injection HTTP server on
127.0.0.1 (not a model): refused connections, timeouts, HTTP 4xx/5xx, truncated and garbage
JSON, connections closed mid-body, bodies that trickle forever, ``content: null`` with
reasoning only. Retries are counted at the server. The request body, the media encoding and
the config are tested in test_payload.py, test_media.py and test_config.py. Runtime: about
15 s.
"""

import threading
from typing import Iterator

import pytest

from cosmos_planner.backends.openai.client import (backoff_delay, OpenAICompatBackend,
                                                   OpenAICompatConfig)
from cosmos_planner.errors import (BackendError, BackendUnavailable, ConfigError,
                                   GenerationCancelled)
from cosmos_planner.model.cancel import CancelToken
from cosmos_planner.model.parser import parse_answer
from fault_server import FaultServer, free_port, PLAN_ANSWER, THINKING
from planner_helpers import make_request, NATIVE
from ros_helpers import wait_until


def fast_backend(url: str, **kw) -> OpenAICompatBackend:
    options = dict(timeout_s=1.0, connect_timeout_s=1.0, max_retries=2, backoff_s=0.01,
                   backoff_max_s=0.02)
    options.update(kw)
    return OpenAICompatBackend(url, **options)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as srv:
        yield srv


# -- configuration, key, probe ------------------------------------------------------------
def test_backend_takes_a_config_or_its_fields_and_refuses_unknown_options():
    from cosmos_planner.backends.registry import make_backend

    config = OpenAICompatConfig('http://127.0.0.1:1/v1', model='m', media='images')
    backend = OpenAICompatBackend(config, probe=False)
    assert backend.config is config and backend.model == 'm'
    same = OpenAICompatBackend('http://127.0.0.1:1/v1', 'm', media='images', probe=False,
                               extra_body=None)
    assert same.config == config
    with pytest.raises(ConfigError, match='temprature.*accepted: base_url'):
        make_backend('openai', base_url='http://127.0.0.1:1/v1', temprature=0.3, probe=False)
    with pytest.raises(ConfigError, match='not both'):
        OpenAICompatBackend(config, media='video', probe=False)


def test_api_key_only_from_named_env_and_never_shown(server, monkeypatch):
    secret = 'sk-test-very-secret-123'
    monkeypatch.setenv('COSMOS_TEST_KEY', secret)
    backend = fast_backend(server.url, api_key_env='COSMOS_TEST_KEY')
    backend.generate(make_request())
    assert server.request_headers[-1]['authorization'] == f'Bearer {secret}'
    server.script('status:401')
    with pytest.raises(BackendError) as info:
        backend.generate(make_request())
    assert info.value.retryable is False
    assert secret not in str(info.value)
    assert secret not in repr(backend) and secret not in str(backend.health())
    # Unset variable: no key is sent (fine for a local vLLM), and a 401 says why.
    monkeypatch.delenv('COSMOS_TEST_KEY')
    keyless = fast_backend(server.url, api_key_env='COSMOS_TEST_KEY')
    keyless.generate(make_request())
    assert server.request_headers[-1]['authorization'] == 'Bearer EMPTY'
    server.script('status:401')
    with pytest.raises(BackendError, match=r'\$COSMOS_TEST_KEY is not set'):
        keyless.generate(make_request())


def test_probe_checks_the_model_and_health_reports(server):
    backend = fast_backend(server.url)  # model=None: the only served model is taken
    assert backend.model == 'fault-model'
    health = backend.health()
    assert health['ok'] is True and health['served_models'] == ['fault-model']
    with pytest.raises(ConfigError, match='fault-model'):
        fast_backend(server.url, model='other-model')
    server.models_fault = 'status:503'
    health = backend.health()
    assert health['ok'] is False and '503' in health['detail']


# -- answers --------------------------------------------------------------------------------
@pytest.mark.parametrize('stream', [True, False])
def test_ok_answer_parses_with_usage_and_finish_reason(server, stream):
    backend = fast_backend(server.url, stream=stream)
    completion = backend.generate(make_request())
    assert completion.text == PLAN_ANSWER
    assert completion.finish_reason == 'stop'
    assert (completion.prompt_tokens, completion.completion_tokens) == (123, 45)
    assert completion.backend == 'openai' and completion.model == 'fault-model'
    assert completion.meta['attempts'] == 1 and completion.meta['media'] == 'video'
    answer = parse_answer(completion.text, NATIVE, reasoning=completion.reasoning)
    assert answer.next_action == 'pick up the red cube'
    assert answer.points_px[0] == pytest.approx((320.0, 288.0))
    sent = server.requests[-1]
    assert sent['messages'][1]['content'][0]['type'] == 'video_url'
    assert bool(sent.get('stream')) is stream


@pytest.mark.parametrize('stream', [True, False])
def test_reasoning_split_by_the_server(server, stream):
    server.script('reasoning_split')
    completion = fast_backend(server.url, stream=stream).generate(make_request(reasoning=True))
    assert completion.text == PLAN_ANSWER
    assert completion.reasoning == THINKING
    assert completion.meta['reasoning_source'] == 'server'


def test_reasoning_inline_think(server):
    server.script('inline_think')
    completion = fast_backend(server.url).generate(make_request(reasoning=True))
    assert completion.reasoning == THINKING
    assert parse_answer(completion.text, NATIVE).next_action == 'pick up the red cube'


@pytest.mark.parametrize('stream', [True, False])
def test_content_null_with_reasoning_only(server, stream):
    backend = fast_backend(server.url, stream=stream)
    # Without the think add-on, vLLM's qwen3 parser can put the whole answer in reasoning:
    # that text is the answer.
    server.script('reasoning_only')
    completion = backend.generate(make_request(reasoning=False))
    assert completion.text == PLAN_ANSWER and completion.reasoning is None
    assert completion.meta['answer_from_reasoning'] is True
    # With reasoning requested, reasoning without an answer is a clear, final error.
    server.script('reasoning_only')
    n = server.chat_count
    with pytest.raises(BackendError, match='only reasoning') as info:
        backend.generate(make_request(reasoning=True))
    assert info.value.retryable is False and server.chat_count == n + 1


def test_empty_answer_is_an_error_and_length_is_reported(server):
    backend = fast_backend(server.url)
    server.script('empty')
    with pytest.raises(BackendError, match='empty answer'):
        backend.generate(make_request())
    server.script('length')
    completion = backend.generate(make_request())
    assert completion.finish_reason == 'length'


# -- errors, retries, recovery ------------------------------------------------------------
RETRYABLE = ['status:500', 'status:503', 'status:429', 'truncated_json', 'garbage',
             'half_close', 'reset', 'slow:5', 'drip']


def test_error_event_inside_the_stream(server):
    backend = fast_backend(server.url, max_retries=1)
    server.script('stream_error:500')  # retryable, then the retry succeeds
    completion = backend.generate(make_request())
    assert completion.text == PLAN_ANSWER and completion.meta['attempts'] == 2
    server.script('stream_error:400')
    with pytest.raises(BackendError, match='while generating') as info:
        backend.generate(make_request())
    assert info.value.retryable is False and server.chat_count == 3


@pytest.mark.parametrize('stream', [True, False])
@pytest.mark.parametrize('fault', RETRYABLE)
def test_retryable_faults_are_retried_a_bounded_number_of_times(server, fault, stream):
    server.default = fault
    backend = fast_backend(server.url, stream=stream, timeout_s=0.5, max_retries=2)
    with pytest.raises(BackendError) as info:
        backend.generate(make_request())
    assert info.value.retryable is True
    assert not isinstance(info.value, BackendUnavailable)
    assert server.chat_count == 3  # first attempt + max_retries, no more
    assert '3 attempts' in str(info.value)
    assert backend.health()['retries'] == 2


@pytest.mark.parametrize('fault', ['status:400', 'status:404', 'status:422'])
def test_client_errors_are_not_retried(server, fault):
    server.default = fault
    with pytest.raises(BackendError) as info:
        fast_backend(server.url).generate(make_request())
    assert info.value.retryable is False
    assert server.chat_count == 1
    assert fault.split(':')[1] in str(info.value)


def test_recovers_when_the_fault_clears_within_the_retries(server):
    server.script('status:503', 'half_close')
    completion = fast_backend(server.url).generate(make_request())
    assert completion.meta['attempts'] == 3 and server.chat_count == 3
    assert parse_answer(completion.text, NATIVE).points_model


def test_recovers_after_retries_were_exhausted(server):
    backend = fast_backend(server.url, max_retries=1)
    server.default = 'status:500'
    with pytest.raises(BackendError):
        backend.generate(make_request())
    assert server.chat_count == 2
    server.clear()
    assert backend.generate(make_request()).text == PLAN_ANSWER
    assert server.chat_count == 3


def test_refused_connection_is_unavailable_then_recovers():
    port = free_port()
    url = f'http://127.0.0.1:{port}/v1'
    with pytest.raises(BackendUnavailable, match='cannot connect'):
        fast_backend(url)  # readiness probe at start
    backend = fast_backend(url, model='fault-model', probe=False)
    with pytest.raises(BackendUnavailable) as info:
        backend.generate(make_request())
    assert info.value.retryable is True
    assert backend.health()['ok'] is False
    with FaultServer(port=port) as srv:
        assert backend.health()['ok'] is True
        assert backend.generate(make_request()).text == PLAN_ANSWER
        assert srv.chat_count == 1


def test_wait_ready_polls_until_the_server_is_up():
    port = free_port()
    srv = FaultServer(port=port)
    timer = threading.Timer(0.5, srv.start)
    timer.start()
    try:
        backend = fast_backend(f'http://127.0.0.1:{port}/v1', wait_ready_s=20.0)
        assert backend.model == 'fault-model' and srv.model_requests >= 1
    finally:
        timer.join()
        srv.stop()


def test_backoff_grows_is_capped_jittered_and_honours_retry_after():
    assert [backoff_delay(n, 0.5, 4.0, jitter=1.0) for n in (1, 2, 3, 4, 5)] == \
        [0.5, 1.0, 2.0, 4.0, 4.0]
    assert backoff_delay(2, 0.5, 4.0, jitter=0.0) == 0.5  # jitter spans 50-100 %
    assert backoff_delay(1, 0.5, 4.0, retry_after=3.0, jitter=0.0) == 3.0
    assert backoff_delay(1, 0.5, 4.0, retry_after=60.0) == 4.0


# -- cancellation ---------------------------------------------------------------------------
def _generate_in_thread(backend, request, cancel=None):
    result = {}

    def work():
        try:
            result['completion'] = backend.generate(request, cancel)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            result['error'] = exc

    thread = threading.Thread(target=work)
    thread.start()
    return thread, result


@pytest.mark.parametrize('stream', [True, False])
def test_cancel_ends_an_in_flight_request(server, stream):
    server.default = 'slow:30'
    backend = fast_backend(server.url, stream=stream, timeout_s=60.0)
    token = CancelToken()
    thread, result = _generate_in_thread(backend, make_request(), token)
    assert wait_until(lambda: server.chat_count > 0, 20), 'the request never reached the server'
    token.cancel()
    thread.join(timeout=20)  # the server would take 30 s: only cancel ends it sooner
    assert not thread.is_alive()
    assert isinstance(result.get('error'), GenerationCancelled)
    assert server.chat_count == 1
    assert backend.health()['cancelled'] == 1


def test_cancel_during_backoff_stops_retrying(server):
    server.default = 'status:503'
    # timeout_s=60: a 30 s backoff fits in the request deadline, so it is waited (and cut).
    backend = fast_backend(server.url, timeout_s=60.0, backoff_s=30.0, backoff_max_s=30.0)
    token = CancelToken()
    thread, result = _generate_in_thread(backend, make_request(), token)
    assert wait_until(lambda: server.chat_count > 0, 20), 'the request never reached the server'
    token.cancel()
    thread.join(timeout=20)
    assert not thread.is_alive()
    assert isinstance(result.get('error'), GenerationCancelled)
    assert server.chat_count == 1


def test_cancel_with_nothing_in_flight_does_not_poison_the_next_request(server):
    backend = fast_backend(server.url)
    CancelToken().cancel()  # another job's token
    assert backend.generate(make_request()).text == PLAN_ANSWER


def test_a_token_cancelled_before_the_request_sends_nothing(server):
    backend = fast_backend(server.url)
    token = CancelToken()
    token.cancel()
    with pytest.raises(GenerationCancelled):
        backend.generate(make_request(), token)
    assert server.chat_count == 0 and backend.health()['cancelled'] == 1
    assert backend.generate(make_request(), CancelToken()).text == PLAN_ANSWER


def test_a_backoff_past_the_request_deadline_is_not_waited(server):
    server.default = 'status:503'
    backend = fast_backend(server.url, timeout_s=1.0, backoff_s=30.0, backoff_max_s=30.0)
    assert backend.request_deadline_s == 3.0          # timeout_s * (1 + max_retries)
    thread, result = _generate_in_thread(backend, make_request())
    thread.join(timeout=20)                            # a 15-30 s backoff would still wait
    assert not thread.is_alive()
    error = result.get('error')
    assert isinstance(error, BackendError) and error.retryable
    assert 'request deadline of 3 s' in str(error)
    assert server.chat_count == 1


def test_the_last_attempt_gets_only_what_is_left_of_the_request_deadline(server):
    server.default = 'slow:5'
    backend = fast_backend(server.url, timeout_s=1.0, max_retries=1, backoff_s=0.1,
                           backoff_max_s=0.1)
    # Attempt 1 times out at 1 s, the backoff takes 0.05-0.1 s, attempt 2 would run to
    # 2.05-2.1 s on its own timeout_s: the request deadline (2 s) cuts it.
    with pytest.raises(BackendError, match='request deadline of 2 s') as info:
        backend.generate(make_request())
    assert info.value.retryable is True
    assert server.chat_count == 2


def test_factory_builds_the_openai_backend(server):
    from cosmos_planner.backends.registry import make_backend

    backend = make_backend('openai', base_url=server.url, media='images', timeout_s=2.0)
    assert isinstance(backend, OpenAICompatBackend)
    assert backend.generate(make_request()).meta['media'] == 'images'


def test_server_refusing_mm_kwargs_gets_them_no_more(server):
    server.default = 'mm_untrusted'  # 400 while mm_processor_kwargs are sent, then ok
    backend = fast_backend(server.url, max_retries=0)
    completion = backend.generate(make_request())
    assert completion.text == PLAN_ANSWER and completion.meta['mm_kwargs_sent'] is False
    assert 'mm_processor_kwargs' in server.requests[0]
    assert 'mm_processor_kwargs' not in server.requests[1]
    assert 'media_io_kwargs' not in server.requests[1]
    backend.generate(make_request())
    assert server.chat_count == 3 and 'mm_processor_kwargs' not in server.requests[2]
