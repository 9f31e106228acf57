"""Prompt presets: NVIDIA's texts verbatim, sampling per preset, chat-template rendering.

Rendering goes through the real Qwen3-VL chat template (the tiny checkpoint's) with the
system prompt, media first and the reasoning add-on, and context cameras as labelled media.
About 3 s (processor load).
"""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from cosmos_planner.errors import ConfigError
from cosmos_planner.frames.types import Clip, Frame
from cosmos_planner.model.prompts import build_request, list_presets, load_preset, normalize_task

TASK = 'Move the tape into the basket'
# Copied from cosmos_reason2.md (NVIDIA's published prompt and reasoning add-on).
NVIDIA_TRAJECTORY = (
    'You are given the task "Move the tape into the basket". Specify the 2D trajectory your '
    'end effector should follow in pixel space. Return the trajectory coordinates in JSON '
    'format like this: {"point_2d": [x, y], "label": "gripper trajectory"}.')
NVIDIA_REASONING = ('Answer the question using the following format:\n\n<think>\nYour '
                    'reasoning.\n</think>\n\nWrite your final answer immediately after the '
                    '</think> tag.')
SYSTEM = '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n'
GENERATION_PROMPT = '<|im_end|>\n<|im_start|>assistant\n'


def frame(i, camera='wrist', size=(96, 64)):
    image = np.full((size[1], size[0], 3), i * 20, dtype=np.uint8)
    return Frame(camera=camera, stamp_ns=1_000_000_000 + i * 500_000_000, image=image,
                 native_size=(1280, 720), frame_id=f'{camera}_optical')


def video_clip(n=4, camera='wrist', context=()):
    return Clip(camera, tuple(frame(i, camera) for i in range(n)), context=tuple(context))


@pytest.fixture(scope='module')
def processor(tiny_checkpoint):
    transformers = pytest.importorskip('transformers')
    return transformers.AutoProcessor.from_pretrained(str(tiny_checkpoint))


def render(processor, request):
    return processor.apply_chat_template(list(request.messages), tokenize=False,
                                         add_generation_prompt=True)


def test_presets_are_config_files():
    names = list_presets()
    assert {'trajectory', 'plan'} <= set(names)
    for name in names:
        preset = load_preset(name)
        assert preset.name == name and Path(preset.source).suffix == '.yaml'
        assert Path(preset.source).parent.name == 'prompts'


def test_trajectory_preset_is_nvidias_prompt_verbatim():
    preset = load_preset('trajectory')
    assert preset.user_text(TASK, reasoning=False) == NVIDIA_TRAJECTORY
    assert preset.user_text(TASK, reasoning=True) == NVIDIA_TRAJECTORY + '\n\n' + NVIDIA_REASONING
    assert preset.answer_format == 'points'
    assert preset.response_schema()['type'] == 'array'
    assert preset.response_schema()['minItems'] == 2


def test_plan_preset_asks_for_action_steps_and_the_same_points():
    preset = load_preset('plan')
    text = preset.user_text(TASK, reasoning=False)
    assert 'next immediate action' in text and '"point_2d": [x, y]' in text
    assert '"label": "gripper trajectory"' in text
    schema = preset.response_schema()
    assert schema['required'] == ['next_action', 'steps', 'trajectory']
    assert schema['properties']['trajectory'] == load_preset('trajectory').response_schema()


@pytest.mark.parametrize('name', ['trajectory', 'plan'])
def test_every_preset_has_nvidias_system_prompt_and_reasoning_add_on(name):
    preset = load_preset(name)
    assert preset.system_prompt == 'You are a helpful assistant.'
    assert preset.reasoning_suffix == NVIDIA_REASONING


def test_sampling_follows_nvidia_per_preset():
    trajectory, plan = load_preset('trajectory'), load_preset('plan')
    for reasoning in (False, True):
        s = trajectory.sampling(reasoning)
        assert (s.temperature, s.top_p, s.presence_penalty) == (0.3, 0.3, 0.0)
    s = plan.sampling(True)
    assert (s.temperature, s.top_p, s.top_k, s.presence_penalty) == (0.6, 0.95, 20, 0.0)
    s = plan.sampling(False)
    assert (s.temperature, s.top_p, s.top_k, s.presence_penalty) == (0.7, 0.8, 20, 1.5)
    assert plan.sampling(True).max_tokens == 4096


@pytest.mark.parametrize('name', ['trajectory', 'plan'])
@pytest.mark.parametrize('reasoning', [False, True])
@pytest.mark.parametrize('frames', [1, 4])
def test_rendered_through_the_checkpoint_chat_template(processor, name, reasoning, frames):
    request = build_request(name, video_clip(frames), TASK, reasoning)
    text = render(processor, request)
    media = ('<|vision_start|><|video_pad|><|vision_end|>' if frames > 1
             else '<|vision_start|><|image_pad|><|vision_end|>')
    prompt = load_preset(name).user_text(TASK, reasoning)
    assert text == SYSTEM + media + prompt + GENERATION_PROMPT
    assert text.endswith(NVIDIA_REASONING + GENERATION_PROMPT) == reasoning
    assert request.preset == name and request.reasoning is reasoning and request.task == TASK
    assert request.sampling == load_preset(name).sampling(reasoning)
    assert request.response_schema == load_preset(name).response_schema()


def test_context_cameras_are_labelled_media_items_after_the_primary(processor):
    scene = Clip('scene', (frame(0, 'scene'),))
    top = video_clip(2, 'top')
    request = build_request('trajectory', video_clip(4, context=(scene, top)), TASK)
    content = request.messages[1]['content']
    assert [(c['type'], c.get('camera')) for c in content[:3]] == [
        ('video', 'wrist'), ('image', 'scene'), ('video', 'top')]
    assert content[3]['type'] == 'text' and len(content) == 4
    legend = ('Video 1 is from the "wrist" camera; give all coordinates in it. '
              'Image 2 is from the "scene" camera, for context. '
              'Video 3 is from the "top" camera, for context.')
    assert content[3]['text'] == legend + '\n\n' + NVIDIA_TRAJECTORY
    text = render(processor, request)
    assert text.index('<|video_pad|>') < text.index('<|image_pad|>') < text.index('Video 1')


def test_clip_with_equal_stamps_goes_as_an_image():
    same = Clip('wrist', (frame(0), dataclasses.replace(frame(1), stamp_ns=frame(0).stamp_ns)))
    assert build_request('plan', same, TASK).messages[1]['content'][0]['type'] == 'image'


def test_task_is_normalised_and_validated():
    assert normalize_task('  pick the "red"\n cube ') == "pick the 'red' cube"
    request = build_request('trajectory', video_clip(1), 'put "it" there')
    assert '"put \'it\' there"' in request.messages[1]['content'][-1]['text']
    for bad in ['', '   ', 'x' * 501, None]:
        with pytest.raises(ConfigError, match='task'):
            build_request('trajectory', video_clip(1), bad)


def test_equal_requests_have_equal_fingerprints():
    a = build_request('plan', video_clip(4), TASK, True)
    b = build_request('plan', video_clip(4), TASK, True)
    c = build_request('plan', video_clip(4), TASK, False)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_unknown_and_broken_presets_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match='available: .*plan.*trajectory'):
        load_preset('nonexistent')
    good = Path(load_preset('trajectory').source).read_text()
    path = tmp_path / 'mine.yaml'
    path.write_text(good.replace('name: trajectory', 'name: mine'))
    assert load_preset(path).name == 'mine'
    cases = {
        'typo.yaml': good.replace('system_prompt:', 'sytem_prompt:'),
        'notask.yaml': good.replace('"{task}"', 'the task'),
        'format.yaml': good.replace('answer_format: points', 'answer_format: boxes'),
        'sampling.yaml': good.replace('top_p: 0.3', 'top_p: 1.5', 1),
        'bounds.yaml': good.replace('max_points: 16', 'max_points: 1'),
        'list.yaml': '- just\n- a list\n',
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ConfigError):
            load_preset(tmp_path / name)
    with pytest.raises(ConfigError, match='not found'):
        load_preset(tmp_path / 'missing.yaml')
