"""Counters behind ``/diagnostics``: camera rates, bad images, plan outcomes, latencies.

``NodeStats`` is updated from the executor thread (camera callbacks) and the planning
worker, so every update holds one lock and does O(1) work; building the
``DiagnosticArray`` happens on the diagnostics timer. The watchdog is part of it: a camera
whose last frame arrived longer ago than the timeout (ROS clock) is reported ``STALE``.

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

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import numpy as np

from cosmos_planner.ros.messages import make_header

OK = DiagnosticStatus.OK
WARN = DiagnosticStatus.WARN
ERROR = DiagnosticStatus.ERROR
STALE = DiagnosticStatus.STALE
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


class NodeStats:
    """Thread-safe counters of the planner node."""

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

    def to_array(self, now_ns: int, watchdog_ns: int) -> DiagnosticArray:
        """Build ``/diagnostics``: one status per camera, one for the planner and the backend."""
        arr = DiagnosticArray(header=make_header(now_ns, ''))
        with self._lock:
            cams = {n: (cs.frames, cs.depth_frames, cs.infos, dict(cs.bad),
                        list(cs.arrivals_ns), cs.last_error) for n, cs in self.cameras.items()}
            outcomes = dict(self.outcomes)
            stages = {k: list(v) for k, v in self.stage_ms.items()}
            health = dict(self.backend_health)
            resets, state = self.clock_resets, self.state
            last_status, last_reason = self.last_status, self.last_reason
        for name, (frames, depth, infos, bad, arrivals, last_err) in cams.items():
            rate = 0.0
            if len(arrivals) >= 2 and arrivals[-1] > arrivals[0]:
                rate = (len(arrivals) - 1) / ((arrivals[-1] - arrivals[0]) * 1e-9)
            silent = not arrivals or now_ns - arrivals[-1] > watchdog_ns
            level, msg = OK, f'{rate:.1f} Hz'
            if silent:
                level, msg = STALE, 'no frames' if not frames else 'camera went silent'
            elif bad:
                level, msg = WARN, f'{sum(bad.values())} bad inputs; last: {last_err}'
            p50, p99, mx, n = self.delay_percentiles(name)
            c50, c99, cmx, _ = self.delay_percentiles(name, 'callback_ms')
            gap = self.delay_percentiles(name, 'gaps_ms')[2]
            values = {'frames': frames, 'depth_frames': depth, 'camera_infos': infos,
                      'rate_hz': f'{rate:.2f}', 'bad_inputs': sum(bad.values()),
                      'ingest_delay_ms_p50': f'{p50:.3f}', 'ingest_delay_ms_p99': f'{p99:.3f}',
                      'ingest_delay_ms_max': f'{mx:.3f}', 'ingest_delay_samples': n,
                      'callback_ms_p50': f'{c50:.3f}', 'callback_ms_p99': f'{c99:.3f}',
                      'callback_ms_max': f'{cmx:.3f}',
                      'frame_gap_ms_max': f'{gap:.1f}'}
            values.update({f'bad.{k}': v for k, v in sorted(bad.items())})
            arr.status.append(_status(f'{self.node_name}: camera {name}', level, msg, values))
        failures = sum(v for k, v in outcomes.items() if k != 'ok')
        level = OK if last_status in ('', 'ok') else WARN
        pvalues: Dict[str, Any] = {'state': state, 'clock_resets': resets,
                                   'last_status': last_status, 'last_reason': last_reason,
                                   'failures': failures}
        pvalues.update({f'outcome.{k}': v for k, v in sorted(outcomes.items())})
        for stage, vals in sorted(stages.items()):
            pvalues[f'latency_ms.{stage}.mean'] = f'{float(np.mean(vals)):.2f}'
            pvalues[f'latency_ms.{stage}.last'] = f'{vals[-1]:.2f}'
        arr.status.append(_status(f'{self.node_name}: planner', level,
                                  last_reason or state, pvalues))
        ok = bool(health.get('ok', False))
        arr.status.append(_status(f'{self.node_name}: backend', OK if ok else ERROR,
                                  str(health.get('detail', '')),
                                  {k: v for k, v in health.items() if k != 'detail'}))
        return arr


def _status(name: str, level: bytes, message: str, values: Dict[str, Any]) -> DiagnosticStatus:
    return DiagnosticStatus(
        level=level, name=name, message=message[:200], hardware_id='cosmos_planner',
        values=[KeyValue(key=str(k), value=str(v)) for k, v in values.items()])


def diagnostics_values(status: DiagnosticStatus) -> Dict[str, str]:
    """Return a status' key/values as a dict (for tests and the benchmark)."""
    return {kv.key: kv.value for kv in status.values}
