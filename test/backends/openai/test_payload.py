"""Tests of backends/openai/payload.py: the request body for each media and schema mode."""

import dataclasses

import pytest

from cosmos_planner.backends.openai.config import OpenAICompatConfig
from cosmos_planner.backends.openai.payload import build_payload
from cosmos_planner.errors import ConfigError
from cosmos_planner.model.protocol import Sampling
from planner_helpers import make_clip, make_request


def test_video_request_puts_mp4_first_with_real_fps_and_schema():
    clip = make_clip(n=4, fps=4.0)
    request = make_request(clip)
    body = build_payload(request, OpenAICompatConfig(), 'm')
    user = body['messages'][1]['content']
    assert [p['type'] for p in user] == ['video_url', 'text']
    assert user[0]['video_url']['url'].startswith('data:video/mp4;base64,')
    assert body['structured_outputs'] == {'json': request.response_schema}
    assert 'guided_json' not in body
    assert body['mm_processor_kwargs']['fps'] == pytest.approx(4.0)
    assert body['mm_processor_kwargs']['do_sample_frames'] is False
    # The loader must keep every frame: it samples at a rate a little above the real one.
    assert body['media_io_kwargs']['video']['fps'] > 4.0
    size = body['mm_processor_kwargs']['size']
    assert size['longest_edge'] == 4 * 96 * 96
    assert body['temperature'] == request.sampling.temperature
    assert body['top_p'] == request.sampling.top_p
    assert body['top_k'] == request.sampling.top_k
    assert body['max_tokens'] == request.sampling.max_tokens
    assert body['stream'] is True and body['stream_options'] == {'include_usage': True}


def test_images_mode_sends_one_jpeg_per_frame_before_text():
    body = build_payload(make_request(make_clip(n=3)), OpenAICompatConfig(media='images'), 'm')
    user = body['messages'][1]['content']
    assert [p['type'] for p in user] == ['image_url'] * 3 + ['text']
    assert all(p['image_url']['url'].startswith('data:image/jpeg;base64,') for p in user[:3])
    assert 'media_io_kwargs' not in body
    assert body['mm_processor_kwargs']['size']['longest_edge'] == 96 * 96


def test_single_frame_clip_goes_as_image_and_text_after_media_is_enforced():
    clip = make_clip(n=1)
    request = dataclasses.replace(make_request(clip), messages=(
        {'role': 'user', 'content': [{'type': 'text', 'text': 'plan'}, {'type': 'video'}]},))
    body = build_payload(request, OpenAICompatConfig(mm_kwargs=False), 'm')
    assert [p['type'] for p in body['messages'][0]['content']] == ['image_url', 'text']
    assert 'mm_processor_kwargs' not in body


@pytest.mark.parametrize('mode,key', [('response_format', 'response_format'),
                                      ('none', None)])
def test_schema_modes(mode, key):
    request = make_request()
    body = build_payload(request, OpenAICompatConfig(schema_mode=mode), 'm')
    assert 'structured_outputs' not in body
    if key:
        assert body[key]['type'] == 'json_schema'
        assert body[key]['json_schema']['schema'] == request.response_schema
    else:
        assert 'response_format' not in body


def test_thinking_hint_only_for_requests_without_reasoning():
    direct = build_payload(make_request(reasoning=False), OpenAICompatConfig(), 'm')
    assert direct['chat_template_kwargs'] == {'enable_thinking': False}
    thinking = build_payload(make_request(reasoning=True), OpenAICompatConfig(), 'm')
    assert 'chat_template_kwargs' not in thinking
    off = build_payload(make_request(), OpenAICompatConfig(thinking_hint=False), 'm')
    assert 'chat_template_kwargs' not in off


def test_sampling_extras_off_for_strict_openai_servers():
    request = dataclasses.replace(make_request(), sampling=Sampling(
        top_k=20, repetition_penalty=1.1, seed=7))
    body = build_payload(request, OpenAICompatConfig(sampling_extras=False), 'm')
    assert 'top_k' not in body and 'repetition_penalty' not in body
    assert body['seed'] == 7


def test_placeholder_naming_an_absent_camera_is_a_config_error():
    request = dataclasses.replace(make_request(), messages=(
        {'role': 'user', 'content': [{'type': 'video', 'camera': 'nope'}]},))
    with pytest.raises(ConfigError, match='nope'):
        build_payload(request, OpenAICompatConfig(), 'm')
