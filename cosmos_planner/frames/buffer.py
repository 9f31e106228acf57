"""Bounded, time-keyed frame buffers: what the planner sees when it asks for a clip.

Camera callbacks push, one planning worker snapshots; nothing else happens on the callback
thread. Everything is keyed by header stamps (sim or bag time when those are in use), never
by arrival time, so replays and simulations buffer exactly like live cameras.

- ``FrameBuffer``: one camera. Keeps frames sampled at the model's fps (default 4, NVIDIA's
  sampling for Cosmos Reason 2), at most ``max_frames`` of them and none older than
  ``window_s`` before the newest. A stamp that goes backwards by more than
  ``jump_tolerance_s`` (clock jump, simulator reset, bag loop) clears the buffer before the
  new frame is added, so a clip never mixes two timelines.
- ``CameraBuffers``: several cameras plus their registered depth. A time jump on any camera
  clears all of them and is returned to the caller as a ``TimeJump`` to report. Frames of
  the old timeline still in flight on other cameras right after a jump are dropped as
  ``SKIPPED_STALE`` instead of triggering a second clear.

Thread safety: each buffer has a lock; a snapshot copies frame references under it. Frames
are immutable (ingest makes their arrays read-only), so a snapshot never changes afterwards.
"""

from collections import deque
from dataclasses import dataclass, field
import enum
import threading
from typing import Any, Deque, Dict, Iterable, List, Optional, Sequence, Tuple

from cosmos_planner.errors import ConfigError
from cosmos_planner.frames.types import Clip, DepthFrame, Frame

_NS = 1_000_000_000
#: A frame may come this fraction of a sampling period early and still be taken, so a
#: camera running at exactly the model fps is not halved by stamp jitter. Sampling is
#: anchored to a grid, so the long-run rate never exceeds ``fps``.
RATE_SLACK = 0.2


class PushResult(str, enum.Enum):
    """What a push did with a frame; counted per camera for diagnostics."""

    ADDED = 'added'
    SKIPPED_RATE = 'skipped_rate'                  # sooner than the model fps needs
    SKIPPED_DUPLICATE = 'skipped_duplicate'        # same stamp as the newest seen
    SKIPPED_OUT_OF_ORDER = 'skipped_out_of_order'  # older than newest, within tolerance
    SKIPPED_STALE = 'skipped_stale'                # old timeline, arriving after a jump
    CLEARED_TIME_JUMP = 'cleared_time_jump'        # time went back: cleared, then added

    @property
    def added(self) -> bool:
        return self in (PushResult.ADDED, PushResult.CLEARED_TIME_JUMP)


@dataclass(frozen=True)
class BufferStats:
    """Fill and counters of one buffer, for ``/diagnostics``."""

    size: int
    capacity: int
    oldest_stamp_ns: Optional[int]
    newest_stamp_ns: Optional[int]
    counts: Dict[str, int] = field(default_factory=dict)


def _check_positive(name: str, value: float, allow_zero: bool = False) -> None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = number and (value >= 0 if allow_zero else value > 0) and value != float('inf')
    if not ok:
        bound = '>= 0' if allow_zero else '> 0'
        raise ConfigError(f'{name} must be a number {bound}, got {value!r}')


class FrameBuffer:
    """Frames of one camera, bounded by count and time window, sampled at the model fps.

    ``fps=0`` keeps every frame. ``snapshot`` returns frames oldest first; their count is
    left as is even when odd (Qwen3-VL merges frames in pairs and pads an odd clip itself).
    """

    def __init__(self, max_frames: int = 8, window_s: float = 4.0, fps: float = 4.0,
                 jump_tolerance_s: float = 0.5) -> None:
        if not isinstance(max_frames, int) or isinstance(max_frames, bool) or max_frames < 1:
            raise ConfigError(f'max_frames must be an integer >= 1, got {max_frames!r}')
        _check_positive('window_s', window_s)
        _check_positive('fps', fps, allow_zero=True)
        _check_positive('jump_tolerance_s', jump_tolerance_s, allow_zero=True)
        self.max_frames = max_frames
        self.window_s = float(window_s)
        self.fps = float(fps)
        self.jump_tolerance_s = float(jump_tolerance_s)
        self._window_ns = int(round(window_s * _NS))
        self._tolerance_ns = int(round(jump_tolerance_s * _NS))
        self._period_ns = int(round(_NS / fps)) if fps > 0 else 0
        self._slack_ns = int(self._period_ns * RATE_SLACK)
        self._lock = threading.Lock()
        self._frames: Deque[Frame] = deque()
        self._last_seen_ns: Optional[int] = None
        self._next_due_ns: Optional[int] = None
        self._counts: Dict[str, int] = {}

    def push(self, frame: Frame) -> PushResult:
        """Offer a frame; returns whether it was added, skipped, or added after a clear."""
        with self._lock:
            return self._push_locked(frame)[0]

    def _push_locked(self, frame: Frame) -> Tuple[PushResult, Optional[int]]:
        """Push with the lock held; also returns the newest stamp seen before this frame."""
        stamp = frame.stamp_ns
        previous = self._last_seen_ns
        if previous is not None and stamp == previous:
            result = PushResult.SKIPPED_DUPLICATE
        elif previous is not None and stamp < previous:
            if previous - stamp > self._tolerance_ns:
                self._clear_locked()
                self._add_locked(frame)
                result = PushResult.CLEARED_TIME_JUMP
            else:
                result = PushResult.SKIPPED_OUT_OF_ORDER
        else:
            self._last_seen_ns = stamp
            if self._next_due_ns is not None and stamp < self._next_due_ns - self._slack_ns:
                result = PushResult.SKIPPED_RATE
            else:
                self._add_locked(frame)
                result = PushResult.ADDED
        self._counts[result.value] = self._counts.get(result.value, 0) + 1
        return result, previous

    def _add_locked(self, frame: Frame) -> None:
        stamp = frame.stamp_ns
        self._last_seen_ns = stamp
        due = self._next_due_ns
        if self._period_ns:
            # Stay on the sampling grid; re-anchor after a gap of a whole period or more.
            if due is None or stamp - due >= self._period_ns:
                self._next_due_ns = stamp + self._period_ns
            else:
                self._next_due_ns = due + self._period_ns
        self._frames.append(frame)
        while len(self._frames) > self.max_frames:
            self._frames.popleft()
        oldest_allowed = stamp - self._window_ns
        while self._frames[0].stamp_ns < oldest_allowed:
            self._frames.popleft()

    def _clear_locked(self) -> None:
        self._frames.clear()
        self._last_seen_ns = None
        self._next_due_ns = None

    def clear(self) -> None:
        """Forget every frame and the sampling phase (counters are kept)."""
        with self._lock:
            self._clear_locked()

    def snapshot(self, max_frames: Optional[int] = None) -> Optional[Clip]:
        """Return the newest ``max_frames`` frames (all when None) as a Clip; None if empty."""
        with self._lock:
            frames = tuple(self._frames)
        if max_frames is not None:
            if max_frames < 1:
                raise ConfigError(f'snapshot max_frames must be >= 1, got {max_frames!r}')
            frames = frames[-max_frames:]
        if not frames:
            return None
        return Clip(camera=frames[-1].camera, frames=frames)

    @property
    def newest_stamp_ns(self) -> Optional[int]:
        """Stamp of the newest frame seen (taken or rate-skipped) since the last clear."""
        with self._lock:
            return self._last_seen_ns

    def stats(self) -> BufferStats:
        with self._lock:
            frames = self._frames
            return BufferStats(
                size=len(frames), capacity=self.max_frames,
                oldest_stamp_ns=frames[0].stamp_ns if frames else None,
                newest_stamp_ns=frames[-1].stamp_ns if frames else None,
                counts=dict(self._counts))

    def __len__(self) -> int:
        with self._lock:
            return len(self._frames)


@dataclass(frozen=True)
class TimeJump:
    """Time went backwards on ``camera``: every buffer was cleared at ``stamp_ns``."""

    camera: str
    previous_ns: int
    stamp_ns: int

    @property
    def back_s(self) -> float:
        """How far time went back, in seconds."""
        return (self.previous_ns - self.stamp_ns) / _NS


@dataclass(frozen=True)
class PushOutcome:
    """Result of ``CameraBuffers.push``; ``jump`` is set when this push cleared everything."""

    result: PushResult
    jump: Optional[TimeJump] = None


class CameraBuffers:
    """Several cameras' frame buffers plus registered depth, cleared together on time jumps.

    Buffers are created on the first frame of a camera (or up front from ``cameras``).
    Depth frames are kept unsampled, newest ``depth_max_frames`` within ``depth_window_s``,
    keyed by the colour camera they are registered to (``DepthFrame.camera``), so the depth
    nearest to any buffered colour frame's stamp is still there when a plan is grounded.
    After a jump from stamp O, frames stamped in (max(new + tolerance, O - jump_guard_s),
    O + tolerance] are the old timeline still in flight and are dropped until the new
    timeline reaches O - jump_guard_s.
    """

    def __init__(self, cameras: Iterable[str] = (), *, max_frames: int = 8,
                 window_s: float = 4.0, fps: float = 4.0, jump_tolerance_s: float = 0.5,
                 depth_max_frames: int = 16, depth_window_s: float = 2.0,
                 jump_guard_s: float = 1.0) -> None:
        self._options: Dict[str, Any] = dict(max_frames=max_frames, window_s=window_s,
                                             fps=fps, jump_tolerance_s=jump_tolerance_s)
        FrameBuffer(**self._options)    # validates the options once, up front
        if not isinstance(depth_max_frames, int) or depth_max_frames < 1:
            raise ConfigError(f'depth_max_frames must be an integer >= 1, '
                              f'got {depth_max_frames!r}')
        _check_positive('depth_window_s', depth_window_s)
        _check_positive('jump_guard_s', jump_guard_s, allow_zero=True)
        self.window_s = float(window_s)
        self.depth_max_frames = depth_max_frames
        self._depth_window_ns = int(round(depth_window_s * _NS))
        self._tolerance_ns = int(round(jump_tolerance_s * _NS))
        self._guard_span_ns = int(round(jump_guard_s * _NS))
        self._lock = threading.Lock()
        self._buffers: Dict[str, FrameBuffer] = {}
        self._depth: Dict[str, Deque[DepthFrame]] = {}
        self._depth_seen: Dict[str, int] = {}
        self._newest_ns: Optional[int] = None
        self._stale: Optional[Tuple[int, int]] = None
        self._jumps: List[TimeJump] = []
        for camera in cameras:
            self._buffer_locked(camera)

    @property
    def cameras(self) -> Tuple[str, ...]:
        with self._lock:
            return tuple(self._buffers)

    def buffer(self, camera: str) -> Optional[FrameBuffer]:
        """Return the FrameBuffer of one camera, for stats; None for a camera never seen."""
        with self._lock:
            return self._buffers.get(camera)

    def push(self, frame: Frame) -> PushOutcome:
        """Offer a colour frame to its camera's buffer; a time jump clears every camera."""
        with self._lock:
            if self._is_stale_locked(frame.stamp_ns):
                return PushOutcome(PushResult.SKIPPED_STALE)
            buffer = self._buffer_locked(frame.camera)
            with buffer._lock:
                result, previous = buffer._push_locked(frame)
            jump = None
            if result is PushResult.CLEARED_TIME_JUMP:
                assert previous is not None  # a jump is measured from the last stamp seen
                jump = self._jump_locked(frame.camera, previous, frame.stamp_ns, keep=buffer)
            elif result is not PushResult.SKIPPED_OUT_OF_ORDER:
                self._see_locked(frame.stamp_ns)
            return PushOutcome(result, jump)

    def push_depth(self, depth: DepthFrame) -> PushOutcome:
        """Store a depth frame for ``depth.camera``; a time jump clears every camera."""
        with self._lock:
            stamp = depth.stamp_ns
            if self._is_stale_locked(stamp):
                return PushOutcome(PushResult.SKIPPED_STALE)
            previous = self._depth_seen.get(depth.camera)
            jump = None
            if previous is not None and stamp == previous:
                return PushOutcome(PushResult.SKIPPED_DUPLICATE)
            if previous is not None and stamp < previous:
                if previous - stamp <= self._tolerance_ns:
                    return PushOutcome(PushResult.SKIPPED_OUT_OF_ORDER)
                jump = self._jump_locked(depth.camera, previous, stamp, keep=None)
            else:
                self._see_locked(stamp)
            frames = self._depth.setdefault(depth.camera, deque())
            frames.append(depth)
            self._depth_seen[depth.camera] = stamp
            while len(frames) > self.depth_max_frames:
                frames.popleft()
            while frames[0].stamp_ns < stamp - self._depth_window_ns:
                frames.popleft()
            return PushOutcome(PushResult.CLEARED_TIME_JUMP if jump else PushResult.ADDED,
                               jump)

    def snapshot(self, primary: str, context: Sequence[str] = (),
                 max_frames: Optional[int] = None) -> Optional[Clip]:
        """Return a clip of ``primary`` with clips of the ``context`` cameras; None if empty.

        All cameras are read under one lock, so the clips belong to the same timeline. A
        context camera is left out when it has no frames or its newest frame is more than
        ``window_s`` away from the primary's newest (a dead camera must not pose as now).
        """
        with self._lock:
            buffer = self._buffers.get(primary)
            clip = buffer.snapshot(max_frames) if buffer is not None else None
            if clip is None:
                return None
            window_ns = int(round(self.window_s * _NS))
            extra = []
            for name in context:
                other = self._buffers.get(name)
                if name == primary or other is None:
                    continue
                other_clip = other.snapshot(max_frames)
                if (other_clip is not None and abs(other_clip.newest.stamp_ns
                                                   - clip.newest.stamp_ns) <= window_ns):
                    extra.append(other_clip)
        return Clip(camera=primary, frames=clip.frames, context=tuple(extra))

    def nearest_depth(self, camera: str, stamp_ns: int, tolerance_ns: int
                      ) -> Optional[DepthFrame]:
        """Return the depth frame of ``camera`` closest to ``stamp_ns`` within the tolerance."""
        with self._lock:
            frames = tuple(self._depth.get(camera, ()))
        best = None
        for depth in frames:
            gap = abs(depth.stamp_ns - stamp_ns)
            if gap <= tolerance_ns and (best is None or gap <= abs(best.stamp_ns - stamp_ns)):
                best = depth
        return best

    def clear(self, now_ns: Optional[int] = None) -> None:
        """Forget every frame and depth (the node calls this on a ROS clock jump).

        ``now_ns``: the new clock time after a jump back. Frames of the old timeline still in
        flight are then dropped as ``SKIPPED_STALE``, as after a jump seen in the stamps:
        those stamped in (max(now + tolerance, O - jump_guard_s), O + tolerance], O being
        the newest stamp seen before the clear, until the new timeline reaches the window.
        A second clear before any new frame keeps the first one's window (minus what the
        clock has passed). Without ``now_ns`` (or when nothing was seen, or the clock went
        forward) every stamp is taken as a fresh start.
        """
        with self._lock:
            old, previous = self._newest_ns, self._stale
            self._clear_locked(keep=None)
            self._newest_ns = None
            self._stale = None
            if now_ns is None:
                return
            if old is not None:
                low = max(int(now_ns) + self._tolerance_ns, old - self._guard_span_ns)
                high = old + self._tolerance_ns
            elif previous is not None:
                # Nothing seen since the last clear (two resets in a row): the earlier
                # timeline's frames may still be in flight, so its window stays.
                low, high = max(int(now_ns) + self._tolerance_ns, previous[0]), previous[1]
            else:
                return
            self._stale = (low, high) if low < high else None

    @property
    def jumps(self) -> Tuple[TimeJump, ...]:
        """Every time jump seen so far, oldest first (bounded to the last 100)."""
        with self._lock:
            return tuple(self._jumps)

    def stats(self) -> Dict[str, BufferStats]:
        """Per-camera buffer fill and push counters."""
        with self._lock:
            buffers = dict(self._buffers)
        return {name: buffer.stats() for name, buffer in buffers.items()}

    # -- internals (lock held) --

    def _buffer_locked(self, camera: str) -> FrameBuffer:
        if not isinstance(camera, str):
            raise ConfigError(f'camera name must be a string, got {camera!r}')
        buffer = self._buffers.get(camera)
        if buffer is None:
            buffer = self._buffers[camera] = FrameBuffer(**self._options)
        return buffer

    def _see_locked(self, stamp: int) -> None:
        if self._newest_ns is None or stamp > self._newest_ns:
            self._newest_ns = stamp
        if self._stale is not None and self._newest_ns >= self._stale[0]:
            self._stale = None      # the new timeline caught up: stamps are unambiguous

    def _is_stale_locked(self, stamp: int) -> bool:
        return self._stale is not None and self._stale[0] < stamp <= self._stale[1]

    def _jump_locked(self, camera: str, previous: int, stamp: int,
                     keep: Optional[FrameBuffer]) -> TimeJump:
        # The timeline's newest stamp may belong to another camera: report the larger.
        old = max(previous, self._newest_ns if self._newest_ns is not None else previous)
        self._clear_locked(keep=keep)
        self._newest_ns = stamp
        low = max(stamp + self._tolerance_ns, old - self._guard_span_ns)
        high = old + self._tolerance_ns
        self._stale = (low, high) if low < high else None
        jump = TimeJump(camera=camera, previous_ns=old, stamp_ns=stamp)
        self._jumps.append(jump)
        del self._jumps[:-100]
        return jump

    def _clear_locked(self, keep: Optional[FrameBuffer]) -> None:
        for buffer in self._buffers.values():
            if buffer is not keep:
                buffer.clear()
        self._depth.clear()
        self._depth_seen.clear()
