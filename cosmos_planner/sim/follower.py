"""A Cartesian trajectory follower: what a real Cartesian controller does with a plan (pure).

Given waypoints with ``time_from_start`` (already in the world frame) and a gripper
open/close schedule on the same time base, it produces the commanded tool position and
gripper state at any time, interpolating linearly between waypoints. Like a real
controller it never moves faster than ``max_speed``: the motion starts from where the tool
is, and a segment that would need more speed is stretched (later waypoints and gripper
commands shift with it, through one monotonic time warp). An empty trajectory is a stop:
the tool holds its current target.

Times are seconds of the controller's clock (sim time in the simulator).
"""

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from cosmos_planner.errors import ConfigError
from cosmos_planner.geometry.transforms import Vector


@dataclass(frozen=True)
class GripperEvent:
    """The gripper should be ``closed`` from ``time_s`` (time_from_start) on."""

    time_s: float
    closed: bool


@dataclass
class ExecutingPath:
    """A trajectory being executed: absolute times on the controller clock."""

    times: np.ndarray
    #: None for a gripper-only schedule (no trajectory was running).
    positions: Optional[np.ndarray]
    stamp_ns: int
    started_s: float
    #: time_from_start as sent -> absolute time, after speed limiting.
    warp_from: np.ndarray = field(default_factory=lambda: np.zeros(0))
    warp_to: np.ndarray = field(default_factory=lambda: np.zeros(0))
    gripper: List[Tuple[float, bool]] = field(default_factory=list)
    next_gripper: int = 0

    @property
    def end_s(self) -> float:
        return float(self.times[-1])


def _check_inputs(times: np.ndarray, positions: np.ndarray) -> None:
    if times.ndim != 1 or positions.shape != (len(times), 3):
        raise ConfigError(f'trajectory needs N times and Nx3 positions, got {times.shape} '
                          f'and {positions.shape}')
    if not (np.all(np.isfinite(times)) and np.all(np.isfinite(positions))):
        raise ConfigError('trajectory has non-finite times or positions')
    if len(times) and (times[0] < 0 or np.any(np.diff(times) < 0)):
        raise ConfigError('trajectory time_from_start must be >= 0 and non-decreasing')


class TrajectoryFollower:
    """Turns timed waypoints into a speed-limited stream of tool targets."""

    def __init__(self, max_speed: float = 0.3) -> None:
        if not max_speed > 0:
            raise ConfigError(f'max_speed must be > 0, got {max_speed!r}')
        self.max_speed = float(max_speed)
        self.path: Optional[ExecutingPath] = None
        self._hold: Optional[np.ndarray] = None

    # ------------------------------------------------------------------ commands
    def start(self, now_s: float, current: Vector, times: Vector,
              positions: Union[Sequence[Sequence[float]], np.ndarray],
              stamp_ns: int = 0) -> ExecutingPath:
        """Execute waypoints from ``now_s``, starting at ``current`` (the tool target)."""
        t = np.asarray(times, float).reshape(-1)
        p = np.asarray(positions, float).reshape(-1, 3)
        _check_inputs(t, p)
        cur = np.asarray(current, float).reshape(3)
        if len(t) == 0:
            self.stop(cur)
            raise ConfigError('empty trajectory: use stop()')
        knots_t = np.concatenate([[0.0], t])
        knots_p = np.vstack([cur, p])
        new_t = [0.0]
        for i in range(1, len(knots_t)):
            dt = knots_t[i] - knots_t[i - 1]
            need = float(np.linalg.norm(knots_p[i] - knots_p[i - 1])) / self.max_speed
            new_t.append(new_t[-1] + max(dt, need))
        abs_t = np.asarray(new_t) + now_s
        self.path = ExecutingPath(times=abs_t, positions=knots_p, stamp_ns=int(stamp_ns),
                                  started_s=now_s, warp_from=knots_t, warp_to=abs_t)
        self._hold = None
        return self.path

    def set_gripper_schedule(self, events: Sequence[GripperEvent],
                             now_s: Optional[float] = None) -> None:
        """Attach a gripper schedule (time_from_start) to the running trajectory.

        Without a running trajectory the schedule starts at ``now_s``.
        """
        path = self.path
        if path is None:
            if now_s is None:
                raise ConfigError('a gripper schedule without a trajectory needs now_s')
            path = ExecutingPath(times=np.array([now_s]), positions=None, stamp_ns=0,
                                 started_s=now_s, warp_from=np.array([0.0]),
                                 warp_to=np.array([now_s]))
            self.path = path
        sched = []
        for ev in sorted(events, key=lambda e: e.time_s):
            if not np.isfinite(ev.time_s) or ev.time_s < 0:
                raise ConfigError(f'gripper event time {ev.time_s!r} must be finite and >= 0')
            sched.append((self._warp(path, ev.time_s), bool(ev.closed)))
        path.gripper = sched
        path.next_gripper = 0

    def stop(self, hold_at: Vector) -> None:
        """Abandon the trajectory and hold ``hold_at`` (a stop, cancel or reset)."""
        self.path = None
        self._hold = np.asarray(hold_at, float).reshape(3).copy()

    # ------------------------------------------------------------------ queries
    @staticmethod
    def _warp(path: ExecutingPath, tfs: float) -> float:
        if len(path.warp_from) == 1:
            return float(path.warp_to[0] + tfs)
        last = path.warp_from[-1]
        if tfs > last:  # beyond the last waypoint: keep the rate of real time
            return float(path.warp_to[-1] + (tfs - last))
        return float(np.interp(tfs, path.warp_from, path.warp_to))

    def target(self, now_s: float) -> Optional[np.ndarray]:
        """Commanded tool position at ``now_s`` (None when there is nothing to command)."""
        path = self.path
        if path is None or path.positions is None:
            return None if self._hold is None else self._hold.copy()
        if now_s >= path.end_s:
            return path.positions[-1].copy()
        return np.array([np.interp(now_s, path.times, path.positions[:, k]) for k in range(3)])

    def gripper_due(self, now_s: float) -> Optional[bool]:
        """Return the newest gripper state due since the last call, else None."""
        path = self.path
        if path is None:
            return None
        state = None
        while path.next_gripper < len(path.gripper) and path.gripper[path.next_gripper][0] \
                <= now_s:
            state = path.gripper[path.next_gripper][1]
            path.next_gripper += 1
        return state

    def done(self, now_s: float) -> bool:
        """No motion or gripper command is left to execute."""
        path = self.path
        if path is None:
            return True
        motion_done = path.positions is None or now_s >= path.end_s
        return motion_done and path.next_gripper >= len(path.gripper)
