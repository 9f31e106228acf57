"""Shared helpers for the parser, planner, backend-wrapper and CLI tests.

Real components only: clips are real ``Clip`` objects built the way ``media`` builds them,
requests come from the real prompt presets, and recordings are written in the documented
JSONL format that ``RecordingBackend`` writes and ``ReplayBackend`` reads.
"""

import json
from pathlib import Path
from typing import Iterable, Tuple

import numpy as np

from cosmos_planner.model.protocol import GenerationRequest
from cosmos_planner.frames.types import Clip
from cosmos_planner.frames.media import frame_from_rgb
from cosmos_planner.model.prompts import build_request

TASK = 'Put the red cube in the basket'

#: Shaped like NVIDIA's published answer to the trajectory prompt (fenced bare list).
NVIDIA_STYLE_ANSWER = (
    '```json\n[\n'
    '  {"point_2d": [593, 292], "label": "gripper trajectory"},\n'
    '  {"point_2d": [540, 420], "label": "gripper trajectory"},\n'
    '  {"point_2d": [388, 610], "label": "gripper trajectory"},\n'
    '  {"point_2d": [700, 640], "label": "gripper trajectory"}\n'
    ']\n```')
NVIDIA_STYLE_POINTS = ((593.0, 292.0), (540.0, 420.0), (388.0, 610.0), (700.0, 640.0))

PLAN_ANSWER = json.dumps({
    'next_action': 'Move the gripper above the red cube',
    'steps': ['grasp the cube', 'carry it over the basket', 'release it'],
    'trajectory': [
        {'point_2d': [500, 200], 'label': 'gripper trajectory'},
        {'point_2d': [320, 620], 'label': 'gripper trajectory', 'gripper': 'close'},
        {'point_2d': [700, 600], 'label': 'gripper trajectory', 'gripper': 'open'},
    ]})


def scene_image(width: int = 320, height: int = 240, seed: int = 0) -> np.ndarray:
    """Return a deterministic RGB test image with some structure (not flat colour)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), np.uint8)
    img[..., 0] = np.linspace(40, 200, width, dtype=np.uint8)[None, :]
    img[..., 1] = np.linspace(60, 180, height, dtype=np.uint8)[:, None]
    x0, y0 = int(rng.integers(0, width // 2)), int(rng.integers(0, height // 2))
    img[y0:y0 + height // 4, x0:x0 + width // 4] = (220, 30, 30)
    return img


def synthetic_clip(width: int = 320, height: int = 240, frames: int = 1,
                   camera: str = 'camera', fps: float = 4.0) -> Clip:
    """Return a clip of ``frames`` distinct frames stamped at ``fps``."""
    period_ns = int(1e9 / fps)
    return Clip(camera=camera, frames=tuple(
        frame_from_rgb(scene_image(width, height, seed=i), camera, i * period_ns, camera)
        for i in range(frames)))


def request_for(clip: Clip, preset: str = 'plan', task: str = TASK,
                reasoning: bool = False) -> GenerationRequest:
    """Build the request the planner builds for this clip and task."""
    return build_request(preset, clip, task, reasoning)


def write_recording(path: Path, items: Iterable[Tuple[GenerationRequest, str]],
                    model: str = 'recorded-model') -> Path:
    """Write answers in the JSONL recording format, one line per (request, text)."""
    with open(path, 'a', encoding='utf-8') as f:
        for request, text in items:
            f.write(json.dumps({
                'v': 1, 'fingerprint': request.fingerprint(), 'preset': request.preset,
                'task': request.task, 'text': text, 'reasoning': None,
                'finish_reason': 'stop', 'model': model, 'backend': 'test',
                'prompt_tokens': 0, 'completion_tokens': 0, 'generate_ms': 1.0}) + '\n')
    return path
