"""The Cartesian trajectory follower (pure numpy): interpolation, speed limit, gripper warp.

Under 2 s (hypothesis, 100 examples).
"""

from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from cosmos_planner.errors import ConfigError
from cosmos_planner.sim.follower import GripperEvent, TrajectoryFollower


def test_follows_waypoints_by_time_from_start_with_interpolation() -> None:
    f = TrajectoryFollower(max_speed=10.0)
    f.start(5.0, [0, 0, 0], [1.0, 3.0], [[0.1, 0, 0], [0.1, 0.2, 0]])
    assert np.allclose(f.target(5.0), [0, 0, 0])
    assert np.allclose(f.target(5.5), [0.05, 0, 0])
    assert np.allclose(f.target(6.0), [0.1, 0, 0])
    assert np.allclose(f.target(7.0), [0.1, 0.1, 0])
    assert np.allclose(f.target(100.0), [0.1, 0.2, 0])
    assert not f.done(7.9) and f.done(8.0)


def test_too_fast_segments_are_stretched_and_gripper_events_shift_with_them() -> None:
    f = TrajectoryFollower(max_speed=0.1)
    # First point at t=0 but 0.2 m away: needs 2 s at 0.1 m/s.
    f.start(0.0, [0, 0, 0], [0.0, 1.0], [[0.2, 0, 0], [0.2, 0, 0.05]])
    assert np.isclose(f.path.times[1], 2.0)
    # The second segment (0.05 m in 1 s) is slow enough: unchanged duration.
    assert np.isclose(f.path.times[2], 3.0)
    f.set_gripper_schedule([GripperEvent(0.0, True), GripperEvent(1.0, False)])
    assert f.gripper_due(1.9) is None
    assert f.gripper_due(2.0) is True
    assert f.gripper_due(2.5) is None
    assert f.gripper_due(3.1) is False


def test_stop_holds_and_empty_is_refused() -> None:
    f = TrajectoryFollower()
    f.start(0.0, [0, 0, 0], [1.0], [[0.1, 0, 0]])
    f.stop([0.05, 0, 0])
    assert f.done(0.5)
    assert np.allclose(f.target(0.5), [0.05, 0, 0])
    with pytest.raises(ConfigError):
        f.start(0.0, [0, 0, 0], [], np.zeros((0, 3)))
    assert np.allclose(f.target(1.0), [0, 0, 0]), 'an empty trajectory is a stop'


@pytest.mark.parametrize('times,points', [
    ([1.0, 0.5], [[0, 0, 0], [1, 0, 0]]),
    ([-1.0], [[0, 0, 0]]),
    ([1.0], [[np.nan, 0, 0]]),
    ([1.0, 2.0], [[0, 0, 0]]),
])
def test_bad_trajectories_raise_config_error(times, points) -> None:
    with pytest.raises(ConfigError):
        TrajectoryFollower().start(0.0, [0, 0, 0], times, points)


def test_gripper_schedule_without_trajectory_runs_from_now() -> None:
    f = TrajectoryFollower()
    f.set_gripper_schedule([GripperEvent(0.5, True)], now_s=10.0)
    assert f.target(10.2) is None
    assert f.gripper_due(10.4) is None
    assert f.gripper_due(10.5) is True
    with pytest.raises(ConfigError):
        TrajectoryFollower().set_gripper_schedule([GripperEvent(0.0, True)])


coords = st.floats(-1.0, 1.0, allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(coords, coords, coords), min_size=1, max_size=8),
       st.lists(st.floats(0.0, 2.0), min_size=8, max_size=8),
       st.floats(0.05, 1.0))
def test_commanded_speed_never_exceeds_the_limit(points, gaps, max_speed) -> None:
    times = np.cumsum(gaps[:len(points)])
    f = TrajectoryFollower(max_speed=max_speed)
    f.start(0.0, [0, 0, 0], times, points)
    t = np.linspace(0.0, f.path.end_s + 0.5, 400)
    pos = np.array([f.target(x) for x in t])
    speeds = np.linalg.norm(np.diff(pos, axis=0), axis=1) / np.diff(t)
    assert np.all(speeds <= max_speed * (1 + 1e-6) + 1e-9)
    assert np.allclose(pos[-1], points[-1])
