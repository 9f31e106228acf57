"""The OpenAI-compatible backend against a real vLLM server (CPU build) on 127.0.0.1.

vLLM serves the tiny random Qwen3-VL checkpoint from its own venv (``.venv-vllm``, made by
``scripts/setup_vllm.sh``). Image and video requests go through ``OpenAICompatBackend`` and
come back as schema-valid plans (structured outputs), with usage and finish reasons; a cancel
aborts the generation on the server; server-side 4xx map to non-retryable errors. The server
is stopped by its process group whatever happens.

Skipped only when ``.venv-vllm`` is absent and ``COSMOS_PLANNER_VLLM`` is not ``1``; with
``COSMOS_PLANNER_VLLM=1`` a missing venv or a server that does not start is a failure.
Runtime: about 1 minute to start the server plus 5-15 s a request on 2 shared cores.
"""

import dataclasses
import os
import re
import threading
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from cosmos_planner.backends.openai.client import OpenAICompatBackend
from cosmos_planner.model.cancel import CancelToken
from cosmos_planner.model.response_schemas import DecodingLimits, response_schema
from cosmos_planner.errors import BackendError, ConfigError, GenerationCancelled
from cosmos_planner.frames.types import Clip, Frame
from cosmos_planner.model.parser import parse_answer
from cosmos_planner.model.plan_schema import ModelAnswer
from cosmos_planner.model.prompts import build_request
from cosmos_planner.backends.openai.vllm_server import (find_vllm_python, VLLMServer,
                                                        VLLMServerConfig)

REQUIRED = os.environ.get('COSMOS_PLANNER_VLLM') == '1'
NATIVE = (640, 480)
SIZE = 224  # 7x7 visual tokens a frame: short prefill on CPU
SERVED = 'cosmos-reason2-tiny'
#: Short answers keep the random model's decode time small; still a valid ModelAnswer.
SHORT_SCHEMA = response_schema('plan', DecodingLimits(
    min_points=2, max_points=3, max_steps=1, max_text_chars=12, allow_gripper=False))


@pytest.fixture(scope='module')
def vllm(tiny_checkpoint: Path) -> Iterator[VLLMServer]:
    python = find_vllm_python()
    if python is None:
        if REQUIRED:
            pytest.fail('COSMOS_PLANNER_VLLM=1 but no .venv-vllm: run scripts/setup_vllm.sh')
        pytest.skip('vLLM venv .venv-vllm not installed (scripts/setup_vllm.sh)')
    # With the qwen3 reasoning parser, as Cosmos Reason 2 is served for reasoning presets.
    server = VLLMServer(VLLMServerConfig(model=str(tiny_checkpoint), served_model_name=SERVED,
                                         max_model_len=4096, max_num_seqs=4,
                                         reasoning_parser='qwen3'), python=python)
    try:
        server.start(timeout_s=400)
        yield server
    finally:
        pid = server.pid
        server.stop()
        if pid is not None:  # the whole group is gone: API server and engine core
            with pytest.raises(ProcessLookupError):
                os.killpg(pid, 0)


def make_clip(n: int, fps: float = 4.0) -> Clip:
    frames = []
    for i in range(n):
        image = np.zeros((SIZE, SIZE, 3), np.uint8)
        image[..., 1] = np.linspace(0, 200, SIZE, dtype=np.uint8)[:, None]
        image[60:120, 20 + 15 * i:80 + 15 * i] = (220, 30, 30)
        frames.append(Frame('cam', int(round(i * 1e9 / fps)), image, NATIVE))
    return Clip('cam', tuple(frames))


def short_request(clip: Clip, max_tokens: int = 200):
    request = build_request('plan', clip, 'pick up the red cube')
    return dataclasses.replace(
        request, response_schema=SHORT_SCHEMA,
        sampling=dataclasses.replace(request.sampling, max_tokens=max_tokens, seed=1))


def metric(server: VLLMServer, name: str) -> float:
    """Sum of a Prometheus metric over its labels, from the server's /metrics."""
    base = server.url[:-len('/v1')]
    with urllib.request.urlopen(f'{base}/metrics', timeout=5) as response:
        text = response.read().decode()
    values = re.findall(rf'^{re.escape(name)}(?:{{[^}}]*}})? ([0-9.e+-]+)$', text, re.M)
    return sum(float(v) for v in values)


def check_plan(completion) -> None:
    assert completion.finish_reason == 'stop'
    assert completion.prompt_tokens > 0 and completion.completion_tokens > 0
    assert completion.model == SERVED and completion.backend == 'openai'
    answer = parse_answer(completion.text, NATIVE, reasoning=completion.reasoning)
    ModelAnswer.model_validate_json(completion.text)  # the raw text itself is schema-valid
    assert 2 <= len(answer.points_px) <= 3
    assert all(0 <= x <= NATIVE[0] and 0 <= y <= NATIVE[1] for x, y in answer.points_px)


def test_health_and_probe(vllm):
    backend = OpenAICompatBackend(vllm.url)
    assert backend.model == SERVED  # the only model served
    health = backend.health()
    assert health['ok'] is True and health['served_models'] == [SERVED]
    with pytest.raises(ConfigError, match=SERVED):
        OpenAICompatBackend(vllm.url, model='nvidia/Cosmos-Reason2-2B')


def test_image_request_returns_a_schema_valid_plan(vllm):
    backend = OpenAICompatBackend(vllm.url, SERVED, media='images', max_retries=0)
    completion = backend.generate(short_request(make_clip(2)))
    check_plan(completion)
    assert completion.meta['media'] == 'images'


def test_video_request_keeps_every_frame(vllm):
    backend = OpenAICompatBackend(vllm.url, SERVED, media='video', max_retries=0)
    video = backend.generate(short_request(make_clip(8)))
    check_plan(video)
    assert video.meta['media'] == 'video' and video.meta['fps'] == pytest.approx(4.0)
    one_image = backend.generate(short_request(make_clip(1)))  # same text, one image
    check_plan(one_image)
    assert one_image.meta['media'] == 'images'
    # 8 frames are 4 temporal patches of 7x7 tokens against 7x7 for one image: at least
    # 3 * 49 more prompt tokens. vLLM's default 2 fps sampling would keep 4 frames
    # (2 patches: about 49 + timestamps more), so this proves every frame arrived.
    tokens = (SIZE // 32) ** 2
    assert video.prompt_tokens - one_image.prompt_tokens >= 3 * tokens


def test_non_streaming_with_response_format(vllm):
    backend = OpenAICompatBackend(vllm.url, SERVED, media='images', stream=False,
                                  schema_mode='response_format', max_retries=0)
    completion = backend.generate(short_request(make_clip(1)))
    check_plan(completion)
    assert completion.meta['stream'] is False


def test_max_tokens_cut_reports_length(vllm):
    backend = OpenAICompatBackend(vllm.url, SERVED, media='images', max_retries=0)
    completion = backend.generate(short_request(make_clip(1), max_tokens=4))
    assert completion.finish_reason == 'length'
    assert completion.completion_tokens == 4


def test_request_the_server_refuses_is_not_retried(vllm):
    backend = OpenAICompatBackend(vllm.url, SERVED, media='images', max_retries=2)
    attempts = backend.health()['attempts']
    with pytest.raises(BackendError, match='HTTP 400') as info:
        backend.generate(short_request(make_clip(1), max_tokens=100_000))  # > max_model_len
    assert info.value.retryable is False
    assert backend.health()['attempts'] == attempts + 1


def test_reasoning_parser_without_the_thinking_hint_puts_the_answer_in_reasoning(vllm):
    # The known vLLM behaviour the hint avoids: content None, everything in `reasoning`.
    backend = OpenAICompatBackend(vllm.url, SERVED, media='images', max_retries=0,
                                  thinking_hint=False)
    completion = backend.generate(short_request(make_clip(1), max_tokens=24))
    assert completion.meta['answer_from_reasoning'] is True
    assert completion.reasoning is None and completion.text


def test_reasoning_that_never_ends_is_a_clear_error(vllm):
    # `bad_words` keeps the random model from closing </think>: reasoning and no answer.
    backend = OpenAICompatBackend(vllm.url, SERVED, media='images', max_retries=2,
                                  extra_body={'bad_words': ['</think>']})
    request = build_request('plan', make_clip(1), 'pick up the red cube', reasoning=True)
    request = dataclasses.replace(request, sampling=dataclasses.replace(
        request.sampling, max_tokens=24, seed=1))
    with pytest.raises(BackendError, match='only reasoning') as info:
        backend.generate(request)
    assert info.value.retryable is False and 'max_tokens' in str(info.value)
    assert backend.health()['attempts'] == 1


def test_cancel_aborts_the_generation_on_the_server(vllm):
    backend = OpenAICompatBackend(vllm.url, SERVED, media='images', max_retries=0,
                                  extra_body={'ignore_eos': True})
    request = dataclasses.replace(short_request(make_clip(1), max_tokens=3000),
                                  response_schema=None)
    result = {}
    token = CancelToken()

    def work():
        try:
            backend.generate(request, token)
        except Exception as exc:  # noqa: BLE001 - inspected below
            result['error'] = exc

    thread = threading.Thread(target=work)
    thread.start()
    tokens_before = metric(vllm, 'vllm:generation_tokens_total')
    deadline = time.monotonic() + 120
    while metric(vllm, 'vllm:generation_tokens_total') < tokens_before + 5:
        assert time.monotonic() < deadline, 'generation never started'
        time.sleep(0.2)
    token.cancel()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert isinstance(result.get('error'), GenerationCancelled)
    # The server stops generating: nothing running, and the token count stops well short of
    # the 3000 tokens the request asked for (ignore_eos: it would never stop by itself).
    while metric(vllm, 'vllm:num_requests_running') > 0:
        assert time.monotonic() < deadline, 'the server kept generating after the cancel'
        time.sleep(0.2)
    generated = metric(vllm, 'vllm:generation_tokens_total') - tokens_before
    assert generated < 3000
