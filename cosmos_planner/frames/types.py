"""Frames and clips: the data that flows from ingest to the backends.

Kept free of ROS types: a frame is pixels plus the header stamp and frame id it came with,
so the node, the bag replay and the simulator harness all feed the same core.
"""

from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One camera image after ingest.

    ``image`` is RGB uint8, HxWx3, already resized to the model's pixel budget (resizing
    happens once, at ingest). ``native_size`` is the (width, height) of the image as the
    camera sent it: model coordinates (0-1000) map onto it, whatever size the model saw.
    """

    camera: str
    stamp_ns: int
    image: np.ndarray
    native_size: Tuple[int, int]
    frame_id: str = ''
    encoding: str = 'rgb8'

    @property
    def stamp_s(self) -> float:
        """Header stamp in seconds (ROS time: sim or bag time when those are in use)."""
        return self.stamp_ns * 1e-9


@dataclass(frozen=True)
class DepthFrame:
    """A registered depth image at native resolution, float32 metres, NaN where unknown."""

    camera: str
    stamp_ns: int
    depth_m: np.ndarray
    frame_id: str = ''


@dataclass(frozen=True)
class Clip:
    """Frames of one camera, oldest first, as sent to the model.

    ``fps`` is the real sampling rate of the frames (from their stamps), so the model's
    ``<t seconds>`` timestamps are right; a single frame is sent as an image.
    """

    camera: str
    frames: Tuple[Frame, ...]
    context: Tuple['Clip', ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.frames:
            raise ValueError('a clip needs at least one frame')

    @property
    def newest(self) -> Frame:
        """Return the newest frame: its stamp is the plan's stamp, its size the plan's pixels."""
        return self.frames[-1]

    @property
    def stamps_ns(self) -> Tuple[int, ...]:
        return tuple(f.stamp_ns for f in self.frames)

    @property
    def fps(self) -> Optional[float]:
        """Real frame rate from the stamps; None for a single frame or equal stamps."""
        if len(self.frames) < 2:
            return None
        span = (self.frames[-1].stamp_ns - self.frames[0].stamp_ns) * 1e-9
        if span <= 0:
            return None
        return (len(self.frames) - 1) / span
