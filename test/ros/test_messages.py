"""Tests of ros/messages.py: stamps, durations, camera_info, poses, output and hold messages."""

import json
from typing import Any, Tuple

from geometry_msgs.msg import PoseStamped
import numpy as np
import pytest
from ros_helpers import NS
from sensor_msgs.msg import CameraInfo

from cosmos_planner.errors import GroundingError
from cosmos_planner.geometry.timing import time_waypoints, TimingConfig
from cosmos_planner.model.plan_schema import PlannedPoint, PlanV1
from cosmos_planner.ros import messages as m


@pytest.mark.parametrize('ns', [0, 1, NS - 1, NS, 1_795_560_018_151_217_700, 2 ** 62])
def test_stamps_round_trip_exactly(ns: int) -> None:
    assert m.stamp_to_ns(m.ns_to_stamp(ns)) == ns


def test_durations_round_to_the_nanosecond() -> None:
    d = m.seconds_to_duration(1.25)
    assert (d.sec, d.nanosec) == (1, 250_000_000)
    assert m.duration_to_seconds(m.seconds_to_duration(0.1 + 0.2)) == pytest.approx(0.3)


def _info(**kw: Any) -> CameraInfo:
    info = CameraInfo(width=640, height=480, distortion_model='plumb_bob',
                      d=[0.1, 0.0, 0.0, 0.0, 0.0],
                      k=[500.0, 0.0, 320.0, 0.0, 510.0, 240.0, 0.0, 0.0, 1.0])
    info.header.frame_id = 'cam'
    for key, value in kw.items():
        setattr(info, key, value)
    return info


def test_camera_model_from_info_keeps_intrinsics_and_frame() -> None:
    model = m.camera_model_from_info(_info())
    assert model.size == (640, 480) and model.frame_id == 'cam'
    assert model.matrix[0, 0] == 500.0 and model.matrix[1, 1] == 510.0
    assert model.D[0] == 0.1


def test_camera_model_from_info_applies_binning_and_roi() -> None:
    info = _info(binning_x=2, binning_y=2)
    info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = 20, 10, 400, 300
    model = m.camera_model_from_info(info)
    assert model.size == (200, 150)
    np.testing.assert_allclose(model.matrix[:2], [[250.0, 0.0, 150.0], [0.0, 255.0, 115.0]])


def test_uncalibrated_camera_info_is_refused() -> None:
    with pytest.raises(GroundingError, match='uncalibrated'):
        m.camera_model_from_info(_info(k=[0.0] * 9))


def test_pose_with_zero_quaternion_is_refused() -> None:
    pose = PoseStamped()
    pose.pose.orientation.w = 0.0
    with pytest.raises(ValueError, match='zero quaternion'):
        m.pose_from_msg(pose)
    pose.pose.orientation.z = 2.0
    _, _, _, quat = m.pose_from_msg(pose)
    np.testing.assert_allclose(quat, [0, 0, 1, 0])


def _plan_and_trajectory() -> Tuple[PlanV1, Any]:
    positions = np.array([[0.0, 0.0, 0.1], [0.1, 0.0, 0.1], [0.1, 0.2, 0.1]])
    traj = time_waypoints('world', 5 * NS + 7, positions, [None, 'close', 'open'],
                          (1.0, 0.0, 0.0, 0.0), TimingConfig(gripper_dwell_s=0.5), 0.2)
    points = [PlannedPoint(point_2d=(10.0 * i, 20.0), pixel=(1.0 * i, 2.0),
                           position=tuple(p)) for i, p in enumerate(positions)]
    plan = PlanV1(task_id='t', plan_id='p', task='x', stamp=5.000000007, frame_id='world',
                  image_size=(64, 48), valid_until=10.0, trajectory=points,
                  next_action='grasp')
    return plan, traj


def test_output_messages_share_points_timing_and_stamp() -> None:
    plan, traj = _plan_and_trajectory()
    out = m.build_output_messages(plan, traj, gripper=m.GripperSpec('g', 0.04, 0.0),
                                  ee_joint='tool0')
    assert set(out) == {'plan', 'path', 'trajectory', 'gripper', 'markers'}
    assert json.loads(out['plan'].data)['schema'] == 'cosmos_planner/plan/v1'
    n = len(traj)
    assert n == 5          # two dwell points for the two gripper commands
    for key in ('path', 'trajectory', 'gripper'):
        assert m.stamp_to_ns(out[key].header.stamp) == 5 * NS + 7
        assert out[key].header.frame_id == 'world'
    assert len(out['path'].poses) == len(out['trajectory'].points) == n
    times = [m.duration_to_seconds(p.time_from_start) for p in out['trajectory'].points]
    np.testing.assert_allclose(times, traj.times_s, atol=1e-9)
    assert [p.positions[0] for p in out['gripper'].points] == [0.04, 0.04, 0.0, 0.0, 0.04]
    first = out['trajectory'].points[0]
    assert first.velocities[0].linear.x == pytest.approx(0.1)   # nominal 0.1 m/s < cap 0.2
    assert out['markers'].markers[0].action == out['markers'].markers[0].DELETEALL


def test_hold_messages_hold_the_pose_or_stop() -> None:
    held = m.build_hold_messages(3 * NS, 'world', hold_position=(0.1, 0.2, 0.3))
    point = held['trajectory'].points[0]
    assert len(held['trajectory'].points) == 1 and point.time_from_start.sec == 0
    assert point.transforms[0].translation.z == 0.3
    assert held['path'].poses == [] and held['markers'].markers[0].action == 3
    assert m.build_hold_messages(3 * NS, 'world')['trajectory'].points == []


def test_status_json_accepts_numpy_and_enums() -> None:
    from cosmos_planner.model.results import PlanStatus
    data = json.loads(m.status_message({'a': np.float32(1.5), 'b': np.arange(2),
                                        's': PlanStatus.STALE}).data)
    assert data == {'a': 1.5, 'b': [0, 1], 's': 'stale'}
