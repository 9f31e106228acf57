"""The ``sensor_msgs/Image`` encodings ingest understands, as one table.

Why a table of our own: ROS's ``cv_bridge`` exists only on ROS machines and the PyPI ports get
16-bit mappings and row padding wrong (checked on our machines). One table, read by one
conversion path, behaves the same on pip-only and ROS machines.

Names follow ``sensor_msgs/image_encodings.hpp``; lookup ignores case and surrounding spaces.
OpenCV's typed names (``8UC3``, ``16UC1``, ...) carry no colour order: like ``cv_bridge`` and
OpenCV, three and four channel typed images are read as BGR and BGRA.
"""

from dataclasses import dataclass
import enum
from typing import Dict, List, Optional, Tuple

import numpy as np


class PixelKind(enum.Enum):
    """How the stored channels become RGB for the model."""

    RGB = 'rgb'
    BGR = 'bgr'
    RGBA = 'rgba'
    BGRA = 'bgra'
    MONO = 'mono'
    FLOAT = 'float'            # depth-like scalar images: scaled to the frame's finite range
    BAYER_RGGB = 'bayer_rggb'
    BAYER_BGGR = 'bayer_bggr'
    BAYER_GBRG = 'bayer_gbrg'
    BAYER_GRBG = 'bayer_grbg'
    YUV_UYVY = 'uyvy'          # ROS 'yuv422': U Y0 V Y1
    YUV_YUYV = 'yuyv'          # ROS 'yuv422_yuy2': Y0 U Y1 V


@dataclass(frozen=True)
class EncodingSpec:
    """Layout of one encoding: values per pixel, their numpy type and colour meaning."""

    name: str
    channels: int
    dtype: np.dtype
    kind: PixelKind

    @property
    def bytes_per_pixel(self) -> int:
        return self.channels * self.dtype.itemsize

    @property
    def is_depth_like(self) -> bool:
        """Grey 16-bit or float (not Bayer): the encodings a depth topic may carry."""
        return self.kind in (PixelKind.MONO, PixelKind.FLOAT) and self.dtype.itemsize > 1


_U8 = np.dtype(np.uint8)
_U16 = np.dtype(np.uint16)
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)


def _table() -> Dict[str, EncodingSpec]:
    rows: List[Tuple[str, int, np.dtype, PixelKind]] = [
        ('rgb8', 3, _U8, PixelKind.RGB), ('rgba8', 4, _U8, PixelKind.RGBA),
        ('bgr8', 3, _U8, PixelKind.BGR), ('bgra8', 4, _U8, PixelKind.BGRA),
        ('rgb16', 3, _U16, PixelKind.RGB), ('rgba16', 4, _U16, PixelKind.RGBA),
        ('bgr16', 3, _U16, PixelKind.BGR), ('bgra16', 4, _U16, PixelKind.BGRA),
        ('mono8', 1, _U8, PixelKind.MONO), ('mono16', 1, _U16, PixelKind.MONO),
        ('8UC1', 1, _U8, PixelKind.MONO), ('8UC3', 3, _U8, PixelKind.BGR),
        ('8UC4', 4, _U8, PixelKind.BGRA),
        ('16UC1', 1, _U16, PixelKind.MONO), ('16UC3', 3, _U16, PixelKind.BGR),
        ('16UC4', 4, _U16, PixelKind.BGRA),
        ('32FC1', 1, _F32, PixelKind.FLOAT), ('64FC1', 1, _F64, PixelKind.FLOAT),
        ('bayer_rggb8', 1, _U8, PixelKind.BAYER_RGGB),
        ('bayer_bggr8', 1, _U8, PixelKind.BAYER_BGGR),
        ('bayer_gbrg8', 1, _U8, PixelKind.BAYER_GBRG),
        ('bayer_grbg8', 1, _U8, PixelKind.BAYER_GRBG),
        ('bayer_rggb16', 1, _U16, PixelKind.BAYER_RGGB),
        ('bayer_bggr16', 1, _U16, PixelKind.BAYER_BGGR),
        ('bayer_gbrg16', 1, _U16, PixelKind.BAYER_GBRG),
        ('bayer_grbg16', 1, _U16, PixelKind.BAYER_GRBG),
        ('yuv422', 2, _U8, PixelKind.YUV_UYVY), ('uyvy', 2, _U8, PixelKind.YUV_UYVY),
        ('yuv422_yuy2', 2, _U8, PixelKind.YUV_YUYV), ('yuyv', 2, _U8, PixelKind.YUV_YUYV),
    ]
    return {name.lower(): EncodingSpec(name, ch, dt, kind) for name, ch, dt, kind in rows}


_ENCODINGS = _table()

#: Every encoding name ingest accepts, as spelled in ``image_encodings.hpp``.
SUPPORTED_ENCODINGS = tuple(spec.name for spec in _ENCODINGS.values())


def lookup_encoding(name: str) -> Optional[EncodingSpec]:
    """Return the layout of ``name``, or None when ingest does not know it."""
    return _ENCODINGS.get(name.strip().lower())
