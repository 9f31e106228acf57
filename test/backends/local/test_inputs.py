"""Tests of backends/local/inputs.py: the processor inputs for video and single-frame clips."""

import re

import numpy as np
import pytest

from cosmos_planner.model.prompts import build_request
from planner_helpers import LOCAL_TASK as TASK, local_clip as clip

torch = pytest.importorskip('torch')


def test_video_goes_with_its_real_fps(backend):
    from cosmos_planner.backends.local.inputs import prepare_inputs

    def rendered(spacing_ns):
        inputs = prepare_inputs(backend.processor,
                                build_request('trajectory', clip(8, spacing_ns), TASK))
        return inputs, backend.tokenizer.decode(inputs['input_ids'][0])

    inputs, text = rendered(500_000_000)  # 2 fps: temporal patches centred 0.25 s apart + 1 s
    assert re.findall(r'<([\d.]+) seconds>', text) == ['0.2', '1.2', '2.2', '3.2']
    assert int(inputs['video_grid_thw'][0][0]) == 4
    assert text.count('<|vision_start|>') == 4 == text.count('<|vision_end|>')
    assert '<|vision_start|><0.2 seconds>' not in text  # reference layout, no double wrap
    assert 'pixel_values_videos' in inputs and 'pixel_values' not in inputs
    _, text = rendered(250_000_000)  # 4 fps
    assert re.findall(r'<([\d.]+) seconds>', text) == ['0.1', '0.6', '1.1', '1.6']


def test_fast_layout_gives_exactly_the_plain_processor_inputs(backend):
    from cosmos_planner.backends.local.inputs import prepare_inputs, render_prompt
    req = build_request('plan', clip(6, size=(128, 96)), TASK)
    ours = prepare_inputs(backend.processor, req)
    frames = np.stack([frame.image for frame in req.clip.frames])
    plain = backend.processor(
        text=[render_prompt(backend.processor, req)], videos=[frames],
        video_metadata=[{'total_num_frames': 6, 'fps': 2.0, 'frames_indices': list(range(6))}],
        do_sample_frames=False, cap_pixels_per_frame=True, return_tensors='pt')
    assert sorted(ours.keys()) == sorted(plain.keys())
    for key in ours.keys():
        assert torch.equal(ours[key], plain[key]), key
    still = build_request('plan', clip(1, size=(128, 96)), TASK)
    ours = prepare_inputs(backend.processor, still)
    plain = backend.processor(text=[render_prompt(backend.processor, still)],
                              images=[still.clip.newest.image], return_tensors='pt')
    assert sorted(ours.keys()) == sorted(plain.keys())
    for key in ours.keys():
        assert torch.equal(ours[key], plain[key]), key


def test_single_frame_goes_as_an_image(backend):
    from cosmos_planner.backends.local.inputs import prepare_inputs
    inputs = prepare_inputs(backend.processor, build_request('plan', clip(1), TASK))
    assert 'pixel_values' in inputs and 'pixel_values_videos' not in inputs
    assert ' seconds>' not in backend.tokenizer.decode(inputs['input_ids'][0])
