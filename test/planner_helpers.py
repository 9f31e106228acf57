"""Shared helpers for the parser, planner, backend and CLI tests.

Real components only: clips are real ``Clip`` objects built the way ``media`` builds them,
requests come from the real prompt presets, and recordings are written in the documented
JSONL format that ``RecordingBackend`` writes and ``ReplayBackend`` reads.
"""

import json
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Tuple

import numpy as np

from cosmos_planner.backends.recording import RecordingBackend
from cosmos_planner.model.protocol import Completion, GenerationRequest
from cosmos_planner.frames.types import Clip, Frame
from cosmos_planner.frames.media import frame_from_rgb
from cosmos_planner.model.prompts import build_request

TASK = 'Put the red cube in the basket'
#: The camera resolution of ``make_clip``'s frames (the remote-backend tests parse to it).
NATIVE = (640, 480)
#: The local-backend tests' task and the camera resolution of ``local_clip``'s frames.
LOCAL_TASK = 'pick up the red cube'
LOCAL_NATIVE = (1280, 720)

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


def block_image(height: int, width: int, rows: Tuple[int, int], cols: Tuple[int, int],
                colour: Tuple[int, int, int]) -> np.ndarray:
    """Return a black RGB picture with one coloured block (``rows``/``cols``: start, stop)."""
    image = np.zeros((height, width, 3), np.uint8)
    image[rows[0]:rows[1], cols[0]:cols[1]] = colour
    return image


def one_frame_clip(image: Optional[np.ndarray] = None, stamp_ns: int = 10**9,
                   camera: str = 'cam', native_size: Tuple[int, int] = (640, 480),
                   frame_id: Optional[str] = None) -> Clip:
    """Return a clip of one frame: what single-image tests plan from.

    One helper instead of a copy per test file. ``image`` defaults to a black 32x32
    picture, ``frame_id`` to the camera name; ``native_size`` is the camera's resolution
    the model's 0-1000 coordinates map to.
    """
    image = np.zeros((32, 32, 3), np.uint8) if image is None else image
    return Clip(camera, (Frame(camera, stamp_ns, image, tuple(native_size),
                               camera if frame_id is None else frame_id),))


def make_clip(n: int = 4, size: int = 96, fps: float = 4.0, camera: str = 'cam') -> Clip:
    """Make a clip of moving-square frames stamped at ``fps``."""
    frames = []
    for i in range(n):
        image = np.zeros((size, size, 3), np.uint8)
        image[..., 0] = np.linspace(0, 255, size, dtype=np.uint8)[None, :]
        x = 8 + i * 6
        image[20:50, x:x + 30] = (255, 255, 255)
        frames.append(Frame(camera, int(round(i * 1e9 / fps)), image, NATIVE))
    return Clip(camera, tuple(frames))


def make_request(clip: Optional[Clip] = None, reasoning: bool = False) -> GenerationRequest:
    """Build the ``plan`` request the remote-backend tests send (default clip: ``make_clip``)."""
    return build_request('plan', clip or make_clip(), 'pick up the red cube', reasoning)


def local_clip(frames: int, spacing_ns: int = 500_000_000, size: Tuple[int, int] = (96, 64),
               camera: str = 'wrist') -> Clip:
    """Return a clip of ``frames`` random frames ``spacing_ns`` apart (local-backend tests)."""
    rng = np.random.default_rng(frames)
    return Clip(camera, tuple(
        Frame(camera=camera, stamp_ns=7_000_000_000 + i * spacing_ns,
              image=rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8),
              native_size=LOCAL_NATIVE) for i in range(frames)))


def request_for(clip: Clip, preset: str = 'plan', task: str = TASK,
                reasoning: bool = False) -> GenerationRequest:
    """Build the request the planner builds for this clip and task."""
    return build_request(preset, clip, task, reasoning)


class _Recorded:
    """A backend answering the text it is given, with fixed metadata (for recordings)."""

    name = 'test'

    def __init__(self, model: str) -> None:
        self.model = model
        self.text = ''

    def generate(self, request: GenerationRequest, *args: Any, **kwargs: Any) -> Completion:
        return Completion(text=self.text, model=self.model, backend=self.name,
                          generate_ms=1.0)

    def cancel(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to stop: the answer is returned at once."""

    def health(self) -> Dict[str, Any]:
        return {'ok': True}


def write_recording(path: Path, items: Iterable[Tuple[GenerationRequest, str]],
                    model: str = 'recorded-model') -> Path:
    """Append answers to a recording, one line per (request, text).

    Written by ``RecordingBackend`` itself, which owns the format, rather than by hand: the
    tests then replay exactly what a recorded run leaves behind.
    """
    inner = _Recorded(model)
    with RecordingBackend(inner, path) as recorder:
        for request, text in items:
            inner.text = text
            recorder.generate(request)
    return path
