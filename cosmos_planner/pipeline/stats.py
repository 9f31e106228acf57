"""Counters of the planner: camera rates, bad images, plan outcomes, latencies.

``PlanningStats`` is updated from the input callbacks and the planning worker, so every
update holds one lock and does O(1) work. It is plain Python because the offline bag replay
counts bad inputs with it too; the node's ``/diagnostics`` are built from it by
:mod:`cosmos_planner.ros.diagnostics` (on the diagnostics timer), including the watchdog: a
camera whose last frame arrived longer ago than the timeout (ROS clock) is ``STALE``.

Ingest delay (header stamp to "frame is in the buffer", in wall-clock time) is kept in a
bounded window per camera; it is meaningful when the cameras and the node share a clock
(live cameras on one machine), and it is what ``bench/bench_node.py`` reads, with the
callback's own time and the longest gap between the stamps of consecutive buffered frames
(frames lost or dropped because the node fell behind show up there).
"""

from collections import Counter, deque
from dataclasses import dataclass, field
import threading
from typing import Any, Deque, Dict, Iterable, List, Optional, Tuple

import numpy as np

DELAY_WINDOW = 512
RATE_WINDOW = 64


@dataclass
class CameraStats:
    """Counters of one camera."""

    frames: int = 0
    depth_frames: int = 0
    infos: int = 0
    bad: Counter = field(default_factory=Counter)
    arrivals_ns: Deque[int] = field(default_factory=lambda: deque(maxlen=RATE_WINDOW))
    delays_ms: Deque[float] = field(default_factory=lambda: deque(maxlen=DELAY_WINDOW))
    callback_ms: Deque[float] = field(default_factory=lambda: deque(maxlen=DELAY_WINDOW))
    gaps_ms: Deque[float] = field(default_factory=lambda: deque(maxlen=DELAY_WINDOW))
    last_stamp_ns: Optional[int] = None
    last_error: str = ''
    stale_reported: bool = False


class PlanningStats:
    """Thread-safe counters of the planner (the node's, or a bag replay's)."""

    def __init__(self, cameras: Iterable[str], node_name: str = 'cosmos_planner') -> None:
        """Counters start at zero for every camera in ``cameras``."""
        self._lock = threading.Lock()
        self.node_name = node_name
        self.cameras: Dict[str, CameraStats] = {c: CameraStats() for c in cameras}
        self.outcomes: Counter = Counter()
        self.stage_ms: Dict[str, Deque[float]] = {}
        self.clock_resets = 0
        self.last_status = ''
        self.last_reason = ''
        self.backend_health: Dict[str, Any] = {'ok': True, 'detail': 'not loaded'}
        self.state = 'unconfigured'

    # -- updates (hot path: O(1), one lock) ------------------------------------------------
    def frame(self, camera: str, stamp_ns: int, arrival_ros_ns: int,
              delay_ms: Optional[float], callback_ms: Optional[float] = None) -> None:
        """Count a colour frame of ``camera`` that entered the buffer.

        ``delay_ms``: header stamp to buffered (wall clock); ``callback_ms``: the callback's
        own work (decode, resize, push), which separates the node's cost from transport
        and scheduling.
        """
        with self._lock:
            cs = self.cameras[camera]
            cs.frames += 1
            if callback_ms is not None:
                cs.callback_ms.append(callback_ms)
            if cs.last_stamp_ns is not None and stamp_ns > cs.last_stamp_ns:
                cs.gaps_ms.append((stamp_ns - cs.last_stamp_ns) * 1e-6)
            cs.last_stamp_ns = stamp_ns
            cs.arrivals_ns.append(arrival_ros_ns)
            cs.stale_reported = False
            if delay_ms is not None:
                cs.delays_ms.append(delay_ms)

    def depth(self, camera: str) -> None:
        """Count a depth image of ``camera`` that entered the buffer."""
        with self._lock:
            self.cameras[camera].depth_frames += 1

    def info(self, camera: str) -> None:
        """Count an accepted CameraInfo of ``camera``."""
        with self._lock:
            self.cameras[camera].infos += 1

    def bad_input(self, camera: str, kind: str, message: str) -> None:
        """Count a refused input of ``camera`` (wrong step, unknown encoding, corrupt JPEG)."""
        with self._lock:
            cs = self.cameras[camera]
            cs.bad[kind] += 1
            cs.last_error = message

    def outcome(self, status: str, reason: str, timings_ms: Dict[str, float]) -> None:
        """Record how a planning request ended (``PlanStatus`` value or node status)."""
        with self._lock:
            self.outcomes[status] += 1
            self.last_status, self.last_reason = status, reason
            for stage, ms in timings_ms.items():
                self.stage_ms.setdefault(stage, deque(maxlen=64)).append(float(ms))

    def clock_reset(self) -> None:
        """Count a jump of ROS time backwards (the buffers were cleared)."""
        with self._lock:
            self.clock_resets += 1
            for cs in self.cameras.values():
                cs.arrivals_ns.clear()
                cs.last_stamp_ns = None

    # -- reads ---------------------------------------------------------------------------
    def silent_cameras(self, now_ns: int, timeout_ns: int) -> List[str]:
        """Cameras with no frame for ``timeout_ns`` (or none yet) that were not yet reported.

        Marks them reported, so the caller says "went silent" once per silence.
        """
        out = []
        with self._lock:
            for name, cs in self.cameras.items():
                last = cs.arrivals_ns[-1] if cs.arrivals_ns else None
                silent = last is None or now_ns - last > timeout_ns
                if silent and not cs.stale_reported and (last is not None or cs.frames):
                    out.append(name)
                    cs.stale_reported = True
        return out

    def delay_percentiles(self, camera: str, which: str = 'delays_ms'
                          ) -> Tuple[float, float, float, int]:
        """(p50, p99, max, count) of ``camera``'s ingest delays (or callback times), in ms."""
        with self._lock:
            d = np.fromiter(getattr(self.cameras[camera], which), dtype=np.float64)
        if d.size == 0:
            return (float('nan'),) * 3 + (0,)
        return (float(np.percentile(d, 50)), float(np.percentile(d, 99)), float(d.max()),
                int(d.size))

    def bad_total(self, camera: str) -> int:
        """All refused inputs of ``camera``."""
        with self._lock:
            return sum(self.cameras[camera].bad.values())
