"""``/diagnostics`` of the planner node, built from its ``PlanningStats`` counters.

The counters are plain Python (:mod:`cosmos_planner.pipeline.stats`, shared with the bag
replay); this module adds what needs ROS messages: the ``DiagnosticArray`` built on the
diagnostics timer, one status per camera (a camera silent for longer than the watchdog
timeout on the ROS clock is ``STALE``), one for the planner and one for the backend.
"""

from typing import Any, Dict

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import numpy as np

from cosmos_planner.pipeline.stats import PlanningStats
from cosmos_planner.ros.messages import make_header

OK = DiagnosticStatus.OK
WARN = DiagnosticStatus.WARN
ERROR = DiagnosticStatus.ERROR
STALE = DiagnosticStatus.STALE


class NodeStats(PlanningStats):
    """The node's counters, plus the ``/diagnostics`` they are published as."""

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
