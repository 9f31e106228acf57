"""Grounding: pixels back to 3D on a sloped plane and on depth with holes, and the lift rule.

The scene: a 640x400 camera with fx != fy, an off-centre principal point and plumb_bob
distortion, posed above and behind a sloped table (a non-identity, non-axis-aligned
transform). Known 3D points are projected to distorted pixels with cv2.projectPoints called
here (independently of the code under test), converted to the plan's pixel convention (0 at
the image edge, so OpenCV pixel + 0.5), grounded back, and compared with the originals.
Runtime: well under a second.
"""

from typing import List, Optional

import cv2
import numpy as np
import pytest

from cosmos_planner.geometry.camera_model import CameraModel, PointGroundingError
from cosmos_planner.errors import ConfigError, GroundingError
from cosmos_planner.frames.types import DepthFrame
from cosmos_planner.geometry.grounding import (assign_roles, GroundingConfig, Grounder,
                                               lift_waypoints)
from cosmos_planner.geometry.transforms import matrix_to_quaternion, Transform

W, H = 640, 400
K = np.array([[520.0, 0.0, 300.5], [0.0, 480.0, 215.25], [0.0, 0.0, 1.0]])
D = [-0.28, 0.09, 0.0012, -0.0017, -0.012]
CAM = CameraModel(W, H, K.reshape(-1), D, 'plumb_bob', 'cam_optical')
STAMP = 1_700_000_000_123_456_789
MM = 1e-3


def _look_at(eye: np.ndarray, target: np.ndarray) -> Transform:
    """T_world_camera for an optical frame at ``eye`` looking at ``target`` (world z up)."""
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return Transform(eye, matrix_to_quaternion(np.column_stack([x, y, z])))


EYE = np.array([0.12, -0.45, 0.65])
T_WORLD_CAM = _look_at(EYE, np.array([0.02, 0.05, 0.0]))
# Sloped table: normal tilted ~5 degrees, passing through (0, 0, 0.02).
NORMAL = np.array([0.08, -0.05, 1.0]) / np.linalg.norm([0.08, -0.05, 1.0])
OFFSET = -float(NORMAL @ [0.0, 0.0, 0.02])
PLANE = (*NORMAL.tolist(), OFFSET)


def _plane_points(n: int = 12, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.25, 0.25, n)
    y = rng.uniform(-0.1, 0.25, n)
    z = -(OFFSET + NORMAL[0] * x + NORMAL[1] * y) / NORMAL[2]
    return np.column_stack([x, y, z])


def _plan_pixels(points_world: np.ndarray) -> np.ndarray:
    """Independent projection: world -> camera (by matrix) -> cv2 -> plan convention."""
    m = np.linalg.inv(T_WORLD_CAM.matrix)
    cam = points_world @ m[:3, :3].T + m[:3, 3]
    px, _ = cv2.projectPoints(cam.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K,
                              np.array(D))
    px = px.reshape(-1, 2) + 0.5
    assert np.all((px > 0) & (px < [W, H])), 'test points must be in view'
    return px


def _cfg(**kw: object) -> GroundingConfig:
    base = dict(mode='plane', plane=PLANE, target_frame='world',
                target_translation=tuple(T_WORLD_CAM.translation),
                target_rotation_xyzw=tuple(T_WORLD_CAM.quaternion_xyzw))
    base.update(kw)
    return GroundingConfig(**base)


def test_plane_grounding_recovers_points_within_a_millimetre() -> None:
    pts = _plane_points()
    got = Grounder(_cfg()).surface_points(_plan_pixels(pts), CAM)
    err = np.linalg.norm(got - pts, axis=1)
    assert err.max() < MM, err


def test_plane_grounding_in_camera_frame() -> None:
    pts = _plane_points()
    # The same plane expressed in the camera optical frame: n_c = R^T n, d_c = d + n . t.
    rot, t = T_WORLD_CAM.rotation, np.asarray(T_WORLD_CAM.translation)
    n_cam = rot.T @ NORMAL
    plane_cam = (*n_cam.tolist(), OFFSET + float(NORMAL @ t))
    grounder = Grounder(GroundingConfig(mode='plane', plane=plane_cam, target_frame=''))
    got = grounder.surface_points(_plan_pixels(pts), CAM)
    expected = T_WORLD_CAM.inverse().apply(pts)
    assert np.linalg.norm(got - expected, axis=1).max() < MM
    assert grounder.output_frame(CAM) == 'cam_optical'


def test_plane_behind_camera_and_parallel_ray_fail_with_cause() -> None:
    # Camera frame output, plane z = -1 in the camera frame: behind the camera.
    grounder = Grounder(GroundingConfig(mode='plane', plane=(0, 0, 1, 1), target_frame=''))
    with pytest.raises(PointGroundingError) as info:
        grounder.surface_points([[320.0, 200.0]], CAM)
    assert info.value.cause == 'plane_behind_camera' and info.value.index == 0
    # Plane y = 1 (below the camera) seen by the ray through the principal point (0, 0, 1).
    grounder = Grounder(GroundingConfig(mode='plane', plane=(0, 1, 0, -1), target_frame=''))
    centre = np.array([[300.5 + 0.5, 215.25 + 0.5]])
    with pytest.raises(PointGroundingError) as info:
        grounder.surface_points(np.vstack([[[320.0, 390.0]], centre]), CAM)
    assert info.value.cause == 'parallel_to_plane' and info.value.index == 1


def test_pixel_outside_image_fails() -> None:
    with pytest.raises(PointGroundingError) as info:
        Grounder(_cfg()).surface_points([[10.0, 10.0], [W + 5.0, 10.0]], CAM)
    assert info.value.index == 1 and info.value.cause == 'outside_image'


# ---------------------------------------------------------------------------------- depth

def _depth_scene(pts: np.ndarray, shape: tuple = (H, W), missing: Optional[int] = None,
                 stamp_ns: int = STAMP, frame_id: str = 'cam_optical') -> DepthFrame:
    """Build a depth image with holes around known points.

    NaN except a 9x9 blob of true z-depth at each point, riddled with holes (0, NaN) and a
    few far outliers; point ``missing`` gets only holes.
    """
    depth = np.full(shape, np.nan, dtype=np.float32)
    z = T_WORLD_CAM.inverse().apply(pts)[:, 2]
    px = _plan_pixels(pts) - 0.5  # OpenCV convention for indexing
    sy, sx = shape[0] / H, shape[1] / W
    rng = np.random.default_rng(7)
    for i, (u, v) in enumerate(px):
        cu = int(round((u + 0.5) * sx - 0.5))
        cv = int(round((v + 0.5) * sy - 0.5))
        rows = slice(max(cv - 4, 0), cv + 5)
        cols = slice(max(cu - 4, 0), cu + 5)
        depth[rows, cols] = z[i]
        block = depth[rows, cols]
        holes = rng.choice(block.size, size=8, replace=False)
        block.flat[holes[:4]] = 0.0
        block.flat[holes[4:6]] = np.nan
        block.flat[holes[6:]] = 4.5  # reflections: valid range, but outvoted by the median
        if i == missing:
            block[:] = 0.0
            block.flat[::3] = np.nan
    return DepthFrame('cam', stamp_ns, depth, frame_id)


def test_depth_grounding_with_holes_within_a_millimetre() -> None:
    pts = _plane_points(10, seed=4)
    grounder = Grounder(_cfg(mode='depth', depth_patch_px=5))
    got = grounder.surface_points(_plan_pixels(pts), CAM, _depth_scene(pts), STAMP)
    assert np.linalg.norm(got - pts, axis=1).max() < MM


def test_depth_at_half_resolution_is_sampled_at_the_scaled_pixel() -> None:
    pts = _plane_points(6, seed=5)
    depth = _depth_scene(pts, shape=(H // 2, W // 2))
    got = Grounder(_cfg(mode='depth', depth_patch_px=3)).surface_points(
        _plan_pixels(pts), CAM, depth, STAMP)
    assert np.linalg.norm(got - pts, axis=1).max() < MM


def test_missing_depth_fails_naming_the_point() -> None:
    pts = _plane_points(5, seed=6)
    grounder = Grounder(_cfg(mode='depth', depth_patch_px=5))
    with pytest.raises(PointGroundingError) as info:
        grounder.surface_points(_plan_pixels(pts), CAM, _depth_scene(pts, missing=3), STAMP)
    assert info.value.index == 3
    assert info.value.cause == 'no_depth'
    assert 'point 3' in str(info.value) and 'no valid depth' in str(info.value)


def test_depth_sync_tolerance_and_registration() -> None:
    pts = _plane_points(3, seed=8)
    px = _plan_pixels(pts)
    grounder = Grounder(_cfg(mode='depth', depth_sync_tolerance_s=0.05))
    within = _depth_scene(pts, stamp_ns=STAMP - 40_000_000)
    assert np.linalg.norm(grounder.surface_points(px, CAM, within, STAMP) - pts,
                          axis=1).max() < MM
    late = _depth_scene(pts, stamp_ns=STAMP + 60_000_000)
    with pytest.raises(GroundingError, match='0.060 s away'):
        grounder.surface_points(px, CAM, late, STAMP)
    other = _depth_scene(pts, frame_id='ir_optical')
    with pytest.raises(GroundingError, match='registered'):
        grounder.surface_points(px, CAM, other, STAMP)
    with pytest.raises(GroundingError, match='no depth image'):
        grounder.surface_points(px, CAM, None, STAMP)


# ------------------------------------------------------------------------------ lift rule

def _roles(gripper: List[Optional[str]]) -> List[str]:
    return [r for r, _ in assign_roles(gripper)]


def test_roles_with_gripper_labels() -> None:
    labels = [None, None, 'close', None, 'close', None, 'open', None]
    assert _roles(labels) == ['approach', 'approach', 'grasp', 'carry', 'carry', 'carry',
                              'release', 'retreat']
    # Commands are kept as the model gave them.
    assert [c for _, c in assign_roles(labels)] == labels
    # Two pick-and-place cycles; an 'open' while open is just an approach point.
    assert _roles(['open', 'close', None, 'open', 'close', 'open']) == [
        'approach', 'grasp', 'carry', 'release', 'grasp', 'release']
    # No close at all: nothing is held.
    assert _roles(['open', None, 'open']) == ['approach'] * 3


@pytest.mark.parametrize('n,expected', [
    (1, ['start']),
    (2, ['start', 'grasp']),
    (3, ['start', 'grasp', 'release']),
    (5, ['start', 'grasp', 'carry', 'carry', 'release']),
])
def test_roles_of_a_bare_list(n: int, expected: List[str]) -> None:
    roles = assign_roles([None] * n)
    assert [r for r, _ in roles] == expected
    cmds = {'grasp': 'close', 'release': 'open'}
    assert [c for _, c in roles] == [cmds.get(r) for r in expected]


def test_unknown_gripper_label_fails() -> None:
    with pytest.raises(GroundingError, match='point 1'):
        assign_roles([None, 'grab'])


HEIGHTS = dict(approach_m=0.1, grasp_offset_m=0.02, carry_m=0.15, place_m=0.04)


def _lift(surface: np.ndarray, gripper: List[Optional[str]], ee: Optional[tuple] = None,
          **kw: object) -> list:
    cfg = GroundingConfig(**{**HEIGHTS, **kw})
    n = len(surface)
    px = [(float(i), float(i)) for i in range(n)]
    return list(lift_waypoints(surface, assign_roles(gripper), cfg, px, px,
                               ['gripper trajectory'] * n, ee))


def test_lift_bare_list_with_end_effector_start() -> None:
    surface = np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.2, 0.05, 0.0], [0.3, 0.1, 0.01]])
    ee = (-0.05, 0.0, 0.3)
    wps = _lift(surface, [None] * 4, ee)
    assert [w.role for w in wps] == ['start', 'pre_grasp', 'grasp', 'carry', 'pre_release',
                                     'release']
    expected = [ee, (0.1, 0.0, 0.1), (0.1, 0.0, 0.02), (0.2, 0.05, 0.15), (0.3, 0.1, 0.11),
                (0.3, 0.1, 0.05)]
    np.testing.assert_allclose([w.position for w in wps], expected, atol=1e-12)
    assert [w.gripper for w in wps] == [None, None, 'close', None, None, 'open']
    assert [w.inserted for w in wps] == [False, True, False, False, True, False]
    assert [w.source_index for w in wps] == [0, 1, 1, 2, 3, 3]
    # Without the end effector, the start is the first surface point at approach height.
    wps = _lift(surface, [None] * 4)
    np.testing.assert_allclose(wps[0].position, (0.0, 0.0, 0.1), atol=1e-12)


def test_lift_labeled_plan_skips_redundant_insertion() -> None:
    # The model already put an approach point straight above the grasp spot (same pixel).
    surface = np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.1, 0.0, 0.0], [0.2, 0.0, 0.0],
                        [0.3, 0.0, 0.0], [0.3, 0.0, 0.0]])
    wps = _lift(surface, [None, None, 'close', None, 'open', None])
    assert [w.role for w in wps] == ['approach', 'approach', 'grasp', 'carry', 'pre_release',
                                     'release', 'retreat']
    np.testing.assert_allclose([w.position for w in wps], [
        (0.0, 0.0, 0.1), (0.1, 0.0, 0.1), (0.1, 0.0, 0.02), (0.2, 0.0, 0.15),
        (0.3, 0.0, 0.1), (0.3, 0.0, 0.04), (0.3, 0.0, 0.1)], atol=1e-12)


def test_lift_along_configured_up_and_without_insertion() -> None:
    surface = np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.2, 0.0, 0.0]])
    # Camera-frame output of a level camera: up is -y; the vector is normalised.
    wps = _lift(surface, [None] * 3, up=(0.0, -2.0, 0.0), insert_approach=False)
    np.testing.assert_allclose([w.position for w in wps], [
        (0.0, -0.1, 0.0), (0.1, -0.02, 0.0), (0.2, -0.04, 0.0)], atol=1e-12)


def test_full_grounding_of_a_labeled_plan_on_the_sloped_table() -> None:
    pts = _plane_points(4, seed=9)
    px = _plan_pixels(pts)
    up = np.array([0.0, 0.0, 1.0])
    cfg = _cfg(**HEIGHTS)
    plan = Grounder(cfg).ground(px, [(1.0, 2.0)] * 4, [None, 'close', None, 'open'],
                                ['a', 'b', 'c', 'd'], CAM, stamp_ns=STAMP)
    assert plan.frame_id == 'world' and plan.labeled and plan.stamp_ns == STAMP
    assert [w.role for w in plan.waypoints] == ['approach', 'pre_grasp', 'grasp', 'carry',
                                                'pre_release', 'release']
    expected = [pts[0] + 0.1 * up, pts[1] + 0.1 * up, pts[1] + 0.02 * up, pts[2] + 0.15 * up,
                pts[3] + 0.1 * up, pts[3] + 0.04 * up]
    assert np.linalg.norm(plan.positions - np.array(expected), axis=1).max() < MM
    assert plan.gripper == (None, None, 'close', None, None, 'open')
    assert plan.waypoints[2].label == 'b' and plan.waypoints[1].inserted
    np.testing.assert_allclose(plan.waypoints[1].pixel, px[1])
    assert plan.orientation_xyzw == (1.0, 0.0, 0.0, 0.0)


def test_ground_rejects_empty_and_mismatched_inputs() -> None:
    grounder = Grounder(_cfg())
    with pytest.raises(GroundingError, match='no points'):
        grounder.ground([], [], [], [], CAM)
    with pytest.raises(GroundingError, match='differ in length'):
        grounder.ground([(1.0, 1.0)], [], [None], ['x'], CAM)
    with pytest.raises(GroundingError, match='ee_position'):
        grounder.ground(_plan_pixels(_plane_points(2)), [(0, 0)] * 2, [None] * 2, ['x'] * 2,
                        CAM, ee_position=(0.0, float('nan'), 0.0))


@pytest.mark.parametrize('kwargs,name', [
    (dict(mode='lidar'), 'ground.mode'),
    (dict(depth_patch_px=4), 'ground.depth_patch_px'),
    (dict(depth_patch_px=0), 'ground.depth_patch_px'),
    (dict(plane=(0.0, 0.0, 0.0, 1.0)), 'ground.plane'),
    (dict(plane=(0.0, 0.0, 1.0)), 'ground.plane'),
    (dict(approach_m=float('nan')), 'heights.approach_m'),
    (dict(carry_m=5.0), 'heights.carry_m'),
    (dict(up=(0.0, 0.0, 0.0)), 'heights.up'),
    (dict(tool_orientation_xyzw=(0.0, 0.0, 0.0, 0.0)), 'tool.orientation_xyzw'),
    (dict(target_translation=(0.0, 1.0)), 'target.translation'),
    (dict(target_rotation_xyzw=(0.0, 0.0, 0.0, float('inf'))), 'target.rotation_xyzw'),
    (dict(depth_min_m=2.0, depth_max_m=1.0), 'ground.depth_max_m'),
    (dict(depth_sync_tolerance_s=-1.0), 'ground.depth_sync_tolerance_s'),
])
def test_bad_grounding_config_names_the_field(kwargs: dict, name: str) -> None:
    with pytest.raises(ConfigError, match=name.replace('.', r'\.')):
        GroundingConfig(**kwargs)


def test_default_config_is_a_camera_looking_down_at_the_table() -> None:
    cfg = GroundingConfig()
    cam = CameraModel(W, H, K.reshape(-1), [], 'none', 'cam_optical')
    # The principal point's ray goes straight down from 1 m onto the table plane z = 0.
    centre = np.array([[300.5 + 0.5, 215.25 + 0.5]])
    np.testing.assert_allclose(Grounder(cfg).surface_points(centre, cam), [[0.0, 0.0, 0.0]],
                               atol=1e-12)
