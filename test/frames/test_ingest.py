"""Ingest: every encoding against expectations computed here, bad input, message types.

Expectations are computed with plain numpy from the definition of each encoding (channel
order, byte order, BT.601 for YUV, image_transport's inverse-depth code), not by calling the
code under test a second way. Runtime: about 3 s on one core (plus the transformers import
of the processor-compatibility test when nothing else in the run has imported it).
"""

import array
import ast
from dataclasses import dataclass, field
import importlib.util
import math
from pathlib import Path
import struct
from typing import Any

import cv2
from hypothesis import given, HealthCheck, settings, strategies as st
import numpy as np
import pytest

from cosmos_planner.errors import ImageDecodeError
from cosmos_planner.frames.encodings import SUPPORTED_ENCODINGS
from cosmos_planner.frames.resize import DEFAULT_MAX_PIXELS, fit_size, resize_image
from cosmos_planner.frames.ingest import decode_compressed, decode_depth, decode_image
from cosmos_planner.frames.ingest import ERROR_KINDS, FrameIngest, raw_pixels

RNG = np.random.default_rng(1234)


@dataclass
class Stamp:
    sec: int = 0
    nanosec: int = 0


@dataclass
class Header:
    stamp: Stamp = field(default_factory=Stamp)
    frame_id: str = ''


@dataclass
class PlainImage:
    """A hand-made Image-like dataclass, as a simulator harness might build."""

    height: int
    width: int
    encoding: str
    step: int
    data: Any
    is_bigendian: int = 0
    header: Header = field(default_factory=Header)


@dataclass
class PlainCompressed:
    format: str
    data: Any
    header: Header = field(default_factory=Header)


def image_msg(pixels: np.ndarray, encoding: str, pad: int = 0, big_endian: bool = False,
              pad_byte: int = 0xAB) -> PlainImage:
    """Pack ``pixels`` (HxW or HxWxC) row by row with ``pad`` garbage bytes after each row."""
    height, width = pixels.shape[:2]
    dtype = pixels.dtype.newbyteorder('>' if big_endian else '<')
    rows = np.ascontiguousarray(pixels.astype(dtype)).reshape(height, -1).view(np.uint8)
    padded = np.full((height, rows.shape[1] + pad), pad_byte, np.uint8)
    padded[:, :rows.shape[1]] = rows
    return PlainImage(height, width, encoding, padded.shape[1], padded.tobytes(),
                      int(big_endian))


def smooth_rgb(height: int, width: int) -> np.ndarray:
    """Make a smooth colour image, on which resampling and JPEG behave as on camera images."""
    noise = (RNG.random((height // 8 + 2, width // 8 + 2, 3)) * 255).astype(np.uint8)
    return cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)


RGB = (RNG.random((32, 64, 3)) * 255).astype(np.uint8)      # fits the budget: no resize
ALPHA = (RNG.random((32, 64, 1)) * 255).astype(np.uint8)
GREY = (RNG.random((32, 64)) * 255).astype(np.uint8)
GREY16 = RNG.integers(0, 65536, (32, 64)).astype(np.uint16)
RGB16 = RNG.integers(0, 65536, (32, 64, 3)).astype(np.uint16)


def full_scale(values: np.ndarray) -> np.ndarray:
    return np.round(values.astype(np.float64) * 255.0 / 65535.0).astype(np.uint8)


def grey_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[:, :, None], 3, axis=2)


# encoding -> (stored pixels, expected RGB)
CASES = {
    'rgb8': (RGB, RGB),
    'bgr8': (RGB[:, :, ::-1], RGB),
    'rgba8': (np.concatenate([RGB, ALPHA], axis=2), RGB),
    'bgra8': (np.concatenate([RGB[:, :, ::-1], ALPHA], axis=2), RGB),
    '8UC3': (RGB[:, :, ::-1], RGB),
    '8UC4': (np.concatenate([RGB[:, :, ::-1], ALPHA], axis=2), RGB),
    'mono8': (GREY, grey_rgb(GREY)),
    '8UC1': (GREY, grey_rgb(GREY)),
    'mono16': (GREY16, grey_rgb(full_scale(GREY16))),
    '16UC1': (GREY16, grey_rgb(full_scale(GREY16))),
    'rgb16': (RGB16, full_scale(RGB16)),
    'bgr16': (RGB16[:, :, ::-1], full_scale(RGB16)),
    'rgba16': (np.concatenate([RGB16, GREY16[:, :, None]], axis=2), full_scale(RGB16)),
    'bgra16': (np.concatenate([RGB16[:, :, ::-1], GREY16[:, :, None]], axis=2),
               full_scale(RGB16)),
}


@pytest.mark.parametrize('encoding', sorted(CASES))
@pytest.mark.parametrize('pad', [0, 5, 64])
def test_encodings_match_expectation_with_and_without_row_padding(encoding, pad):
    stored, expected = CASES[encoding]
    frame = FrameIngest().image(image_msg(stored, encoding, pad=pad), 'cam', stamp_ns=7)
    assert frame.image.dtype == np.uint8 and frame.image.shape == (32, 64, 3)
    assert frame.native_size == (64, 32)
    np.testing.assert_array_equal(frame.image, expected)


@pytest.mark.parametrize('encoding', ['mono16', '16UC1', 'rgb16'])
def test_big_endian_16_bit(encoding):
    stored, expected = CASES[encoding]
    little = FrameIngest().image(image_msg(stored, encoding), 'cam', stamp_ns=0)
    big = FrameIngest().image(image_msg(stored, encoding, pad=3, big_endian=True), 'cam',
                              stamp_ns=0)
    np.testing.assert_array_equal(big.image, expected)
    np.testing.assert_array_equal(big.image, little.image)


def test_raw_pixels_are_native_values_in_native_byte_order():
    msg = image_msg(GREY16, 'mono16', pad=2, big_endian=True)
    pixels, spec = raw_pixels(msg)
    assert spec.name == 'mono16' and pixels.dtype == np.uint16 and pixels.dtype.isnative
    np.testing.assert_array_equal(pixels, GREY16)


def test_32fc1_image_is_stretched_over_its_finite_range():
    depth = RNG.uniform(0.5, 3.0, (32, 64)).astype(np.float32)
    depth[0, :5] = np.nan
    depth[1, :5] = np.inf
    frame = FrameIngest().image(image_msg(depth, '32FC1', pad=4), 'cam', stamp_ns=0)
    finite = np.isfinite(depth)
    low, high = depth[finite].min(), depth[finite].max()
    expected = np.zeros(depth.shape, np.uint8)
    expected[finite] = np.floor((depth[finite] - low) * 255.0 / (high - low) + 0.5)
    assert np.abs(frame.image[:, :, 0].astype(int) - expected).max() <= 1
    assert (frame.image[~finite] == 0).all()


@pytest.mark.parametrize('span', [1e39, 1e308])
def test_64fc1_image_beyond_float32_range_keeps_its_grey_levels(span):
    """64FC1 values beyond float32 (and a max - min beyond float64) scale like small ones."""
    fractions = np.tile(np.linspace(0.0, 1.0, 64), (32, 1))
    values = (fractions - 0.5) * span * 1.5       # from -0.75 to +0.75 span
    values[0, :3] = np.nan
    frame = FrameIngest().image(image_msg(values, '64FC1'), 'cam', stamp_ns=0)
    expected = np.floor(fractions * 255.0 + 0.5).astype(np.uint8)
    expected[0, :3] = 0
    grey = frame.image[:, :, 0].astype(int)
    assert np.abs(grey - expected).max() <= 1
    assert grey[5, 0] == 0 and grey[5, -1] == 255 and abs(grey[5, 32] - 130) <= 1


def test_mono16_minmax_scaling_stretches_small_ranges():
    values = np.tile(np.arange(1000, 1064, dtype=np.uint16), (32, 1))
    ingest = FrameIngest(mono16_scaling='minmax')
    frame = ingest.image(image_msg(values, '16UC1'), 'c', stamp_ns=0)
    assert frame.image[0, 0, 0] == 0 and frame.image[0, -1, 0] == 255
    full = FrameIngest().image(image_msg(values, '16UC1'), 'c', stamp_ns=0)
    assert full.image.max() <= 5     # 1063 / 257: nearly black at full scale


def mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """Sample ``rgb`` through a Bayer filter whose first two rows read ``pattern``."""
    out = np.zeros(rgb.shape[:2], rgb.dtype)
    for dy in range(2):
        for dx in range(2):
            channel = 'rgb'.index(pattern[dy * 2 + dx])
            out[dy::2, dx::2] = rgb[dy::2, dx::2, channel]
    return out


@pytest.mark.parametrize('pattern', ['rggb', 'bggr', 'gbrg', 'grbg'])
def test_bayer_patterns_demosaic_to_the_scene_colour(pattern):
    scene = np.zeros((32, 64, 3), np.uint8)
    scene[:, :] = (200, 60, 20)       # a flat colour: demosaic must recover it exactly
    frame = FrameIngest().image(image_msg(mosaic(scene, pattern), f'bayer_{pattern}8'), 'c',
                                stamp_ns=0)
    inner = frame.image[2:-2, 2:-2].astype(int)
    assert np.abs(inner - scene[2:-2, 2:-2]).max() <= 1


def test_bayer16_is_scaled_like_16_bit_colour():
    scene = np.zeros((32, 64, 3), np.uint16)
    scene[:, :] = (51400, 12850, 2570)     # 200, 50, 10 times 257
    frame = FrameIngest().image(image_msg(mosaic(scene, 'rggb'), 'bayer_rggb16'), 'c',
                                stamp_ns=0)
    assert np.abs(frame.image[2:-2, 2:-2].astype(int) - (200, 50, 10)).max() <= 1


def bt601(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    y, u, v = (np.asarray(a, np.float64) for a in (y, u, v))
    rgb = np.stack([1.164 * (y - 16) + 1.596 * (v - 128),
                    1.164 * (y - 16) - 0.813 * (v - 128) - 0.391 * (u - 128),
                    1.164 * (y - 16) + 2.018 * (u - 128)], axis=-1)
    return np.clip(np.round(rgb), 0, 255)


@pytest.mark.parametrize('encoding,order', [('yuv422', 'uyvy'), ('uyvy', 'uyvy'),
                                            ('yuv422_yuy2', 'yuyv'), ('yuyv', 'yuyv')])
def test_yuv422_matches_bt601(encoding, order):
    height, width = 32, 64
    y = RNG.integers(16, 236, (height, width))
    u = RNG.integers(16, 241, (height, width // 2))
    v = RNG.integers(16, 241, (height, width // 2))
    packed = np.zeros((height, width // 2, 4), np.uint8)
    fields = {'y0': y[:, 0::2], 'y1': y[:, 1::2], 'u': u, 'v': v}
    names = ['u', 'y0', 'v', 'y1'] if order == 'uyvy' else ['y0', 'u', 'y1', 'v']
    for index, name in enumerate(names):
        packed[:, :, index] = fields[name]
    msg = image_msg(packed.reshape(height, width, 2), encoding, pad=6)
    frame = FrameIngest().image(msg, 'c', stamp_ns=0)
    expected = bt601(y, np.repeat(u, 2, axis=1), np.repeat(v, 2, axis=1))
    assert np.abs(frame.image.astype(int) - expected).max() <= 1


def test_every_supported_encoding_has_a_test():
    tested = set(CASES) | {'32FC1', '64FC1', 'yuv422', 'uyvy', 'yuv422_yuy2', 'yuyv'}
    tested |= {f'bayer_{p}{b}' for p in ('rggb', 'bggr', 'gbrg', 'grbg') for b in (8, 16)}
    tested |= {'16UC3', '16UC4'}   # same table rows as bgr16/bgra16, checked just below
    assert set(SUPPORTED_ENCODINGS) == tested
    frame = FrameIngest().image(image_msg(RGB16[:, :, ::-1], '16UC3'), 'c', stamp_ns=0)
    np.testing.assert_array_equal(frame.image, full_scale(RGB16))


# --- depth --------------------------------------------------------------------------------

def test_depth_16uc1_millimetres_to_metres_and_zero_is_nan():
    mm = RNG.integers(0, 6000, (24, 40)).astype(np.uint16)
    mm[0, 0] = 0
    depth = FrameIngest().depth(image_msg(mm, '16UC1', pad=2), 'cam', stamp_ns=5)
    assert depth.depth_m.dtype == np.float32 and depth.depth_m.shape == (24, 40)
    valid = mm > 0
    np.testing.assert_allclose(depth.depth_m[valid], mm[valid] / 1000.0, rtol=1e-6)
    assert np.isnan(depth.depth_m[~valid]).all()
    assert not depth.depth_m.flags.writeable


@pytest.mark.parametrize('big_endian', [False, True])
def test_depth_32fc1_invalid_values_are_nan(big_endian):
    metres = RNG.uniform(0.2, 5.0, (24, 40)).astype(np.float32)
    bad = [0.0, np.inf, -np.inf, np.nan, -1.0]
    metres[0, :5] = bad
    depth = decode_depth(image_msg(metres, '32FC1', pad=1, big_endian=big_endian))
    np.testing.assert_array_equal(depth[1:], metres[1:])
    assert np.isnan(depth[0, :5]).all()


def test_depth_64fc1_and_custom_unit():
    metres = RNG.uniform(0.2, 5.0, (8, 8))
    np.testing.assert_allclose(decode_depth(image_msg(metres, '64FC1')), metres, rtol=1e-6)
    tenths = np.full((8, 8), 25, np.uint16)      # a camera that counts 0.1 mm units
    np.testing.assert_allclose(decode_depth(image_msg(tenths, '16UC1'), unit_m=1e-4), 0.0025)


def test_depth_rejects_colour_images():
    with pytest.raises(ImageDecodeError) as err:
        FrameIngest().depth(image_msg(RGB, 'rgb8'), 'cam', stamp_ns=0)
    assert err.value.kind == 'unsupported_format'


def png_bytes(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode('.png', image)
    assert ok
    return buf.tobytes()


def compressed_depth_32fc1(metres: np.ndarray, quantization: float = 100.0,
                           depth_max: float = 10.0) -> bytes:
    """Encode like image_transport's compressedDepth publisher (inverse depth, PNG)."""
    quant_a = np.float32(quantization * (quantization + 1.0))
    quant_b = np.float32(1.0 - quant_a / np.float32(depth_max))
    inverse = np.zeros(metres.shape, np.uint16)
    valid = metres < depth_max          # NaN compares false: stored as 0
    inverse[valid] = (quant_a / metres[valid] + quant_b).astype(np.uint16)
    return struct.pack('<iff', 0, quant_a, quant_b) + png_bytes(inverse)


def test_compressed_depth_32fc1_inverse_depth():
    metres = RNG.uniform(0.3, 9.0, (30, 50)).astype(np.float32)
    metres[0, :3] = [np.nan, 12.0, 10.0]      # unknown and beyond depth_max: stored as 0
    msg = PlainCompressed('32FC1; compressedDepth png', compressed_depth_32fc1(metres))
    depth = FrameIngest().depth(msg, 'cam', stamp_ns=1)
    quant_a = 100.0 * 101.0
    valid = np.isfinite(metres) & (metres < 10.0)
    # Inverse depth is truncated to an integer: the error is below one step, d^2 / A.
    error = np.abs(depth.depth_m[valid] - metres[valid])
    assert (error <= metres[valid] ** 2 / quant_a * 1.01 + 1e-6).all()
    assert np.isnan(depth.depth_m[~valid]).all()
    np.testing.assert_array_equal(decode_compressed(msg), depth.depth_m)


@pytest.mark.parametrize('fmt,header', [('16UC1; compressedDepth png', True),
                                        ('16UC1; compressedDepth', True),
                                        ('16UC1; compressedDepth png', False)])
def test_compressed_depth_16uc1(fmt, header):
    mm = RNG.integers(0, 9000, (30, 50)).astype(np.uint16)
    mm[5, 5] = 0
    data = (struct.pack('<iff', 0, 0.0, 0.0) if header else b'') + png_bytes(mm)
    depth = FrameIngest().depth(PlainCompressed(fmt, data), 'cam', stamp_ns=1).depth_m
    valid = mm > 0
    np.testing.assert_allclose(depth[valid], mm[valid] / 1000.0, rtol=1e-6)
    assert np.isnan(depth[5, 5])


def test_plain_16_bit_png_depth_is_millimetres():
    mm = np.full((4, 6), 1500, np.uint16)
    depth = decode_depth(PlainCompressed('16UC1; png compressed 16UC1', png_bytes(mm)))
    np.testing.assert_allclose(depth, 1.5)


@pytest.mark.parametrize('fmt,data,kind', [
    ('16UC1; compressedDepth rvl', b'\x00' * 40, 'unsupported_format'),
    ('16UC1; compressedDepth png', struct.pack('<iff', 0, 1, 1) + b'garbage' * 5,
     'corrupt_compressed'),
    ('32FC1; compressedDepth', struct.pack('<iff', 0, float('nan'), 1.0)
     + png_bytes(np.ones((4, 4), np.uint16)), 'corrupt_compressed'),
    ('32FC1; compressedDepth', struct.pack('<iff', 0, 1.0, 1.0)
     + png_bytes(np.ones((4, 4), np.uint8)), 'corrupt_compressed'),
    ('8UC3; compressedDepth', struct.pack('<iff', 0, 1.0, 1.0)
     + png_bytes(np.ones((4, 4), np.uint16)), 'unsupported_format'),
    ('jpeg', b'', 'corrupt_compressed'),
])
def test_bad_compressed_depth(fmt, data, kind):
    with pytest.raises(ImageDecodeError) as err:
        FrameIngest().depth(PlainCompressed(fmt, data), 'cam', stamp_ns=0)
    assert err.value.kind == kind


# --- compressed colour --------------------------------------------------------------------

def test_png_is_lossless_and_handles_alpha_grey_and_16_bit():
    ingest = FrameIngest()
    bgr = np.ascontiguousarray(RGB[:, :, ::-1])
    colour = ingest.compressed(PlainCompressed('png', png_bytes(bgr)), 'c', stamp_ns=0)
    np.testing.assert_array_equal(colour.image, RGB)
    bgra = np.concatenate([bgr, ALPHA], axis=2)
    alpha = ingest.image(PlainCompressed('bgra8; png compressed bgra8', png_bytes(bgra)), 'c',
                         stamp_ns=0)
    np.testing.assert_array_equal(alpha.image, RGB)
    grey = ingest.image(PlainCompressed('png', png_bytes(GREY)), 'c', stamp_ns=0)
    np.testing.assert_array_equal(grey.image, grey_rgb(GREY))
    deep = ingest.image(PlainCompressed('png', png_bytes(GREY16)), 'c', stamp_ns=0)
    np.testing.assert_array_equal(deep.image, grey_rgb(full_scale(GREY16)))


def test_jpeg_decodes_close_to_the_original_colours():
    scene = smooth_rgb(96, 128)
    ok, jpeg = cv2.imencode('.jpg', scene[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    frame = FrameIngest().compressed(
        PlainCompressed('rgb8; jpeg compressed bgr8', jpeg.tobytes()), 'c', stamp_ns=0)
    assert frame.native_size == (128, 96) and frame.image.shape == (96, 128, 3)
    # Lossy (chroma subsampled) but in the right channel order: swapped channels are far off.
    assert np.abs(frame.image.astype(float) - scene).mean() < 5.0
    assert np.abs(frame.image.astype(float) - scene[:, :, ::-1]).mean() > 20.0
    np.testing.assert_array_equal(decode_compressed(
        PlainCompressed('jpeg', jpeg.tobytes())), frame.image)


def test_grey_jpeg_gives_equal_channels():
    ok, jpeg = cv2.imencode('.jpg', cv2.resize(GREY, (640, 480)))
    frame = FrameIngest().image(PlainCompressed('jpeg', jpeg.tobytes()), 'c', stamp_ns=0)
    assert frame.native_size == (640, 480) and frame.image.shape == (384, 512, 3)
    assert (frame.image[:, :, 0] == frame.image[:, :, 2]).all()


@pytest.mark.parametrize('exact_area', [False, True])
def test_large_jpeg_is_resized_once_to_the_budget(exact_area):
    scene = smooth_rgb(720, 1280)
    ok, jpeg = cv2.imencode('.jpg', scene[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    frame = FrameIngest(exact_area=exact_area).compressed(
        PlainCompressed('jpeg', jpeg.tobytes()), 'c', stamp_ns=0)
    assert frame.native_size == (1280, 720) and frame.image.shape == (320, 576, 3)
    reference = cv2.resize(scene, (576, 320), interpolation=cv2.INTER_AREA)
    assert np.abs(frame.image.astype(float) - reference).mean() < 3.0


def test_jpeg_size_is_found_behind_large_metadata_segments():
    ok, jpeg = cv2.imencode('.jpg', np.full((64, 96, 3), 120, np.uint8))
    segment = b'\xff\xe2' + struct.pack('>H', 65535) + bytes(65533)   # e.g. an ICC profile
    data = jpeg.tobytes()[:2] + segment * 2 + jpeg.tobytes()[2:]
    frame = FrameIngest().compressed(PlainCompressed('jpeg', data), 'c', stamp_ns=0)
    assert frame.native_size == (96, 64)
    assert np.abs(frame.image.astype(int) - 120).max() <= 1


def test_payload_bytes_decide_the_codec_not_the_format_string():
    frame = FrameIngest().compressed(PlainCompressed('jpeg', png_bytes(RGB[:, :, ::-1])), 'c',
                                     stamp_ns=0)
    np.testing.assert_array_equal(frame.image, RGB)


def _jpeg() -> bytes:
    ok, jpeg = cv2.imencode('.jpg', smooth_rgb(64, 96))
    return jpeg.tobytes()


def _png_with_size(width: int, height: int) -> bytes:
    data = bytearray(png_bytes(GREY))
    data[16:24] = struct.pack('>II', width, height)
    return bytes(data)


def _flip(data: bytes, at: float) -> bytes:
    out = bytearray(data)
    index = int(len(out) * at)
    out[index:index + 16] = bytes(b ^ 0x5A for b in out[index:index + 16])
    return bytes(out)


@pytest.mark.parametrize('name,data,kind', [
    ('truncated jpeg', _jpeg()[:300], 'corrupt_compressed'),
    ('jpeg magic then junk', b'\xff\xd8\xff\xe0' + b'\x13' * 200, 'corrupt_compressed'),
    ('jpeg header only', _jpeg()[:200], 'corrupt_compressed'),
    ('truncated png', png_bytes(RGB)[:120], 'corrupt_compressed'),
    ('png with damaged data', _flip(png_bytes(RGB), 0.6), 'corrupt_compressed'),
    ('png bomb header', _png_with_size(100_000, 100_000), 'too_large'),
    ('empty png size', _png_with_size(0, 10), 'corrupt_compressed'),
    ('gif', b'GIF89a' + b'\x00' * 50, 'corrupt_compressed'),
    ('empty', b'', 'corrupt_compressed'),
])
def test_corrupt_compressed_payloads_raise_typed_errors(name, data, kind):
    with pytest.raises(ImageDecodeError) as err:
        FrameIngest().compressed(PlainCompressed('jpeg', data), 'c', stamp_ns=0)
    assert err.value.kind == kind, name
    assert err.value.kind in ERROR_KINDS


def test_compressed_depth_sent_to_colour_ingest_is_refused():
    with pytest.raises(ImageDecodeError) as err:
        FrameIngest().image(PlainCompressed('16UC1; compressedDepth', b'x'), 'c', stamp_ns=0)
    assert err.value.kind == 'unsupported_format'


# --- bad raw images -----------------------------------------------------------------------

def _bad(**changes: Any) -> PlainImage:
    msg = image_msg(RGB, 'rgb8')
    for key, value in changes.items():
        setattr(msg, key, value)
    return msg


@pytest.mark.parametrize('msg,kind', [
    (_bad(encoding='rgb9'), 'unknown_encoding'),
    (_bad(encoding=''), 'unknown_encoding'),
    (_bad(encoding=None), 'bad_message'),
    (_bad(width=0), 'bad_size'),
    (_bad(height=0, data=b''), 'bad_size'),
    (_bad(height=-2), 'bad_size'),
    (_bad(width='64'), 'bad_size'),
    (_bad(step=64 * 3 - 1), 'bad_size'),
    (_bad(data=RGB.tobytes()[:-1]), 'bad_size'),
    (_bad(data=RGB.tobytes() + b'\x00' * 3), 'bad_size'),
    (_bad(data=b''), 'bad_size'),
    (_bad(data='not bytes'), 'bad_data'),
    (_bad(data=[300] * RGB.size), 'bad_data'),
    (_bad(data=np.zeros(RGB.size, np.float32)), 'bad_data'),
    (_bad(data=None), 'bad_data'),
    (PlainImage(1, 300, 'mono8', 300, bytes(300)), 'bad_size'),        # aspect above 200
    (PlainImage(2, 3, 'yuv422', 6, bytes(12)), 'bad_size'),            # odd YUV width
    (PlainImage(100_000, 1000, 'mono8', 1000, bytes(10)), 'bad_size'),
])
def test_bad_images_raise_typed_errors(msg, kind):
    with pytest.raises(ImageDecodeError) as err:
        FrameIngest().image(msg, 'cam', stamp_ns=0)
    assert err.value.kind == kind
    assert err.value.kind in ERROR_KINDS


def test_missing_fields_and_header():
    with pytest.raises(ImageDecodeError) as err:
        FrameIngest().image({'height': 1, 'width': 1, 'encoding': 'mono8'}, 'c', stamp_ns=0)
    assert err.value.kind == 'bad_message'
    with pytest.raises(ImageDecodeError) as err:
        FrameIngest().image({'height': 1, 'width': 1, 'encoding': 'mono8', 'data': b'x'}, 'c')
    assert err.value.kind == 'bad_message'      # no header and no explicit stamp


def test_native_pixel_limit():
    msg = PlainImage(64, 64, 'mono8', 64, bytes(64 * 64))
    with pytest.raises(ImageDecodeError) as err:
        FrameIngest(max_native_pixels=1000).image(msg, 'c', stamp_ns=0)
    assert err.value.kind == 'too_large'


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(height=st.integers(-2, 40), width=st.integers(-2, 40), step=st.integers(-4, 200),
       encoding=st.sampled_from(list(SUPPORTED_ENCODINGS) + ['rgb9', '']),
       big=st.booleans(), data=st.binary(max_size=2000))
def test_fuzzed_raw_images_never_crash(height, width, step, encoding, big, data):
    msg = PlainImage(height, width, encoding, step, data, int(big))
    try:
        frame = FrameIngest().image(msg, 'cam', stamp_ns=0)
    except ImageDecodeError as err:
        assert err.kind in ERROR_KINDS
    else:
        assert frame.image.dtype == np.uint8 and frame.image.ndim == 3


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(0, 4000), flip_at=st.floats(0, 1), codec=st.sampled_from(['.jpg',
                                                                                '.png']))
def test_fuzzed_compressed_payloads_never_crash(cut, flip_at, codec):
    ok, buf = cv2.imencode(codec, smooth_rgb(48, 64))
    data = _flip(buf.tobytes()[:cut] if cut else buf.tobytes(), flip_at)
    for fmt in ('jpeg', '16UC1; compressedDepth png', '32FC1; compressedDepth'):
        try:
            if 'Depth' in fmt:
                FrameIngest().depth(PlainCompressed(fmt, b'\x00' * 12 + data), 'c', stamp_ns=0)
            else:
                FrameIngest().compressed(PlainCompressed(fmt, data), 'c', stamp_ns=0)
        except ImageDecodeError as err:
            assert err.kind in ERROR_KINDS


# --- message types and data containers ----------------------------------------------------

@pytest.mark.parametrize('wrap', [bytes, bytearray, memoryview, lambda b: array.array('B', b),
                                  lambda b: np.frombuffer(b, np.uint8), list],
                         ids=['bytes', 'bytearray', 'memoryview', 'array', 'ndarray', 'list'])
def test_every_data_container_gives_the_same_frame(wrap):
    msg = image_msg(RGB[:, :, ::-1], 'bgr8', pad=4)
    msg.data = wrap(msg.data)
    np.testing.assert_array_equal(FrameIngest().image(msg, 'c', stamp_ns=0).image, RGB)


def test_frame_never_aliases_the_message_and_is_read_only():
    msg = image_msg(RGB, 'rgb8')
    msg.data = bytearray(msg.data)
    frame = FrameIngest().image(msg, 'c', stamp_ns=0)
    msg.data[:] = bytes(len(msg.data))           # the publisher reuses its buffer
    np.testing.assert_array_equal(frame.image, RGB)
    assert not frame.image.flags.writeable and frame.image.flags.c_contiguous
    with pytest.raises(ValueError):
        frame.image[0, 0, 0] = 1


def test_rclpy_messages_with_header_stamp_and_frame_id():
    from sensor_msgs.msg import CompressedImage, Image
    msg = Image(height=32, width=64, encoding='bgr8', step=64 * 3 + 8)
    padded = np.zeros((32, 64 * 3 + 8), np.uint8)
    padded[:, :64 * 3] = RGB[:, :, ::-1].reshape(32, -1)
    msg.data = padded.tobytes()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 12, 345
    msg.header.frame_id = 'camera_optical'
    frame = FrameIngest().image(msg, 'front')
    assert (frame.camera, frame.stamp_ns, frame.frame_id) == (
        'front', 12_000_000_345, 'camera_optical')
    np.testing.assert_array_equal(frame.image, RGB)
    np.testing.assert_array_equal(decode_image(msg), RGB)

    comp = CompressedImage(format='png')
    comp.data = png_bytes(np.ascontiguousarray(RGB[:, :, ::-1]))
    comp.header.stamp.sec = 3
    assert isinstance(comp.data, array.array)
    frame = FrameIngest().image(comp, 'front', frame_id='override')
    assert frame.stamp_ns == 3_000_000_000 and frame.frame_id == 'override'
    np.testing.assert_array_equal(frame.image, RGB)

    depth = Image(height=2, width=2, encoding='16UC1', step=4, is_bigendian=1)
    depth.data = np.array([[1000, 0], [2500, 65535]], '>u2').tobytes()
    metres = FrameIngest().depth(depth, 'front').depth_m
    np.testing.assert_allclose(metres, [[1.0, np.nan], [2.5, 65.535]], rtol=1e-6)


def test_rosbags_messages_from_cdr():
    from rclpy.serialization import serialize_message
    from rosbags.typesys import get_typestore, Stores
    from sensor_msgs.msg import CompressedImage, Image
    typestore = get_typestore(Stores.ROS2_KILTED)
    msg = Image(height=32, width=64, encoding='rgb8', step=64 * 3)
    msg.data = RGB.tobytes()
    msg.header.stamp.sec = 4
    bag_msg = typestore.deserialize_cdr(bytes(serialize_message(msg)), 'sensor_msgs/msg/Image')
    assert isinstance(bag_msg.data, np.ndarray)
    frame = FrameIngest().image(bag_msg, 'cam')
    assert frame.stamp_ns == 4_000_000_000
    np.testing.assert_array_equal(frame.image, RGB)
    comp = CompressedImage(format='png')
    comp.data = png_bytes(GREY)
    bag_comp = typestore.deserialize_cdr(bytes(serialize_message(comp)),
                                         'sensor_msgs/msg/CompressedImage')
    np.testing.assert_array_equal(FrameIngest().image(bag_comp, 'cam').image, grey_rgb(GREY))


# --- the pixel budget ---------------------------------------------------------------------

@settings(max_examples=400, deadline=None)
@given(width=st.integers(1, 8000), height=st.integers(1, 8000),
       max_pixels=st.integers(32 * 32, 3_000_000))
def test_fit_size_budget_units_fixed_point_and_aspect(width, height, max_pixels):
    if max(width, height) / min(width, height) > 200:
        with pytest.raises(ImageDecodeError):
            fit_size(width, height, max_pixels)
        return
    out_w, out_h = fit_size(width, height, max_pixels)
    assert out_w % 32 == 0 and out_h % 32 == 0 and out_w >= 32 and out_h >= 32
    assert out_w * out_h <= max_pixels and max(out_w, out_h) / min(out_w, out_h) <= 200
    assert fit_size(out_w, out_h, max_pixels) == (out_w, out_h)
    if min(out_w, out_h) >= 256 and min(width, height) >= 256:
        # Rounding each side to 32 moves the aspect ratio by at most one unit per side.
        ratio = (out_w / out_h) / (width / height)
        assert abs(np.log(ratio)) <= np.log((1 + 32 / min(out_w, out_h)) ** 2)


@pytest.mark.parametrize('size,expected', [((1280, 720), (576, 320)),
                                           ((640, 480), (512, 384)),
                                           ((1920, 1080), (576, 320)),
                                           ((64, 32), (64, 32)), ((20, 10), (32, 32))])
def test_fit_size_examples(size, expected):
    assert fit_size(*size) == expected
    assert DEFAULT_MAX_PIXELS == 448 * 448


def _qwen_smart_resize():
    """Load transformers' own smart_resize source without importing torch (20 s here)."""
    spec = importlib.util.find_spec('transformers')
    if spec is None or spec.origin is None:
        pytest.skip('transformers is not installed')
    path = Path(spec.origin).parent / 'models' / 'qwen2_vl' / 'image_processing_qwen2_vl.py'
    tree = ast.parse(path.read_text())
    node = next(n for n in tree.body
                if isinstance(n, ast.FunctionDef) and n.name == 'smart_resize')
    namespace = {'math': math}
    exec(compile(ast.Module(body=[node], type_ignores=[]), str(path), 'exec'), namespace)
    return namespace['smart_resize']


def test_processor_leaves_ingested_frames_alone():
    """Qwen's own smart_resize, with factor 32, maps our sizes onto themselves."""
    resize_rule = _qwen_smart_resize()
    for width, height in [(1280, 720), (640, 480), (1920, 1080), (848, 480), (333, 777),
                          (4000, 30), (6417, 33), (100, 100)]:
        out_w, out_h = fit_size(width, height)
        assert resize_rule(out_h, out_w, factor=32, min_pixels=32 * 32,
                           max_pixels=DEFAULT_MAX_PIXELS) == (out_h, out_w)


def test_fast_shrink_stays_close_to_one_step_area():
    noise = (RNG.random((720, 1280, 3)) * 255).astype(np.uint8)
    scene = cv2.GaussianBlur(noise, (0, 0), 3)      # about as sharp as a camera image
    exact = cv2.resize(scene, (576, 320), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(resize_image(scene, (576, 320), exact_area=True), exact)
    fast = resize_image(scene, (576, 320)).astype(int)
    assert np.abs(fast - exact).max() <= 3 and np.abs(fast - exact).mean() < 0.5
    odd = smooth_rgb(719, 1279)        # no whole factor divides: one-step area is used
    np.testing.assert_array_equal(
        resize_image(odd, (576, 320)),
        cv2.resize(odd, (576, 320), interpolation=cv2.INTER_AREA))


def test_resize_reads_padded_rows_without_breaking_them():
    scene = smooth_rgb(720, 1280)
    frame = FrameIngest().image(image_msg(scene, 'rgb8', pad=96), 'c', stamp_ns=0)
    assert frame.image.shape == (320, 576, 3)
    np.testing.assert_array_equal(frame.image, resize_image(scene, (576, 320)))


def test_no_budget_keeps_native_size():
    msg = image_msg(np.zeros((30, 50, 3), np.uint8), 'rgb8')
    frame = FrameIngest(max_pixels=None).image(msg, 'c', stamp_ns=0)
    assert frame.image.shape == (30, 50, 3) and frame.native_size == (50, 30)


def test_bad_ingest_configuration_is_a_config_error():
    from cosmos_planner.errors import ConfigError
    for kwargs in ({'max_pixels': 100}, {'mono16_scaling': 'log'}, {'depth_unit_m': 0},
                   {'max_native_pixels': 0}):
        with pytest.raises(ConfigError):
            FrameIngest(**kwargs)
