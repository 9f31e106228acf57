"""Input fuzzing: camera messages that lie about themselves are refused with a counted reason.

Cameras, drivers and bags send inconsistent sizes, steps and encodings, zero sizes, corrupt
or lying compressed payloads (a PNG header that claims 100k x 100k pixels), all-NaN depth and
absurd intrinsics. Each property starts from a *valid* message and mutates it, so the
mutations reach the checks behind the first field. The contract checked:

- ``FrameIngest.image / .compressed / .depth`` return a well-formed frame or raise
  ``ImageDecodeError`` whose ``kind`` is one of ``ingest.ERROR_KINDS`` (the node's per-cause
  counters), nothing else (no ``cv2.error``, ``AssertionError``, ``MemoryError``);
- CameraInfo fields become a ``CameraModel`` or a ``ConfigError``; a model that was accepted
  never makes grounding or the pipeline raise (``GroundingError`` only, as a status);
- an end-effector position from a broken pose source never crashes the pipeline.

Messages are plain mappings with the ROS field names (ingest reads rclpy, rosbags and mapping
messages through the same accessors; the rclpy types are covered by test_ingest).
About 4,000 generated cases; runtime about 15-25 s on 2 busy cores.
Rerun: ``python -m pytest test/reliability/test_fuzz_inputs.py -q -s``.
"""

from collections import Counter
import json
import struct
from typing import Any, Callable, Dict, Tuple
import zlib

import cv2
from hypothesis import given, HealthCheck, settings, strategies as st
import numpy as np
import pytest

from cosmos_planner.backends.faults import Fault, FaultInjectingBackend
from cosmos_planner.geometry.camera_model import camera_model_from_fields, CameraModel
from cosmos_planner.frames.compressed import DEPTH_HEADER
from cosmos_planner.errors import ConfigError, GroundingError, ImageDecodeError
from cosmos_planner.frames.types import Clip, Frame
from cosmos_planner.geometry.grounding import Grounder
from cosmos_planner.frames.encodings import lookup_encoding, SUPPORTED_ENCODINGS
from cosmos_planner.frames.ingest import ERROR_KINDS, FrameIngest
from cosmos_planner.pipeline.plan_pipeline import PipelineInputs, PlanPipeline
from cosmos_planner.pipeline.config import PipelineConfig
from cosmos_planner.pipeline.planner import Planner
from cosmos_planner.model.results import PlanStatus

STAMP = 50 * 10**9
RAW_CASES = 1500
COMPRESSED_CASES = 1000
DEPTH_CASES = 700
CAMERA_INFO_CASES = 800
INGEST = FrameIngest(max_pixels=64 * 64, max_native_pixels=4096 * 4096)
VALID_ANSWER = json.dumps({'trajectory': [
    {'point_2d': [500, 500]}, {'point_2d': [510, 520], 'gripper': 'close'},
    {'point_2d': [560, 540], 'gripper': 'open'}]})


def fuzz(cases: int) -> settings:
    """Return settings for ``cases`` examples; the profile (conftest) decides if random."""
    return settings(max_examples=cases, deadline=None, suppress_health_check=list(HealthCheck))


def _header(sec: Any = 50, nanosec: Any = 0) -> Dict[str, Any]:
    return {'stamp': {'sec': sec, 'nanosec': nanosec}, 'frame_id': 'cam_optical'}


def _ingest(call: Callable[[], Any], stats: Counter) -> Any:
    """Run one ingest call; return its result, or None after counting a typed refusal."""
    try:
        result = call()
    except ImageDecodeError as exc:
        assert exc.kind in ERROR_KINDS, exc.kind
        assert str(exc)
        stats[f'refused:{exc.kind}'] += 1
        return None
    stats['accepted'] += 1
    return result


def _check_frame(frame: Frame, width: int, height: int) -> None:
    assert frame.native_size == (width, height)
    assert frame.image.dtype == np.uint8 and frame.image.ndim == 3
    assert frame.image.shape[2] == 3 and not frame.image.flags.writeable
    assert 0 < frame.image.shape[0] * frame.image.shape[1] <= 64 * 64   # the pixel budget


# --- raw sensor_msgs/Image ----------------------------------------------------------------

@st.composite
def raw_messages(draw: Callable) -> Tuple[str, Dict[str, Any]]:
    """Draw a valid Image message, then (usually) make one field lie."""
    encoding = draw(st.sampled_from(SUPPORTED_ENCODINGS))
    spec = lookup_encoding(encoding)
    width = draw(st.integers(1, 24)) * (2 if spec.channels == 2 else 1)
    height = draw(st.integers(1, 24))
    row = width * spec.bytes_per_pixel
    step = row + draw(st.sampled_from([0, 0, 1, 3, 8]))
    big = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    data = rng.integers(0, 256, step * height, dtype=np.uint8).tobytes()
    msg: Dict[str, Any] = {'header': _header(), 'height': height, 'width': width,
                           'encoding': encoding, 'is_bigendian': big, 'step': step,
                           'data': data}
    field = draw(st.sampled_from(['none', 'none', 'height', 'width', 'step', 'encoding',
                                  'data', 'is_bigendian', 'header', 'missing']))
    if field in ('height', 'width'):
        msg[field] = draw(st.sampled_from([0, -1, msg[field] + 1, msg[field] - 1, 2**31,
                                           2**63, 1.5, None, '12', True]))
    elif field == 'step':
        msg['step'] = draw(st.sampled_from([0, -1, row - 1, step + 1, step * 2, 2**40, 1.0,
                                            None]))
    elif field == 'encoding':
        msg['encoding'] = draw(st.sampled_from(['', 'RGB8', ' rgb8 ', 'rgb9', 'jpeg', '8UC2',
                                                '32FC3', 'bgr8\x00', 'ＲＧＢ８', None, 8]))
    elif field == 'data':
        mutate = draw(st.sampled_from(['short', 'long', 'empty', 'none', 'str', 'ints',
                                       'big_ints', 'float_array', 'strided', 'list']))
        msg['data'] = {
            'short': data[:-1], 'long': data + b'\x00', 'empty': b'', 'none': None,
            'str': data.decode('latin-1'), 'ints': list(data), 'big_ints': [256] * len(data),
            'float_array': np.frombuffer(data, np.uint8).astype(np.float32),
            'strided': memoryview(data + data)[::2], 'list': [[1, 2], [3]],
        }[mutate]
    elif field == 'is_bigendian':
        msg['is_bigendian'] = draw(st.sampled_from([2, 'yes', None, 1.0]))
    elif field == 'header':
        msg['header'] = draw(st.sampled_from([None, {}, {'stamp': None},
                                              _header('50', 0), _header(50, 1.5),
                                              _header(-5, -1), _header(2**62, 0)]))
    elif field == 'missing':
        del msg[draw(st.sampled_from(sorted(msg)))]
    return field, msg


def test_raw_images_are_decoded_or_refused_with_a_kind() -> None:
    stats: Counter = Counter()

    @fuzz(RAW_CASES)
    @given(case=raw_messages())
    def run(case: Tuple[str, Dict[str, Any]]) -> None:
        field, msg = case
        stats[f'mutated:{field}'] += 1
        frame = _ingest(lambda: INGEST.image(msg, 'front'), stats)
        if frame is not None:
            _check_frame(frame, msg['width'], msg['height'])
            assert isinstance(frame.stamp_ns, int)

    run()
    _print('raw Image fuzz', stats)
    assert stats['accepted'] > RAW_CASES // 5
    assert {'refused:bad_size', 'refused:bad_data', 'refused:unknown_encoding',
            'refused:bad_message'} <= set(stats)


# --- CompressedImage ----------------------------------------------------------------------

def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack('>I', len(body)) + kind + body + struct.pack(
        '>I', zlib.crc32(kind + body) & 0xFFFFFFFF)


def _lying_png(width: int, height: int) -> bytes:
    """Build a PNG whose header claims ``width`` x ``height`` over a tiny body (a bomb)."""
    ihdr = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b'\x00' * 64)
    return (b'\x89PNG\r\n\x1a\n' + _png_chunk(b'IHDR', ihdr) + _png_chunk(b'IDAT', idat)
            + _png_chunk(b'IEND', b''))


def _encoded(codec: str, width: int, height: int, grey: bool, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    shape = (height, width) if grey else (height, width, 3)
    if codec == 'png16':
        image = rng.integers(0, 65536, (height, width), dtype=np.uint16)
        ok, buf = cv2.imencode('.png', image)
    else:
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        ok, buf = cv2.imencode('.jpg' if codec == 'jpeg' else '.png', image)
    assert ok
    return buf.tobytes()


@st.composite
def compressed_messages(draw: Callable) -> Tuple[str, Dict[str, Any]]:
    codec = draw(st.sampled_from(['jpeg', 'png', 'png16']))
    width, height = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    data = _encoded(codec, width, height, draw(st.booleans()), draw(st.integers(0, 999)))
    fmt = draw(st.sampled_from(['jpeg', 'png', 'rgb8; jpeg compressed bgr8', '']))
    mutate = draw(st.sampled_from(['none', 'none', 'truncate', 'flip', 'zero_tail', 'bomb',
                                   'zero_size', 'empty', 'garbage', 'format', 'wrong_type',
                                   'prefix']))
    if mutate == 'truncate':
        data = data[:draw(st.integers(0, len(data) - 1))]
    elif mutate == 'flip':
        buf = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            pos = draw(st.integers(0, len(buf) - 1))
            buf[pos] ^= draw(st.integers(1, 255))
        data = bytes(buf)
    elif mutate == 'zero_tail':
        data = data[:len(data) // 2] + b'\x00' * (len(data) - len(data) // 2)
    elif mutate == 'bomb':
        data = _lying_png(draw(st.sampled_from([100_000, 2**31 - 1, 65_535])),
                          draw(st.sampled_from([100_000, 1, 65_535])))
    elif mutate == 'zero_size':
        data = _lying_png(0, draw(st.sampled_from([0, 10])))
    elif mutate == 'empty':
        data = b''
    elif mutate == 'garbage':
        data = bytes(draw(st.binary(min_size=0, max_size=64)))
    elif mutate == 'format':
        fmt = draw(st.sampled_from(['16UC1; compressedDepth png', 'bmp', None, 7, '\x00']))
    elif mutate == 'wrong_type':
        data = draw(st.sampled_from([None, 'jpeg', 3.5, [300, 2]]))
    elif mutate == 'prefix':
        data = b'\xff\xd8\xff' + data[3:] if codec != 'jpeg' else b'\x89PNG\r\n\x1a\n' + data
    return mutate, {'header': _header(), 'format': fmt, 'data': data}


def test_compressed_images_are_decoded_or_refused_with_a_kind() -> None:
    stats: Counter = Counter()

    @fuzz(COMPRESSED_CASES)
    @given(case=compressed_messages())
    def run(case: Tuple[str, Dict[str, Any]]) -> None:
        mutate, msg = case
        stats[f'mutated:{mutate}'] += 1
        frame = _ingest(lambda: INGEST.compressed(msg, 'front'), stats)
        if frame is not None:
            assert frame.image.dtype == np.uint8 and frame.image.shape[2] == 3
            assert min(frame.native_size) >= 1
        if mutate in ('bomb', 'zero_size', 'empty', 'wrong_type'):
            assert frame is None, f'{mutate} accepted'

    run()
    _print('CompressedImage fuzz', stats)
    assert stats['accepted'] > COMPRESSED_CASES // 5
    assert {'refused:corrupt_compressed', 'refused:too_large'} <= set(stats)


# --- depth ----------------------------------------------------------------------------------

def _compressed_depth(values: np.ndarray, encoding: str, quant: Tuple[float, float]) -> bytes:
    ok, png = cv2.imencode('.png', values.astype(np.uint16))
    assert ok
    return DEPTH_HEADER.pack(0, *quant) + png.tobytes()


@st.composite
def depth_messages(draw: Callable) -> Tuple[str, Any]:
    width, height = draw(st.integers(1, 32)), draw(st.integers(1, 32))
    fill = draw(st.sampled_from(['valid', 'nan', 'inf', 'negative', 'zero', 'huge',
                                 'mixed']))
    values = {'valid': 1.25, 'nan': np.nan, 'inf': np.inf, 'negative': -2.0, 'zero': 0.0,
              'huge': 1e38, 'mixed': 1.0}[fill]
    depth = np.full((height, width), values, dtype=np.float32)
    if fill == 'mixed':
        depth[::2] = np.nan
    form = draw(st.sampled_from(['32FC1', '64FC1', '16UC1', 'compressed16', 'compressed32',
                                 'rgb8', 'lying']))
    if form in ('32FC1', '64FC1'):
        arr = depth.astype(np.float32 if form == '32FC1' else np.float64)
        msg: Any = {'header': _header(), 'height': height, 'width': width, 'encoding': form,
                    'is_bigendian': False, 'step': arr.strides[0], 'data': arr.tobytes()}
    elif form == '16UC1':
        mm = np.nan_to_num(depth * 1000, nan=0, posinf=65535, neginf=0).clip(0, 65535)
        arr = mm.astype(np.uint16)
        msg = {'header': _header(), 'height': height, 'width': width, 'encoding': '16UC1',
               'is_bigendian': False, 'step': width * 2, 'data': arr.tobytes()}
    elif form in ('compressed16', 'compressed32'):
        quant = draw(st.sampled_from([(1.0, 0.0), (np.nan, 0.0), (0.0, 0.0), (1e30, -1e30)]))
        raw = np.arange(width * height).reshape(height, width) % 65536
        enc = '16UC1' if form == 'compressed16' else '32FC1'
        data = _compressed_depth(raw, enc, quant)
        if draw(st.booleans()):
            data = data[:draw(st.integers(0, len(data)))]
        msg = {'header': _header(), 'format': f'{enc}; compressedDepth png', 'data': data}
    elif form == 'rgb8':
        msg = {'header': _header(), 'height': height, 'width': width, 'encoding': 'rgb8',
               'is_bigendian': False, 'step': width * 3, 'data': b'\x01' * (width * height * 3)}
    else:
        msg = {'header': _header(), 'format': '32FC1; compressedDepth png',
               'data': DEPTH_HEADER.pack(0, 1.0, 0.0) + _lying_png(100_000, 100_000)}
    return f'{form}/{fill}', msg


def test_depth_is_decoded_or_refused_and_bad_depth_never_grounds() -> None:
    stats: Counter = Counter()
    config = PipelineConfig.from_flat({'ground.mode': 'depth', 'ground.depth_patch_px': 1})
    grounder = Grounder(config.grounding)

    @fuzz(DEPTH_CASES)
    @given(case=depth_messages())
    def run(case: Tuple[str, Any]) -> None:
        label, msg = case
        stats[f'form:{label.split("/")[0]}'] += 1
        depth = _ingest(lambda: INGEST.depth(msg, 'front'), stats)
        if depth is None:
            return
        d = depth.depth_m
        assert d.dtype == np.float32 and d.ndim == 2 and not d.flags.writeable
        finite = d[np.isfinite(d)]
        assert np.all(finite > 0), 'unknown depth must be NaN, never 0 or negative'
        h, w = d.shape
        camera = CameraModel(w, h, [w, 0, w / 2, 0, w, h / 2, 0, 0, 1], (), 'none',
                             'cam_optical')
        try:
            plan = grounder.ground([(w / 2, h / 2)], [(500.0, 500.0)], [None], ['p'], camera,
                                   depth, depth.stamp_ns)
        except GroundingError:
            stats['grounding_refused'] += 1
            return
        stats['grounded'] += 1
        assert np.all(np.isfinite(plan.positions))
        assert not np.all(np.isnan(d)), 'all-NaN depth grounded a point'

    run()
    _print('depth fuzz', stats)
    assert stats['accepted'] > 0 and stats['grounding_refused'] > 0 and stats['grounded'] > 0


# --- CameraInfo -----------------------------------------------------------------------------

ABSURD = [0.0, -1.0, 1e-300, 1e300, np.nan, np.inf, -np.inf, 5e-324, 1e9]
DISTORTION = ['plumb_bob', 'rational_polynomial', 'equidistant', 'none', '', 'PLUMB_BOB',
              'fisheye', 'kannala_brandt', 'plumb bob']


@st.composite
def camera_infos(draw: Callable) -> Tuple[str, Dict[str, Any]]:
    width, height = draw(st.sampled_from([(640, 480), (1280, 720), (1, 1), (33, 17)]))
    k = [500.0, 0.0, width / 2, 0.0, 500.0, height / 2, 0.0, 0.0, 1.0]
    d = [0.0] * 5
    info = {'width': width, 'height': height, 'k': k, 'd': d, 'distortion_model': 'plumb_bob'}
    field = draw(st.sampled_from(['none', 'size', 'k', 'k_len', 'd', 'd_len', 'model']))
    if field == 'size':
        info[draw(st.sampled_from(['width', 'height']))] = draw(
            st.sampled_from([0, 2**32 - 1, 1, 10**6]))
    elif field == 'k':
        for _ in range(draw(st.integers(1, 3))):
            k[draw(st.integers(0, 8))] = draw(st.sampled_from(ABSURD))
    elif field == 'k_len':
        info['k'] = k[:draw(st.sampled_from([0, 4, 8]))] + [1.0] * draw(st.integers(0, 3))
    elif field == 'd':
        d[draw(st.integers(0, 4))] = draw(st.sampled_from(ABSURD + [-0.9, 0.9, 50.0]))
    elif field == 'd_len':
        info['d'] = [0.01] * draw(st.sampled_from([0, 1, 3, 4, 6, 8, 12, 14, 20]))
    elif field == 'model':
        info['distortion_model'] = draw(st.sampled_from(DISTORTION))
        info['d'] = [draw(st.sampled_from([0.0, 0.1, -0.3]))] * draw(
            st.sampled_from([0, 4, 5, 8]))
    return field, info


def _pipeline() -> PlanPipeline:
    backend = FaultInjectingBackend(None, then=Fault('garbage', text=VALID_ANSWER))
    return PlanPipeline(Planner(backend, 'plan', max_attempts=1), PipelineConfig())


def test_camera_info_is_a_model_or_a_config_error_and_never_crashes_planning() -> None:
    stats: Counter = Counter()
    pipeline = _pipeline()

    @fuzz(CAMERA_INFO_CASES)
    @given(case=camera_infos(), native=st.sampled_from(['same', 'half', 'other_aspect']))
    def run(case: Tuple[str, Dict[str, Any]], native: str) -> None:
        field, info = case
        stats[f'mutated:{field}'] += 1
        try:
            camera = camera_model_from_fields(info['width'], info['height'], info['k'],
                                              info['d'], info['distortion_model'],
                                              'cam_optical')
        except ConfigError as exc:
            assert str(exc)
            stats['refused:config'] += 1
            return
        stats['accepted'] += 1
        w, h = camera.size
        size = {'same': (w, h), 'half': (max(1, w // 2), max(1, h // 2)),
                'other_aspect': (w * 2, h)}[native]
        frame = Frame('front', STAMP, np.zeros((4, 4, 3), np.uint8), size, 'cam_optical')
        out = pipeline.run(PipelineInputs(Clip('front', (frame,)), 'pick the cube', 't',
                                          camera, now_ns=STAMP))     # must not raise
        stats[f'status:{out.status.value}'] += 1
        if out.ok:
            assert np.all(np.isfinite(out.trajectory.positions))

    run()
    _print('CameraInfo fuzz', stats)
    assert stats['refused:config'] > 0 and stats['status:ok'] > 0
    assert stats['status:grounding_failed'] > 0


# --- a broken end-effector pose -------------------------------------------------------------

@pytest.mark.parametrize('ee', [(1e17, 0.0, 0.0), (-5e14, 3e14, 0.0), (1e300, 0.0, 0.0),
                                (float('nan'), 0.0, 0.0), (float('inf'), 0.0, 0.0),
                                (0.0, 0.0)])
def test_absurd_end_effector_position_is_a_status_not_a_crash(ee: tuple) -> None:
    """A pose source that publishes garbage (uninitialised, NaN, 1e17 m) must not kill planning.

    Far-away positions make the first segment take ~1e18 s, where adding the 0.05 s minimum
    segment no longer changes a float64: the times stop increasing. That must end as a
    refused plan, not as a ValueError escaping ``PlanPipeline.run``.
    """
    camera = CameraModel(640, 480, [500, 0, 320, 0, 500, 240, 0, 0, 1], (), 'none', 'cam')
    frame = Frame('front', STAMP, np.zeros((4, 4, 3), np.uint8), (640, 480), 'cam')
    out = _pipeline().run(PipelineInputs(Clip('front', (frame,)), 'pick the cube', 't', camera,
                                         now_ns=STAMP, ee_position=ee))
    assert out.status in (PlanStatus.REJECTED, PlanStatus.GROUNDING_FAILED), out.reason
    assert out.plan is None and out.reason


def _print(title: str, stats: Counter) -> None:
    print(f'\n{title}')
    for key in sorted(stats):
        print(f'  {key:40s} {stats[key]:6d}')
