"""Time a grounded waypoint list for a Cartesian controller (``TimedTrajectory``).

Rules, so that what the controller receives is executable and checkable:

- Each segment takes ``length / speed`` with ``speed = min(nominal_speed_mps,
  max_velocity_mps)``, but at least ``min_segment_s``: zero-length segments still advance time,
  so ``times_s`` is strictly increasing, and no segment is faster than the velocity limit.
- The first point is reached at ``start_delay_s``, or later when the current end-effector
  position is known and the first segment needs more time at the capped speed.
- The speed cap is exact, with no tolerance: every segment, including the one from
  ``start_position``, has ``segment_speeds() <= min(nominal_speed_mps, max_velocity_mps)``
  as computed from the published times. Lengths come from one function
  (``segment_lengths``) wherever they are used, and times are nudged up by ulps where
  rounding made a segment read one ulp too fast (two ways of taking a norm can differ by
  an ulp, depending on the CPU's BLAS kernel).
- A gripper command is issued on *arrival* at its waypoint. With ``gripper_dwell_s > 0`` the
  waypoint is repeated ``gripper_dwell_s`` (at least ``min_segment_s``) later (a *dwell*
  point at the same position), and the gripper schedule switches between the two: the
  gripper closes (or opens) while the arm holds still, instead of during the approach
  segment as joint interpolation would otherwise do.
- ``gripper_state`` is the gripper's commanded state at each time; the gripper is assumed open
  before the first command. ``gripper_positions`` turns it into joint positions for a
  ``trajectory_msgs/JointTrajectory`` with the same timing.
"""

from dataclasses import dataclass
import math
from typing import cast, Optional, Sequence, Tuple

import numpy as np

from cosmos_planner.errors import ConfigError
from cosmos_planner.geometry.transforms import Vector

GRIPPER_COMMANDS = ('open', 'close')
#: Smallest allowed ``min_segment_s``.
MIN_SEGMENT_FLOOR_S = 1e-3


@dataclass(frozen=True)
class TimingConfig:
    """Trajectory timing and the gripper joint schedule; validated on construction."""

    nominal_speed_mps: float = 0.10
    gripper_dwell_s: float = 0.5
    min_segment_s: float = 0.05
    start_delay_s: float = 0.0
    gripper_joint: str = 'gripper'
    gripper_open_position: float = 0.04
    gripper_closed_position: float = 0.0

    def __post_init__(self) -> None:
        _check(self.nominal_speed_mps, 'timing.nominal_speed_mps', positive=True, hi=10.0)
        _check(self.gripper_dwell_s, 'timing.gripper_dwell_s', positive=False, hi=60.0)
        _check(self.min_segment_s, 'timing.min_segment_s', positive=True, hi=60.0)
        if self.min_segment_s < MIN_SEGMENT_FLOOR_S:
            # Far below any controller period, and small enough to vanish in rounding.
            raise ConfigError(f'timing.min_segment_s must be >= {MIN_SEGMENT_FLOOR_S} s, '
                              f'got {self.min_segment_s!r}')
        _check(self.start_delay_s, 'timing.start_delay_s', positive=False, hi=60.0)
        if not isinstance(self.gripper_joint, str) or not self.gripper_joint:
            raise ConfigError('gripper.joint_name must be a non-empty string')
        for name in ('gripper_open_position', 'gripper_closed_position'):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f'gripper.{name[8:]} must be a finite number, got {value!r}')


def _check(value: float, name: str, positive: bool, hi: float) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) and (value > 0 if positive else value >= 0) and value <= hi
    if not ok:
        kind = 'positive' if positive else 'non-negative'
        raise ConfigError(f'{name} must be a {kind} number <= {hi}, got {value!r}')


@dataclass(frozen=True)
class TimedTrajectory:
    """Waypoints with ``time_from_start`` in one frame, stamped with the plan's frame time.

    Per point: ``gripper`` is the command issued on reaching it, ``gripper_state`` the state
    the gripper should be in at that time, ``waypoint_index`` the index of the plan waypoint it
    belongs to (a dwell point repeats its waypoint's index), ``dwell`` whether it is a dwell
    point. ``start_position`` is the end-effector position the timing assumed, if known.
    """

    frame_id: str
    stamp_ns: int
    times_s: np.ndarray
    positions: np.ndarray
    orientation_xyzw: Tuple[float, float, float, float]
    gripper: Tuple[Optional[str], ...]
    gripper_state: Tuple[str, ...]
    waypoint_index: Tuple[int, ...]
    dwell: Tuple[bool, ...]
    roles: Tuple[str, ...]
    start_position: Optional[Tuple[float, float, float]] = None

    def __post_init__(self) -> None:
        times = np.asarray(self.times_s, dtype=np.float64).reshape(-1)
        pos = np.asarray(self.positions, dtype=np.float64).reshape(-1, 3)
        n = len(times)
        if pos.shape[0] != n:
            raise ValueError(f'{n} times but {pos.shape[0]} positions')
        for name in ('gripper', 'gripper_state', 'waypoint_index', 'dwell', 'roles'):
            if len(getattr(self, name)) != n:
                raise ValueError(f'{name} has {len(getattr(self, name))} entries, expected {n}')
        if n and (times[0] < 0 or np.any(np.diff(times) <= 0)):
            raise ValueError('times_s must start >= 0 and increase strictly')
        times.setflags(write=False)
        pos.setflags(write=False)
        object.__setattr__(self, 'times_s', times)
        object.__setattr__(self, 'positions', pos)

    def __len__(self) -> int:
        return len(self.times_s)

    @property
    def duration_s(self) -> float:
        """Time of the last point (0 for an empty trajectory)."""
        return float(self.times_s[-1]) if len(self) else 0.0

    def segment_speeds(self) -> np.ndarray:
        """Average speed (m/s) of each segment, starting from ``start_position`` if known."""
        pos, times = _with_start(self.positions, self.times_s, self.start_position)
        if len(times) < 2:
            return np.zeros(0)
        dt = np.diff(times)
        dist = segment_lengths(pos)
        with np.errstate(divide='ignore', invalid='ignore'):
            return np.where(dt > 0, dist / np.where(dt > 0, dt, 1.0),
                            np.where(dist > 0, np.inf, 0.0))

    def gripper_positions(self, open_position: float, closed_position: float) -> np.ndarray:
        """Gripper joint position per point from ``gripper_state``."""
        return np.array([closed_position if s == 'close' else open_position
                         for s in self.gripper_state], dtype=np.float64)


def segment_lengths(points: np.ndarray) -> np.ndarray:
    """Length of each segment of a (N, 3) polyline; the one definition timing and checks use."""
    diff = np.diff(np.asarray(points, dtype=np.float64).reshape(-1, 3), axis=0)
    return np.sqrt(np.sum(diff * diff, axis=1))


def _with_start(positions: np.ndarray, times: np.ndarray,
                start: Optional[Vector]) -> Tuple[np.ndarray, np.ndarray]:
    """Prepend the start position at t = 0, when known, as the first segment's origin."""
    if start is None or not len(times):
        return positions, times
    return (np.vstack([np.asarray(start, dtype=np.float64).reshape(1, 3), positions]),
            np.concatenate([[0.0], times]))


def _segment_time(dist: float, speed: float, min_s: float) -> float:
    """Travel time not faster than ``speed`` even after floating-point rounding."""
    if dist <= 0:
        return min_s
    dt = dist / speed
    while dist / dt > speed:  # at most a step or two of nextafter
        dt = float(np.nextafter(dt, math.inf))
    return max(dt, min_s)


def _respect_speed(times: np.ndarray, pos: np.ndarray, speed: float,
                   start: Optional[Vector] = None) -> np.ndarray:
    """Nudge times so speeds computed from the *cumulative* times never exceed ``speed``.

    Summing segment times rounds; a segment whose recomputed time came out one ulp short
    would read as faster than the limit to anyone checking (the gate does). Later points
    shift with it, so the trajectory stays strictly increasing. The segment from ``start``
    (at t = 0) is checked like the others.
    """
    prepended = start is not None and len(times) > 0
    pos, times = _with_start(pos, times.copy(), start)
    dist = segment_lengths(pos)
    for j in range(len(dist)):
        while dist[j] / (times[j + 1] - times[j]) > speed:
            times[j + 1:] = np.nextafter(times[j + 1:], math.inf)
    return times[1:] if prepended else times


def time_waypoints(frame_id: str, stamp_ns: int, positions: np.ndarray,
                   gripper: Sequence[Optional[str]],
                   orientation_xyzw: Sequence[float], config: TimingConfig,
                   max_velocity_mps: float, roles: Optional[Sequence[str]] = None,
                   start_position: Optional[Sequence[float]] = None) -> TimedTrajectory:
    """Time waypoints (N, 3) per the module rules; returns a ``TimedTrajectory``."""
    pos = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    n = len(pos)
    if len(gripper) != n:
        raise ValueError(f'{n} positions but {len(gripper)} gripper entries')
    roles = tuple(roles) if roles is not None else ('',) * n
    if not (isinstance(max_velocity_mps, (int, float)) and max_velocity_mps > 0):
        raise ConfigError(f'max_velocity_mps must be positive, got {max_velocity_mps!r}')
    speed = min(config.nominal_speed_mps, float(max_velocity_mps))
    start = None
    t = config.start_delay_s
    if start_position is not None:
        start = np.asarray(start_position, dtype=np.float64).reshape(3)
        if n:
            t = max(t, _segment_time(float(segment_lengths(np.vstack([start, pos[0]]))[0]),
                                     speed, 0.0))
    times, out_pos, cmds, states, index, dwell, out_roles = [], [], [], [], [], [], []
    state = 'open'

    def emit(time: float, i: int, cmd: Optional[str], st: str, is_dwell: bool) -> None:
        times.append(time)
        out_pos.append(pos[i])
        cmds.append(cmd)
        states.append(st)
        index.append(i)
        dwell.append(is_dwell)
        out_roles.append(roles[i])

    for i in range(n):
        if i > 0:
            t += _segment_time(float(segment_lengths(pos[i - 1:i + 1])[0]), speed,
                               config.min_segment_s)
        cmd = gripper[i]
        if cmd is not None and cmd not in GRIPPER_COMMANDS:
            raise ValueError(f'waypoint {i}: unknown gripper command {cmd!r}')
        if cmd is None:
            emit(t, i, None, state, False)
        elif config.gripper_dwell_s > 0:
            emit(t, i, cmd, state, False)
            t += max(config.gripper_dwell_s, config.min_segment_s)
            emit(t, i, None, cmd, True)
        else:
            emit(t, i, cmd, cmd, False)
        state = cmd or state
    times_arr = _respect_speed(np.asarray(times, dtype=np.float64),
                               np.asarray(out_pos).reshape(-1, 3), speed, start)
    return TimedTrajectory(
        frame_id=frame_id, stamp_ns=int(stamp_ns), times_s=times_arr,
        positions=np.asarray(out_pos).reshape(-1, 3),
        orientation_xyzw=cast(Tuple[float, float, float, float],
                              tuple(float(v) for v in orientation_xyzw)),
        gripper=tuple(cmds),
        gripper_state=tuple(states), waypoint_index=tuple(index), dwell=tuple(dwell),
        roles=tuple(out_roles),
        start_position=None if start is None else cast(Tuple[float, float, float],
                                                       tuple(float(v) for v in start)))
