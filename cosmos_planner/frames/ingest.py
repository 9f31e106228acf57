"""Camera messages to frames: one decode path for rclpy, rosbags and plain objects.

The node, the bag replay and the simulator all turn ``sensor_msgs/Image`` and
``CompressedImage`` data into ``Frame`` / ``DepthFrame`` here, with numpy and OpenCV only, so
a pip-only machine and a ROS workspace decode every message identically (``cv_bridge`` is not
installable here and the PyPI converters ignore ``step``, as checked here). Messages are
read by field name (``height, width, encoding, step, is_bigendian, data`` or ``format, data``,
plus ``header`` for stamps): rclpy messages, rosbags typestore messages, dataclasses and
mappings all work; ``data`` may be bytes, bytearray, memoryview, ``array.array`` (rclpy), a
uint8 ndarray (rosbags) or a list of ints. Missing ``is_bigendian`` means little-endian and
missing ``step`` means packed rows, for hand-made messages.

Every bad input raises ``ImageDecodeError`` whose ``kind`` (one of ``ERROR_KINDS``) feeds
per-cause counters; no assert and no ``cv2.error`` escapes. Frames are RGB uint8, resized once
to the model's pixel budget (see ``cosmos_planner.frames.resize``), read-only (the buffer hands
the same arrays to several readers) and never share memory with the message. Depth stays at
native resolution as float32 metres with NaN where unknown.

Deviation from the shared API plan, documented here: ``FrameIngest.image`` also accepts
compressed messages (``.compressed`` is the explicit spelling), ``stamp_ns`` and
``frame_id`` default to the message header, and ``decode_compressed`` returns float32 metres
for ``compressedDepth`` payloads (RGB uint8 otherwise).
"""

from collections.abc import Mapping
import math
import operator
from typing import Any, Optional, Tuple

import cv2
import numpy as np

from cosmos_planner.frames.compressed import PayloadInfo, read_payload_info
from cosmos_planner.frames.compressed import split_compressed_depth
from cosmos_planner.errors import ConfigError, ImageDecodeError
from cosmos_planner.frames.types import DepthFrame, Frame
from cosmos_planner.frames.encodings import EncodingSpec, lookup_encoding, PixelKind
from cosmos_planner.frames.encodings import SUPPORTED_ENCODINGS
from cosmos_planner.frames.resize import DEFAULT_MAX_PIXELS, fit_size, PIXEL_UNIT
from cosmos_planner.frames.resize import resize_image

#: Values of ``ImageDecodeError.kind`` raised here, for per-cause counters.
ERROR_KINDS = ('bad_message', 'bad_data', 'bad_size', 'too_large', 'unknown_encoding',
               'corrupt_compressed', 'unsupported_format')
#: Refuse images above this many native pixels (64 MP; 8K video is 33 MP): bounds memory
#: for corrupt headers and PNG/JPEG decompression bombs.
MAX_NATIVE_PIXELS = 64 * 1024 * 1024
#: How 16-bit grey becomes 8-bit for the model: 'full' maps 0..65535 to 0..255 (cv_bridge's
#: rule, right for real 16-bit cameras); 'minmax' stretches each frame's own range (right for
#: depth-like data shown to the model, at the price of brightness changing between frames).
MONO16_SCALINGS = ('full', 'minmax')
DEPTH_ENCODINGS = ('16UC1', 'mono16', '32FC1', '64FC1')

_TO_RGB = {
    PixelKind.BGR: cv2.COLOR_BGR2RGB, PixelKind.RGBA: cv2.COLOR_RGBA2RGB,
    PixelKind.BGRA: cv2.COLOR_BGRA2RGB, PixelKind.MONO: cv2.COLOR_GRAY2RGB,
    PixelKind.FLOAT: cv2.COLOR_GRAY2RGB,
}
# OpenCV names Bayer patterns after the second row; these are the classic names that map
# the ROS (first row) names in every OpenCV release.
_DEMOSAIC = {
    PixelKind.BAYER_RGGB: cv2.COLOR_BayerBG2RGB, PixelKind.BAYER_BGGR: cv2.COLOR_BayerRG2RGB,
    PixelKind.BAYER_GBRG: cv2.COLOR_BayerGR2RGB, PixelKind.BAYER_GRBG: cv2.COLOR_BayerGB2RGB,
    PixelKind.YUV_UYVY: cv2.COLOR_YUV2RGB_UYVY, PixelKind.YUV_YUYV: cv2.COLOR_YUV2RGB_YUYV,
}
_JPEG_REDUCED = {(2, False): cv2.IMREAD_REDUCED_COLOR_2, (4, False): cv2.IMREAD_REDUCED_COLOR_4,
                 (8, False): cv2.IMREAD_REDUCED_COLOR_8, (1, False): cv2.IMREAD_COLOR,
                 (2, True): cv2.IMREAD_REDUCED_GRAYSCALE_2,
                 (4, True): cv2.IMREAD_REDUCED_GRAYSCALE_4,
                 (8, True): cv2.IMREAD_REDUCED_GRAYSCALE_8, (1, True): cv2.IMREAD_GRAYSCALE}


# --- reading message fields -------------------------------------------------------------

def _field(msg: Any, name: str, default: Any = ...) -> Any:
    if isinstance(msg, Mapping):
        if name in msg:
            return msg[name]
    elif hasattr(msg, name):
        return getattr(msg, name)
    if default is not ...:
        return default
    raise ImageDecodeError(
        f'{type(msg).__name__} has no {name!r} field; expected a sensor_msgs/Image or '
        'CompressedImage-like message', kind='bad_message')


def _int_field(msg: Any, name: str, default: Any = ...) -> int:
    value = _field(msg, name, default)
    try:
        return operator.index(value)
    except TypeError:
        raise ImageDecodeError(f'image field {name!r} must be an integer, got {value!r}',
                               kind='bad_size') from None


def _str_field(msg: Any, name: str) -> str:
    value = _field(msg, name)
    if not isinstance(value, str):
        raise ImageDecodeError(f'image field {name!r} must be a string, got {value!r}',
                               kind='bad_message')
    return value


def is_compressed(msg: Any) -> bool:
    """Tell CompressedImage-like messages (a ``format`` field, no ``encoding``) apart."""
    if isinstance(msg, Mapping):
        return 'format' in msg and 'encoding' not in msg
    return hasattr(msg, 'format') and not hasattr(msg, 'encoding')


def header_stamp_ns(msg: Any) -> int:
    """Nanoseconds of ``msg.header.stamp`` (``sec`` + ``nanosec``, as rclpy and rosbags)."""
    stamp = _field(_field(msg, 'header'), 'stamp')
    try:
        return operator.index(_field(stamp, 'sec')) * 1_000_000_000 + operator.index(
            _field(stamp, 'nanosec'))
    except TypeError:
        raise ImageDecodeError(f'header stamp {stamp!r} is not integer sec/nanosec',
                               kind='bad_message') from None


def header_frame_id(msg: Any) -> str:
    """``msg.header.frame_id``, or '' for messages without a header."""
    header = _field(msg, 'header', None)
    frame_id = '' if header is None else _field(header, 'frame_id', '')
    return frame_id if isinstance(frame_id, str) else ''


def as_byte_array(data: Any) -> np.ndarray:
    """View ``data`` as a 1-D uint8 array, without copying whenever the buffer allows."""
    if isinstance(data, np.ndarray):
        if data.dtype not in (np.uint8, np.int8):
            raise ImageDecodeError(f'image data array must be uint8, not {data.dtype}',
                                   kind='bad_data')
        return data.reshape(-1).view(np.uint8)
    if isinstance(data, str):
        raise ImageDecodeError('image data is a str; expected bytes', kind='bad_data')
    try:
        view = memoryview(data)
    except TypeError:
        view = None
    if view is not None:
        if not view.c_contiguous:
            return np.frombuffer(view.tobytes(), dtype=np.uint8)
        if view.format not in ('B', 'b', 'c') or view.ndim != 1:
            view = view.cast('B')
        return np.frombuffer(view, dtype=np.uint8)
    try:
        values = np.asarray(data)
    except (TypeError, ValueError) as exc:
        raise ImageDecodeError(f'image data is not a byte sequence: {exc}',
                               kind='bad_data') from None
    if values.size == 0:
        return np.zeros(0, np.uint8)
    if values.dtype.kind not in 'iu' or values.min() < 0 or values.max() > 255:
        raise ImageDecodeError('image data must be bytes or integers in 0..255',
                               kind='bad_data')
    return values.reshape(-1).astype(np.uint8)


def raw_pixels(msg: Any) -> Tuple[np.ndarray, EncodingSpec]:
    """Return the message's pixels at native size and type, and its encoding.

    The array is HxW (one channel) or HxWxC in the message's channel order, native byte
    order, with row padding (``step``) skipped. It may share memory with ``msg.data``: copy
    it before the message can change. Raises ImageDecodeError for any inconsistency.
    """
    height = _int_field(msg, 'height')
    width = _int_field(msg, 'width')
    encoding = _str_field(msg, 'encoding')
    spec = lookup_encoding(encoding)
    if spec is None:
        raise ImageDecodeError(
            f'unknown image encoding {encoding!r}; supported: {", ".join(SUPPORTED_ENCODINGS)}',
            kind='unknown_encoding')
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f'image size {width}x{height} is empty', kind='bad_size')
    row_bytes = width * spec.bytes_per_pixel
    step = _int_field(msg, 'step', row_bytes)
    if step < row_bytes:
        raise ImageDecodeError(
            f'step {step} is shorter than a row of {width} {spec.name} pixels '
            f'({row_bytes} bytes)', kind='bad_size')
    if spec.kind in (PixelKind.YUV_UYVY, PixelKind.YUV_YUYV) and width % 2:
        raise ImageDecodeError(f'{spec.name} needs an even width, got {width}', kind='bad_size')
    big_endian = bool(_field(msg, 'is_bigendian', False))
    buf = as_byte_array(_field(msg, 'data'))
    if buf.size != step * height:
        raise ImageDecodeError(
            f'image data has {buf.size} bytes but step * height = {step} * {height} = '
            f'{step * height}', kind='bad_size')
    rows = buf.reshape(height, step)[:, :row_bytes]
    itemsize = spec.dtype.itemsize
    if itemsize > 1 and (step % itemsize or buf.ctypes.data % itemsize):
        rows = np.ascontiguousarray(rows)   # misaligned rows: one copy, then a clean view
    dtype = spec.dtype.newbyteorder('>' if big_endian else '<')
    pixels = rows.view(dtype)
    if not dtype.isnative:
        pixels = pixels.astype(spec.dtype)
    shape = (height, width) if spec.channels == 1 else (height, width, spec.channels)
    return pixels.reshape(shape), spec


# --- pixels to model RGB ----------------------------------------------------------------

def _to_uint8(pixels: np.ndarray, scaling: str) -> np.ndarray:
    """Scale to 0..255 without overflow; 64-bit input is scaled in float64.

    float32 is enough (and half the memory traffic) for 16-bit and 32FC1 input, but 64FC1
    values beyond the float32 range would turn into inf on the cast and give undefined grey
    levels. Scaling before shifting (and halving in the span) keeps every intermediate finite
    even when max - min exceeds the float range.
    """
    if pixels.dtype == np.uint16 and scaling == 'full':
        return cv2.convertScaleAbs(pixels, alpha=255.0 / 65535.0)
    values = pixels.astype(np.float64 if pixels.dtype.itemsize == 8 else np.float32)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(pixels.shape, np.uint8)
    low = float(values[finite].min())
    high = float(values[finite].max())
    scale = 127.5 / (0.5 * high - 0.5 * low) if high > low else 0.0
    values *= scale
    values -= low * scale
    values[~finite] = 0.0
    np.clip(values, 0.0, 255.0, out=values)
    values += 0.5
    return values.astype(np.uint8)


def pixels_to_rgb(pixels: np.ndarray, kind: PixelKind, size: Optional[Tuple[int, int]] = None,
                  mono16_scaling: str = 'full', exact_area: bool = False) -> np.ndarray:
    """Turn native pixels into RGB uint8 HxWx3 of ``size`` (width, height; None: native).

    Order of work is chosen for speed: demosaic/YUV need full resolution, everything else is
    resized first so that colour conversion and 16-bit scaling touch the small image only.
    The result never shares memory with ``pixels``.
    """
    try:
        fresh = False
        if kind in _DEMOSAIC:
            pixels, kind, fresh = cv2.cvtColor(pixels, _DEMOSAIC[kind]), PixelKind.RGB, True
        if size is not None and size != (pixels.shape[1], pixels.shape[0]):
            pixels, fresh = resize_image(pixels, size, exact_area), True
        if pixels.dtype != np.uint8:
            scaling = 'minmax' if kind is PixelKind.FLOAT else mono16_scaling
            pixels, fresh = _to_uint8(pixels, scaling), True
        code = _TO_RGB.get(kind)
        if code is not None:
            return cv2.cvtColor(pixels, code)
    except cv2.error as exc:
        raise ImageDecodeError(f'OpenCV could not convert the image: {_cv_message(exc)}',
                               kind='bad_data') from None
    return pixels if fresh else np.array(pixels, order='C', copy=True)


def _cv_message(exc: cv2.error) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__


# --- compressed payloads ----------------------------------------------------------------

def _imdecode(buf: np.ndarray, flags: int, what: str) -> np.ndarray:
    try:
        image = cv2.imdecode(buf, flags)
    except cv2.error as exc:
        raise ImageDecodeError(f'{what} could not be decoded: {_cv_message(exc)}',
                               kind='corrupt_compressed') from None
    if image is None or image.size == 0:
        raise ImageDecodeError(f'{what} payload is corrupt or truncated',
                               kind='corrupt_compressed')
    return image


def _check_native(width: int, height: int, limit: int) -> None:
    if width * height > limit:
        raise ImageDecodeError(
            f'image {width}x{height} exceeds the limit of {limit} pixels', kind='too_large')


def _decode_payload(buf: np.ndarray, info: PayloadInfo, size: Optional[Tuple[int, int]]
                    ) -> Tuple[np.ndarray, PixelKind]:
    """Decode a JPEG/PNG whose header is ``info``; JPEGs at a DCT scale >= ``size``."""
    if info.codec == 'jpeg':
        grey = info.channels == 1
        scale = 1
        if size is not None:
            for candidate in (8, 4, 2):
                if (math.ceil(info.width / candidate) >= size[0]
                        and math.ceil(info.height / candidate) >= size[1]):
                    scale = candidate
                    break
        flags = _JPEG_REDUCED[(scale, grey)] | cv2.IMREAD_IGNORE_ORIENTATION
        image = _imdecode(buf, flags, 'JPEG')
        expected = (math.ceil(info.height / scale), math.ceil(info.width / scale))
        kind = PixelKind.MONO if grey else PixelKind.BGR
    else:
        image = _imdecode(buf, cv2.IMREAD_UNCHANGED, 'PNG')
        expected = (info.height, info.width)
        channels = 1 if image.ndim == 2 else image.shape[2]
        if channels == 2:
            image = image[:, :, 0]
        kind = {3: PixelKind.BGR, 4: PixelKind.BGRA}.get(channels, PixelKind.MONO)
    if image.shape[:2] != expected:
        raise ImageDecodeError(
            f'{info.codec} decoded to {image.shape[1]}x{image.shape[0]}, header says '
            f'{expected[1]}x{expected[0]}', kind='corrupt_compressed')
    return image, kind


def _is_compressed_depth(fmt: str) -> bool:
    return 'compresseddepth' in fmt.lower()


def _depth_from_values(values: np.ndarray, unit_m: float) -> np.ndarray:
    """Depth values (uint16 in ``unit_m``, or float metres) to float32 metres, NaN unknown."""
    if values.dtype == np.uint16:
        depth = values.astype(np.float32)
        depth *= np.float32(unit_m)
        depth[values == 0] = np.nan
        return depth
    depth = values.astype(np.float32)       # always a copy
    depth[~((depth > 0) & (depth < np.inf))] = np.nan
    return depth


def _decode_compressed_depth(fmt: str, buf: np.ndarray, unit_m: float, limit: int
                             ) -> np.ndarray:
    payload = split_compressed_depth(fmt, buf)
    info = read_payload_info(payload.png)
    _check_native(info.width, info.height, limit)
    values = _imdecode(payload.png, cv2.IMREAD_UNCHANGED, 'compressedDepth PNG')
    if values.ndim != 2 or values.dtype != np.uint16:
        raise ImageDecodeError('compressedDepth PNG must be single-channel 16-bit',
                               kind='corrupt_compressed')
    encoding = payload.source_encoding.lower()
    if encoding in ('16uc1', 'mono16'):
        return _depth_from_values(values, unit_m)
    if encoding != '32fc1':
        raise ImageDecodeError(
            f'compressedDepth of {payload.source_encoding!r} is not supported '
            '(16UC1 or 32FC1)', kind='unsupported_format')
    quant_a, quant_b = payload.quant_a, payload.quant_b
    if (quant_a is None or quant_b is None
            or not (math.isfinite(quant_a) and math.isfinite(quant_b))):
        raise ImageDecodeError('32FC1 compressedDepth payload lacks valid quantisation '
                               'parameters', kind='corrupt_compressed')
    # image_transport's inverse-depth code: depth = A / (value - B), value 0 = no depth.
    depth = values.astype(np.float32)
    depth -= np.float32(quant_b)
    with np.errstate(divide='ignore', invalid='ignore'):
        np.divide(np.float32(quant_a), depth, out=depth)
    unknown = values == 0
    unknown |= ~((depth > 0) & (depth < np.inf))
    depth[unknown] = np.nan
    return depth


# --- public one-shot functions ----------------------------------------------------------

def decode_image(msg: Any, mono16_scaling: str = 'full') -> np.ndarray:
    """RGB uint8 HxWx3 at native size from an Image-like (or CompressedImage-like) message."""
    if is_compressed(msg):
        return decode_compressed(msg)
    pixels, spec = raw_pixels(msg)
    return pixels_to_rgb(pixels, spec.kind, None, mono16_scaling)


def decode_compressed(msg: Any) -> np.ndarray:
    """Decode a CompressedImage-like message at native size.

    JPEG/PNG give RGB uint8 HxWx3 (the payload bytes decide the codec, not ``format``);
    ``compressedDepth`` payloads give float32 metres HxW with NaN where unknown.
    """
    fmt = _str_field(msg, 'format')
    buf = as_byte_array(_field(msg, 'data'))
    if _is_compressed_depth(fmt):
        return _decode_compressed_depth(fmt, buf, 0.001, MAX_NATIVE_PIXELS)
    info = read_payload_info(buf)
    _check_native(info.width, info.height, MAX_NATIVE_PIXELS)
    pixels, kind = _decode_payload(buf, info, None)
    return pixels_to_rgb(pixels, kind)


def decode_depth(msg: Any, unit_m: float = 0.001) -> np.ndarray:
    """Float32 metres HxW, NaN where unknown, from a depth Image or compressed depth.

    16UC1/mono16 values are in ``unit_m`` metres (millimetres by default) with 0 unknown;
    32FC1/64FC1 are metres with 0, negative, NaN and inf unknown.
    """
    return FrameIngest(depth_unit_m=unit_m)._depth_array(msg)


# --- the ingest front door --------------------------------------------------------------

class FrameIngest:
    """Turns camera messages into model-ready ``Frame`` and ``DepthFrame`` objects.

    Holds only configuration, so one instance may serve every camera callback and thread.
    ``max_pixels`` is the per-frame budget (None keeps native size, leaving the resize to
    the model's processor); see ``cosmos_planner.frames.resize`` for the rule and default.
    ``exact_area=True`` shrinks raw images with one ``cv2.INTER_AREA`` call (10x slower at
    720p; large JPEGs still decode at a DCT scale first). Decisions never depend on pixels
    beyond validity, and the instance holds no state, so one may serve all threads.
    """

    def __init__(self, max_pixels: Optional[int] = DEFAULT_MAX_PIXELS, *,
                 min_pixels: int = PIXEL_UNIT * PIXEL_UNIT, mono16_scaling: str = 'full',
                 exact_area: bool = False, depth_unit_m: float = 0.001,
                 max_native_pixels: int = MAX_NATIVE_PIXELS) -> None:
        if max_pixels is not None:
            fit_size(PIXEL_UNIT, PIXEL_UNIT, max_pixels, min_pixels)   # validates the budget
        if mono16_scaling not in MONO16_SCALINGS:
            raise ConfigError(f'mono16_scaling must be one of {MONO16_SCALINGS}, '
                              f'got {mono16_scaling!r}')
        if not (depth_unit_m > 0 and math.isfinite(depth_unit_m)):
            raise ConfigError(f'depth_unit_m must be a positive number, got {depth_unit_m!r}')
        if max_native_pixels < 1:
            raise ConfigError(f'max_native_pixels must be positive, got {max_native_pixels}')
        self.max_pixels = max_pixels
        self.min_pixels = min_pixels
        self.mono16_scaling = mono16_scaling
        self.exact_area = exact_area
        self.depth_unit_m = depth_unit_m
        self.max_native_pixels = max_native_pixels

    def target_size(self, width: int, height: int) -> Optional[Tuple[int, int]]:
        """(width, height) a ``width`` x ``height`` image is resized to; None: kept."""
        if self.max_pixels is None:
            return None
        return fit_size(width, height, self.max_pixels, self.min_pixels)

    def image(self, msg: Any, camera: str, stamp_ns: Optional[int] = None,
              frame_id: Optional[str] = None) -> Frame:
        """Frame from an Image-like message (CompressedImage-like ones are passed on)."""
        if is_compressed(msg):
            return self.compressed(msg, camera, stamp_ns, frame_id)
        stamp_ns, frame_id = self._stamp(msg, stamp_ns, frame_id)
        pixels, spec = raw_pixels(msg)
        height, width = pixels.shape[:2]
        _check_native(width, height, self.max_native_pixels)
        rgb = pixels_to_rgb(pixels, spec.kind, self.target_size(width, height),
                            self.mono16_scaling, self.exact_area)
        return self._frame(camera, stamp_ns, rgb, (width, height), frame_id)

    def compressed(self, msg: Any, camera: str, stamp_ns: Optional[int] = None,
                   frame_id: Optional[str] = None) -> Frame:
        """Frame from a JPEG/PNG CompressedImage-like message."""
        stamp_ns, frame_id = self._stamp(msg, stamp_ns, frame_id)
        fmt = _str_field(msg, 'format')
        if _is_compressed_depth(fmt):
            raise ImageDecodeError(f'format {fmt!r} is depth; use FrameIngest.depth',
                                   kind='unsupported_format')
        buf = as_byte_array(_field(msg, 'data'))
        info = read_payload_info(buf)
        _check_native(info.width, info.height, self.max_native_pixels)
        size = self.target_size(info.width, info.height)
        pixels, kind = _decode_payload(buf, info, size)
        rgb = pixels_to_rgb(pixels, kind, size, self.mono16_scaling, self.exact_area)
        return self._frame(camera, stamp_ns, rgb, (info.width, info.height), frame_id)

    def depth(self, msg: Any, camera: str, stamp_ns: Optional[int] = None,
              frame_id: Optional[str] = None) -> DepthFrame:
        """Decode a depth Image or compressed depth to a DepthFrame (native size, metres)."""
        stamp_ns, frame_id = self._stamp(msg, stamp_ns, frame_id)
        depth = self._depth_array(msg)
        depth.setflags(write=False)
        return DepthFrame(camera=camera, stamp_ns=stamp_ns, depth_m=depth, frame_id=frame_id)

    def _depth_array(self, msg: Any) -> np.ndarray:
        if is_compressed(msg):
            fmt = _str_field(msg, 'format')
            buf = as_byte_array(_field(msg, 'data'))
            if not _is_compressed_depth(fmt):
                info = read_payload_info(buf)
                if not (info.codec == 'png' and info.channels == 1 and info.bit_depth == 16):
                    raise ImageDecodeError(
                        f'depth payload {fmt!r} is not compressedDepth or 16-bit grey PNG',
                        kind='unsupported_format')
                fmt = '16UC1; compressedDepth png'
            return _decode_compressed_depth(fmt, buf, self.depth_unit_m,
                                            self.max_native_pixels)
        pixels, spec = raw_pixels(msg)
        if not spec.is_depth_like:
            raise ImageDecodeError(
                f'depth images must be one of {", ".join(DEPTH_ENCODINGS)}, got {spec.name}',
                kind='unsupported_format')
        _check_native(pixels.shape[1], pixels.shape[0], self.max_native_pixels)
        return _depth_from_values(pixels, self.depth_unit_m)

    @staticmethod
    def _stamp(msg: Any, stamp_ns: Optional[int], frame_id: Optional[str]
               ) -> Tuple[int, str]:
        if stamp_ns is None:
            stamp_ns = header_stamp_ns(msg)
        if frame_id is None:
            frame_id = header_frame_id(msg)
        return int(stamp_ns), frame_id

    @staticmethod
    def _frame(camera: str, stamp_ns: int, rgb: np.ndarray, native_size: Tuple[int, int],
               frame_id: str) -> Frame:
        rgb.setflags(write=False)
        return Frame(camera=camera, stamp_ns=stamp_ns, image=rgb, native_size=native_size,
                     frame_id=frame_id, encoding='rgb8')
