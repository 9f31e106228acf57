"""The safety gate: every named check passing and failing, staleness both ways.

Runtime: well under a second.
"""

import numpy as np
import pytest

from cosmos_planner.errors import ConfigError, SafetyRejection
from cosmos_planner.geometry.safety import (CHECKS, check_staleness, SafetyConfig, SafetyGate,
                                            valid_until_ns)
from cosmos_planner.geometry.timing import time_waypoints, TimedTrajectory, TimingConfig

STAMP = 100 * 10**9
CFG = SafetyConfig(workspace_min=(-0.5, -0.4, 0.0), workspace_max=(0.5, 0.4, 0.6),
                   max_step_m=0.3, max_waypoints=8, max_velocity_mps=0.25,
                   max_plan_age_s=2.0)
GOOD = [[0.0, 0.0, 0.2], [0.1, 0.0, 0.1], [0.1, 0.1, 0.02], [0.3, 0.1, 0.15]]


def _traj(pos: list, times: list = None, start: tuple = None) -> TimedTrajectory:
    if times is None:
        return time_waypoints('world', STAMP, np.array(pos, float), [None] * len(pos),
                              (1, 0, 0, 0), TimingConfig(nominal_speed_mps=0.1),
                              CFG.max_velocity_mps, start_position=start)
    n = len(pos)
    return TimedTrajectory('world', STAMP, np.array(times, float), np.array(pos, float),
                           (1, 0, 0, 0), (None,) * n, ('open',) * n, tuple(range(n)),
                           (False,) * n, ('',) * n, start)


def _failed(traj: TimedTrajectory, now_ns: int = None) -> list:
    return [v.check for v in SafetyGate(CFG).violations(traj, now_ns)]


def test_a_good_trajectory_passes_every_check() -> None:
    traj = _traj(GOOD)
    assert _failed(traj, STAMP + 10**9) == []
    SafetyGate(CFG).check(traj, STAMP)  # does not raise


def test_workspace() -> None:
    pos = GOOD + [[0.3, 0.1, -0.01]]  # 1 cm below the table
    with pytest.raises(SafetyRejection) as info:
        SafetyGate(CFG).check(_traj(pos))
    assert info.value.check == 'workspace'
    assert info.value.detail['index'] == 4
    assert info.value.detail['frame_id'] == 'world'
    # Points exactly on the box faces are inside.
    for corner in ([-0.5, -0.4, 0.0], [0.5, 0.4, 0.6]):
        assert _failed(_traj([corner])) == []


def test_max_step() -> None:
    pos = [[0.0, 0.0, 0.2], [0.0, 0.29, 0.2], [0.0, -0.02, 0.2]]  # 0.29 then 0.31 m
    with pytest.raises(SafetyRejection) as info:
        SafetyGate(CFG).check(_traj(pos))
    assert info.value.check == 'max_step'
    assert info.value.detail['index'] == 2
    assert info.value.detail['step_m'] == pytest.approx(0.31)
    assert _failed(_traj(pos[:2])) == []


def test_max_step_from_the_current_end_effector() -> None:
    far = _traj([[0.3, 0.0, 0.2]], start=(-0.1, 0.0, 0.2))
    with pytest.raises(SafetyRejection) as info:
        SafetyGate(CFG).check(far)
    assert info.value.check == 'max_step' and info.value.detail['index'] == 0
    assert _failed(_traj([[0.1, 0.0, 0.2]], start=(-0.1, 0.0, 0.2))) == []


def test_max_waypoints() -> None:
    pos = [[0.01 * i, 0.0, 0.2] for i in range(9)]
    with pytest.raises(SafetyRejection) as info:
        SafetyGate(CFG).check(_traj(pos))
    assert info.value.check == 'max_waypoints'
    assert info.value.detail == {'count': 9, 'max': 8}
    assert _failed(_traj(pos[:8])) == []
    assert _failed(_traj([], times=[])) == ['max_waypoints']


def test_max_velocity() -> None:
    pos = [[0.0, 0.0, 0.2], [0.1, 0.0, 0.2], [0.2, 0.0, 0.2]]
    fast = _traj(pos, times=[0.0, 0.4, 0.79])  # 0.25 m/s, then 0.2564 m/s
    with pytest.raises(SafetyRejection) as info:
        SafetyGate(CFG).check(fast)
    assert info.value.check == 'max_velocity'
    assert info.value.detail['index'] == 2
    assert info.value.detail['speed_mps'] == pytest.approx(0.1 / 0.39)
    assert _failed(_traj(pos, times=[0.0, 0.4, 0.8])) == []  # exactly at the limit
    # The first segment from the end effector counts too.
    assert _failed(_traj(pos[:1], times=[0.1], start=(0.0, 0.1, 0.2))) == ['max_velocity']


def test_non_finite_positions() -> None:
    pos = [[0.0, 0.0, 0.2], [np.nan, 0.0, 0.2]]
    traj = _traj(pos, times=[0.0, 1.0])
    with pytest.raises(SafetyRejection) as info:
        SafetyGate(CFG).check(traj)
    assert info.value.check == 'finite' and info.value.detail['indices'] == [1]


def test_staleness_both_ways() -> None:
    age = int(CFG.max_plan_age_s * 1e9)
    assert valid_until_ns(STAMP, CFG.max_plan_age_s) == STAMP + age
    check_staleness(STAMP, STAMP, 2.0)  # right at the frame time
    check_staleness(STAMP, STAMP + age, 2.0)  # the last valid nanosecond
    with pytest.raises(SafetyRejection) as info:
        check_staleness(STAMP, STAMP + age + 1, 2.0)
    assert info.value.check == 'stale' and info.value.detail['why'] == 'too_old'
    assert info.value.detail['valid_until'] == pytest.approx(102.0)
    with pytest.raises(SafetyRejection) as info:
        check_staleness(STAMP, STAMP - 1, 2.0)  # sim reset: time went backwards
    assert info.value.check == 'stale' and info.value.detail['why'] == 'clock_backwards'
    traj = _traj(GOOD)
    assert _failed(traj, STAMP + age + 1) == ['stale']
    assert _failed(traj, 0) == ['stale']
    assert _failed(traj) == []  # no clock given: staleness not judged


def test_violations_lists_every_failure_in_order() -> None:
    pos = [[0.0, 0.0, 0.2]] + [[0.9, 0.0, 0.2]] * 8  # outside, a long step, too many
    traj = _traj(pos, times=[0.0] + [10.0 + i for i in range(8)])
    failed = _failed(traj, STAMP + 10**10)
    assert failed == ['max_waypoints', 'workspace', 'max_step', 'stale']
    assert all(c in CHECKS for c in failed)


@pytest.mark.parametrize('kwargs,name', [
    (dict(workspace_min=(0.0, 0.0, 1.0), workspace_max=(1.0, 1.0, 1.0)),
     'safety.workspace_min'),
    (dict(workspace_max=(1.0, 1.0)), 'safety.workspace_max'),
    (dict(max_step_m=0.0), 'safety.max_step_m'),
    (dict(max_velocity_mps=float('inf')), 'safety.max_velocity_mps'),
    (dict(max_plan_age_s=-1.0), 'safety.max_plan_age_s'),
    (dict(max_waypoints=0), 'safety.max_waypoints'),
    (dict(max_waypoints=2.5), 'safety.max_waypoints'),
])
def test_bad_safety_config_names_the_field(kwargs: dict, name: str) -> None:
    with pytest.raises(ConfigError, match=name.replace('.', r'\.')):
        SafetyConfig(**kwargs)
