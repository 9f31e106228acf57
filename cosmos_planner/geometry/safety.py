"""The safety gate: the last check before a plan is published to a controller.

The model's output is untrusted; grounding and timing are ours but run on untrusted points.
The gate re-checks the final timed trajectory independently of how it was built, one named
check at a time (the names are ``CHECKS``), and raises ``SafetyRejection(check, detail)``
for the first failure:

- ``finite``: every position and time is a finite number.
- ``max_waypoints``: at least one and at most ``max_waypoints`` points (dwell points count:
  they are points the controller receives).
- ``workspace``: every point inside the axis-aligned box ``[workspace_min, workspace_max]``
  of the output frame (the target frame).
- ``max_step``: no two consecutive points (and not the current end effector and the first
  point, when the end-effector position is known) further apart than ``max_step_m``.
- ``max_velocity``: no segment faster than ``max_velocity_mps`` on average.
- ``stale`` (ROS time): the plan's stamp is the newest frame it was made from, and it is valid
  until ``stamp + max_plan_age_s``; ``now > valid_until`` is too old, and ``now < stamp``
  means the clock went backwards (sim reset, bag loop): the plan belongs to another timeline.

Details are JSON-friendly dicts (for ``~/status`` and diagnostics).
"""

from dataclasses import dataclass
import math
from typing import List, Optional, Sequence, Tuple

import numpy as np

from cosmos_planner.errors import ConfigError, SafetyRejection
from cosmos_planner.geometry.timing import segment_lengths, TimedTrajectory

CHECKS = ('finite', 'max_waypoints', 'workspace', 'max_step', 'max_velocity', 'stale')
#: Relative slack on the velocity check: timing caps speeds exactly, rounding must not reject.
_VELOCITY_RTOL = 1e-9


@dataclass(frozen=True)
class SafetyConfig:
    """Limits the gate enforces; validated on construction (ConfigError names the field)."""

    workspace_min: Tuple[float, float, float] = (-0.6, -0.6, -0.05)
    workspace_max: Tuple[float, float, float] = (0.6, 0.6, 0.9)
    max_step_m: float = 0.5
    max_waypoints: int = 100
    max_velocity_mps: float = 0.25
    max_plan_age_s: float = 5.0

    def __post_init__(self) -> None:
        lo = _vec3(self.workspace_min, 'safety.workspace_min')
        hi = _vec3(self.workspace_max, 'safety.workspace_max')
        if not all(a < b for a, b in zip(lo, hi)):
            raise ConfigError(f'safety.workspace_min {lo} must be below safety.workspace_max '
                              f'{hi} on every axis')
        object.__setattr__(self, 'workspace_min', lo)
        object.__setattr__(self, 'workspace_max', hi)
        for name in ('max_step_m', 'max_velocity_mps', 'max_plan_age_s'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value <= 0:
                raise ConfigError(f'safety.{name} must be a positive number, got {value!r}')
            object.__setattr__(self, name, float(value))
        if isinstance(self.max_waypoints, bool) or not isinstance(self.max_waypoints, int) \
                or self.max_waypoints < 1:
            raise ConfigError(
                f'safety.max_waypoints must be a positive integer, got {self.max_waypoints!r}')


def _vec3(value: Sequence[float], name: str) -> Tuple[float, float, float]:
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ConfigError(f'{name} must be 3 numbers, got {value!r}') from None
    if arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise ConfigError(f'{name} must be 3 finite numbers, got {value!r}')
    return (float(arr[0]), float(arr[1]), float(arr[2]))


def valid_until_ns(stamp_ns: int, max_plan_age_s: float) -> int:
    """Return the last ROS time (ns) at which a plan stamped ``stamp_ns`` may still run."""
    return int(stamp_ns) + int(round(max_plan_age_s * 1e9))


def check_staleness(stamp_ns: int, now_ns: int, max_plan_age_s: float) -> None:
    """Raise ``SafetyRejection('stale')`` if the plan is too old or from the future."""
    until = valid_until_ns(stamp_ns, max_plan_age_s)
    detail = {'stamp': stamp_ns * 1e-9, 'now': now_ns * 1e-9, 'valid_until': until * 1e-9,
              'max_plan_age_s': max_plan_age_s}
    if now_ns < stamp_ns:
        raise SafetyRejection(
            f'clock went backwards: now {now_ns * 1e-9:.3f} s is before the plan stamp '
            f'{stamp_ns * 1e-9:.3f} s (sim reset or bag loop?)', 'stale',
            {**detail, 'why': 'clock_backwards'})
    if now_ns > until:
        raise SafetyRejection(
            f'plan is {(now_ns - stamp_ns) * 1e-9:.3f} s old, older than '
            f'safety.max_plan_age_s = {max_plan_age_s} s', 'stale',
            {**detail, 'why': 'too_old', 'age_s': (now_ns - stamp_ns) * 1e-9})


class SafetyGate:
    """Run the named checks (module doc) on a ``TimedTrajectory``."""

    def __init__(self, config: SafetyConfig) -> None:
        self.config = config

    def violations(self, traj: TimedTrajectory,
                   now_ns: Optional[int] = None) -> List[SafetyRejection]:
        """Every failed check, in ``CHECKS`` order (empty: the plan may be published).

        ``stale`` is checked only when ``now_ns`` is given. Later checks that depend on
        finite numbers are skipped when ``finite`` fails.
        """
        cfg = self.config
        out: List[SafetyRejection] = []
        pos, times = traj.positions, traj.times_s
        start = None if traj.start_position is None else np.asarray(traj.start_position)
        finite = np.all(np.isfinite(pos), axis=1) & np.isfinite(times)
        if not np.all(finite) or (start is not None and not np.all(np.isfinite(start))):
            bad = np.flatnonzero(~finite)
            out.append(SafetyRejection(
                'trajectory has non-finite positions or times', 'finite',
                {'indices': bad.tolist()}))
        n = len(traj)
        if not 1 <= n <= cfg.max_waypoints:
            out.append(SafetyRejection(
                f'{n} waypoints, allowed 1-{cfg.max_waypoints} (safety.max_waypoints)',
                'max_waypoints', {'count': n, 'max': cfg.max_waypoints}))
        if out and out[0].check == 'finite':
            if now_ns is not None:
                self._stale(traj, now_ns, out)
            return out
        lo, hi = np.asarray(cfg.workspace_min), np.asarray(cfg.workspace_max)
        outside = np.flatnonzero(np.any((pos < lo) | (pos > hi), axis=1))
        if outside.size:
            i = int(outside[0])
            out.append(SafetyRejection(
                f'waypoint {i} at {np.round(pos[i], 4).tolist()} is outside the workspace '
                f'{list(cfg.workspace_min)}..{list(cfg.workspace_max)} ({traj.frame_id})',
                'workspace', {'index': i, 'position': pos[i].tolist(),
                              'indices': outside.tolist(), 'frame_id': traj.frame_id,
                              'min': list(cfg.workspace_min), 'max': list(cfg.workspace_max)}))
        chain = pos if start is None else np.vstack([start, pos])
        steps = segment_lengths(chain)
        too_long = np.flatnonzero(steps > cfg.max_step_m)
        if too_long.size:
            j = int(too_long[0])
            # Segment j ends at point j (with a start position) or j + 1 (without).
            end = j if start is not None else j + 1
            out.append(SafetyRejection(
                f'step of {steps[j]:.3f} m into waypoint {end} exceeds safety.max_step_m = '
                f'{cfg.max_step_m} m', 'max_step',
                {'index': end, 'step_m': float(steps[j]), 'max_step_m': cfg.max_step_m}))
        speeds = traj.segment_speeds()
        fast = np.flatnonzero(speeds > cfg.max_velocity_mps * (1 + _VELOCITY_RTOL))
        if fast.size:
            j = int(fast[0])
            end = j if start is not None else j + 1
            out.append(SafetyRejection(
                f'segment into waypoint {end} moves at {speeds[j]:.3f} m/s, above '
                f'safety.max_velocity_mps = {cfg.max_velocity_mps}', 'max_velocity',
                {'index': end, 'speed_mps': float(speeds[j]),
                 'max_velocity_mps': cfg.max_velocity_mps}))
        if now_ns is not None:
            self._stale(traj, now_ns, out)
        return out

    def _stale(self, traj: TimedTrajectory, now_ns: int, out: List[SafetyRejection]) -> None:
        try:
            check_staleness(traj.stamp_ns, now_ns, self.config.max_plan_age_s)
        except SafetyRejection as exc:
            out.append(exc)

    def check(self, traj: TimedTrajectory, now_ns: Optional[int] = None) -> None:
        """Raise the first failed check's ``SafetyRejection``; return quietly if all pass."""
        failed = self.violations(traj, now_ns)
        if failed:
            raise failed[0]

    def check_staleness(self, stamp_ns: int, now_ns: int) -> None:
        """Raise ``SafetyRejection('stale')`` per the configured ``max_plan_age_s``."""
        check_staleness(stamp_ns, now_ns, self.config.max_plan_age_s)

    def valid_until_ns(self, stamp_ns: int) -> int:
        """``stamp + max_plan_age_s`` in ns."""
        return valid_until_ns(stamp_ns, self.config.max_plan_age_s)
