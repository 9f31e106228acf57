"""Fit camera frames to the model's pixel budget, once, at ingest.

Qwen3-VL (Cosmos Reason 2) sees images in 32x32 pixel units (patch 16, spatial merge 2) and
its processor resizes every image with ``smart_resize``: sides rounded to multiples of 32,
pixel count kept within ``[min_pixels, max_pixels]``, aspect ratio kept as closely as
possible. ``fit_size`` is that same rule with factor 32, so a frame sized here passes through
the processor unchanged (its ``smart_resize`` of our output is the identity, as long as the
processor's ``longest_edge`` is at least our ``max_pixels`` and its ``shortest_edge`` at most
our output): the image is resampled exactly once, here, and the model's 0-1000 coordinates
map onto the native image through ``Frame.native_size``.

Default budget: 448 * 448 = 200,704 pixels a frame (about 196 visual tokens), which keeps a
clip of 8 frames near 800 tokens after the temporal merge of 2. A 1280x720 camera becomes
576x320, 640x480 becomes 512x384, 1920x1080 becomes 576x320.
"""

import math
from typing import Tuple

import cv2
import numpy as np

from cosmos_planner.errors import ConfigError, ImageDecodeError

#: Side of one visual token in pixels: patch size 16 times spatial merge 2.
PIXEL_UNIT = 32
#: Default pixel budget of one frame (documented in the module docstring).
DEFAULT_MAX_PIXELS = 448 * 448
#: Qwen's processors refuse images with a longer-to-shorter side ratio above this.
MAX_ASPECT_RATIO = 200.0


def fit_size(width: int, height: int, max_pixels: int = DEFAULT_MAX_PIXELS,
             min_pixels: int = PIXEL_UNIT * PIXEL_UNIT,
             unit: int = PIXEL_UNIT) -> Tuple[int, int]:
    """Return the (width, height) the model should see for a ``width`` x ``height`` image.

    Both sides are multiples of ``unit``, ``w * h <= max_pixels`` always holds, and the result
    is a fixed point (fitting it again returns it), which is what lets the processor leave
    our frames alone. Raises ImageDecodeError (``bad_size``) for empty or absurdly thin
    images, ConfigError for a budget smaller than one unit.
    """
    if unit < 1 or max_pixels < unit * unit or min_pixels > max_pixels:
        raise ConfigError(
            f'pixel budget must hold at least one {unit}x{unit} unit and min_pixels <= '
            f'max_pixels; got max_pixels={max_pixels}, min_pixels={min_pixels}')
    if width < 1 or height < 1:
        raise ImageDecodeError(f'image size {width}x{height} is empty', kind='bad_size')
    if max(width, height) / min(width, height) > MAX_ASPECT_RATIO:
        raise ImageDecodeError(
            f'image {width}x{height} is thinner than the model accepts '
            f'(aspect ratio above {MAX_ASPECT_RATIO:g})', kind='bad_size')
    h_bar = max(unit, round(height / unit) * unit)
    w_bar = max(unit, round(width / unit) * unit)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(width * height / max_pixels)
        h_bar = max(unit, math.floor(height / beta / unit) * unit)
        w_bar = max(unit, math.floor(width / beta / unit) * unit)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (width * height))
        h_bar = math.ceil(height * beta / unit) * unit
        w_bar = math.ceil(width * beta / unit) * unit
    # Very thin images: the one-unit floor on the short side can overshoot the budget, so
    # trim the long side (Qwen's own rule would overshoot here and the processor then differs).
    if h_bar * w_bar > max_pixels:
        if h_bar <= w_bar:
            w_bar = max(unit, (max_pixels // h_bar) // unit * unit)
        else:
            h_bar = max(unit, (max_pixels // w_bar) // unit * unit)
    # Rounding the short side down can push a thin image past the processor's ratio limit.
    longest = math.floor(min(w_bar, h_bar) * MAX_ASPECT_RATIO / unit) * unit
    return min(w_bar, longest), min(h_bar, longest)


def resize_image(image: np.ndarray, size: Tuple[int, int], exact_area: bool = False
                 ) -> np.ndarray:
    """Resample ``image`` (HxW or HxWxC, any row stride) to ``size`` = (width, height).

    Shrinking is area averaging (``cv2.INTER_AREA``). OpenCV's area filter is fast only for
    whole-number factors and several times slower otherwise (7 ms against 0.3 ms for
    1280x720 RGB), so by default the shrink is split: an exact box filter by the largest
    whole factor that divides the image, then bilinear for the remaining factor below 2
    (like a mip-map lookup). Against one-step INTER_AREA, 720p to 576x320 differs by at
    most 2 grey levels (0.3 on average) on a camera-like image; on a detailed synthetic
    texture by up to 12 at edges (1.3 on average), the bilinear step being the sharper.
    ``exact_area=True`` always uses one INTER_AREA call. Enlarging (tiny images rounded up
    to one unit) is bilinear. Always returns a new C-contiguous array.
    """
    height, width = image.shape[:2]
    target_w, target_h = size
    if (target_w, target_h) == (width, height):
        return np.array(image, order='C', copy=True)
    if target_w > width or target_h > height:
        return cv2.resize(image, (target_w, target_h), interpolation=cv2.INTER_LINEAR)
    if exact_area:
        return cv2.resize(image, (target_w, target_h), interpolation=cv2.INTER_AREA)
    factor = min(width // target_w, height // target_h)
    while factor >= 2 and (width % factor or height % factor):
        factor -= 1
    if factor < 2:
        shrink = max(width / target_w, height / target_h)
        # Below 2x bilinear is close to area; non-dividing larger factors need the true filter.
        interpolation = cv2.INTER_LINEAR if shrink < 2.0 else cv2.INTER_AREA
        return cv2.resize(image, (target_w, target_h), interpolation=interpolation)
    boxed = cv2.resize(image, (width // factor, height // factor),
                       interpolation=cv2.INTER_AREA)
    if boxed.shape[1] == target_w and boxed.shape[0] == target_h:
        return boxed
    return cv2.resize(boxed, (target_w, target_h), interpolation=cv2.INTER_LINEAR)
