"""Planner output messages -> what a Cartesian controller executes (duck-typed, no rclpy).

Shared by the MuJoCo controller node and the standalone Isaac Sim script, so both apply
exactly the same rules: waypoints by ``time_from_start``; the header stamp is the camera
frame the plan was made from, used to refuse plans from another timeline (a stamp ahead
of the controller's clock: made before a sim reset) or too old, never as a start time; a
gripper position nearer the closed than the open value means closed.
"""

from typing import Any, List, Optional, Tuple

import numpy as np

from cosmos_planner.sim.follower import GripperEvent

#: A stamp this far ahead of the controller's clock is from before a sim reset.
FUTURE_TOLERANCE_NS = 1_000_000


def stamp_ns(header: Any) -> int:
    """Return a header's stamp in integer nanoseconds."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def duration_s(d: Any) -> float:
    """Return a builtin_interfaces/Duration in seconds."""
    return float(d.sec) + float(d.nanosec) * 1e-9


def stale_reason(stamp: int, now_ns: int, max_age_s: float) -> Optional[str]:
    """Return why a command stamped ``stamp`` must not run at ``now_ns``, else None."""
    if stamp > now_ns + FUTURE_TOLERANCE_NS:
        return 'future_stamp'
    if (now_ns - stamp) * 1e-9 > max_age_s:
        return 'too_old'
    return None


def trajectory_points(msg: Any) -> Tuple[np.ndarray, np.ndarray]:
    """Return ``(times_s, positions Nx3)`` of a MultiDOFJointTrajectory (first joint)."""
    points = np.array([[p.transforms[0].translation.x, p.transforms[0].translation.y,
                        p.transforms[0].translation.z] for p in msg.points], float)
    times = np.array([duration_s(p.time_from_start) for p in msg.points], float)
    return times, points.reshape(-1, 3)


def gripper_events(msg: Any, open_position: float,
                   closed_position: float) -> List[GripperEvent]:
    """Return the open/close schedule of a one-joint JointTrajectory."""
    mid = 0.5 * (open_position + closed_position)
    closed_below = closed_position < open_position
    events = []
    for p in msg.points:
        if not p.positions:
            raise ValueError('gripper point without a position')
        pos = float(p.positions[0])
        events.append(GripperEvent(duration_s(p.time_from_start),
                                   pos < mid if closed_below else pos > mid))
    return events
