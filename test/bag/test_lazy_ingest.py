"""Lazy decoding in the replay buffers exactly what eager decoding (the node) buffers.

Property test over stamp sequences with jitter, duplicates, reordering and clock jumps:
after every message, the clip of the buffer fed through ``LazyIngest`` has the same frames
(stamps and pixels) as the buffer fed by the node's eager ingest, and never a stand-in.

Runtime: about 3 s.
"""

from types import SimpleNamespace
from typing import Any, List, Tuple

from hypothesis import given, settings, strategies as st
import numpy as np

from cosmos_planner.bag.lazy_ingest import is_stand_in, LazyIngest
from cosmos_planner.frames.buffer import CameraBuffers
from cosmos_planner.frames.ingest import FrameIngest

MS = 1_000_000


def _image(stamp_ns: int) -> Any:
    pixels = np.full((4, 6, 3), stamp_ns // MS % 251, np.uint8)
    stamp = SimpleNamespace(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)
    return SimpleNamespace(header=SimpleNamespace(stamp=stamp, frame_id='cam'), height=4,
                           width=6, encoding='rgb8', is_bigendian=0, step=18,
                           data=pixels.tobytes())


def _depth(stamp_ns: int) -> Any:
    msg = _image(stamp_ns)
    msg.encoding, msg.step = '32FC1', 24
    msg.data = np.full((4, 6), 0.8, '<f4').tobytes()
    return msg


def _buffers() -> CameraBuffers:
    return CameraBuffers(['cam'], max_frames=4, window_s=2.0, fps=2.0, depth_window_s=2.0)


steps = st.lists(st.tuples(st.sampled_from(['frame', 'frame', 'frame', 'depth']),
                           st.integers(min_value=-1500, max_value=400)),
                 min_size=1, max_size=80)


@settings(max_examples=150, deadline=None)
@given(steps)
def test_lazy_buffer_matches_eager_buffer(events: List[Tuple[str, int]]) -> None:
    ingest = FrameIngest(max_pixels=None)
    eager, real = _buffers(), _buffers()
    lazy = LazyIngest(ingest, _buffers(), real)
    stamp = 100_000 * MS
    for kind, delta_ms in events:
        # mostly forward (33 ms camera with jitter), sometimes back a little or a lot
        stamp = max(0, stamp + (delta_ms if delta_ms < 0 and delta_ms % 7 == 0
                                else abs(delta_ms) % 90) * MS)
        if kind == 'depth':
            eager.push_depth(ingest.depth(_depth(stamp), 'cam'))
            real.push_depth(lazy.depth(_depth(stamp), 'cam'))
            continue
        eager.push(ingest.image(_image(stamp), 'cam'))
        real.push(lazy.image(_image(stamp), 'cam'))
        want, got = eager.snapshot('cam'), real.snapshot('cam')
        assert (want is None) == (got is None)
        if want is not None:
            assert got.stamps_ns == want.stamps_ns
            assert not any(is_stand_in(f) for f in got.frames)
            for a, b in zip(want.frames, got.frames):
                assert np.array_equal(a.image, b.image)
            near_want = eager.nearest_depth('cam', want.newest.stamp_ns, 50 * MS)
            near_got = lazy.real_depth(real.nearest_depth('cam', got.newest.stamp_ns,
                                                          50 * MS))
            assert (near_want is None) == (near_got is None)
            if near_want is not None:
                assert near_got.stamp_ns == near_want.stamp_ns
                assert np.array_equal(near_got.depth_m, near_want.depth_m)
    assert lazy.decoded + lazy.skipped == sum(1 for k, _ in events if k == 'frame')


def test_a_30fps_camera_is_mostly_not_decoded() -> None:
    ingest = FrameIngest(max_pixels=None)
    real = _buffers()
    lazy = LazyIngest(ingest, _buffers(), real)
    for k in range(90):  # 3 s at 30 fps, buffer sampling at 2 fps
        real.push(lazy.image(_image(100_000 * MS + k * 33 * MS), 'cam'))
    assert lazy.decoded + lazy.skipped == 90 and lazy.decoded <= 7  # one per 0.5 s
    lazy.check('cam')
    assert len(real.snapshot('cam').frames) == 4
