"""CameraModel and Transform against OpenCV's own projection and hand-computed rotations.

Expected values come from cv2.projectPoints / cv2.fisheye.projectPoints called directly in
the test (not through the code under test) or from rotations worked out by hand.
Runtime: well under a second.
"""

import math

import cv2
import numpy as np
import pytest

from cosmos_planner.geometry.camera_model import CameraModel, PointGroundingError
from cosmos_planner.errors import ConfigError, GroundingError
from cosmos_planner.geometry.transforms import (matrix_to_quaternion, quaternion_multiply,
                                                quaternion_to_matrix, Transform)

# A deliberately awkward camera: non-square image, fx != fy, off-centre principal point.
W, H = 640, 400
K = np.array([[520.0, 0.0, 300.5], [0.0, 480.0, 215.25], [0.0, 0.0, 1.0]])
PLUMB_BOB = [-0.28, 0.09, 0.0012, -0.0017, -0.012]
RATIONAL = [0.4, -0.1, 0.001, -0.002, 0.01, 0.7, -0.05, 0.02]
EQUIDISTANT = [0.05, -0.01, 0.002, -0.0005]


def _points(n: int = 60, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.uniform(0.4, 1.5, n)
    x = rng.uniform(-0.45, 0.45, n) * z
    y = rng.uniform(-0.3, 0.3, n) * z
    return np.column_stack([x, y, z])


def _cv_project(points: np.ndarray, d: list, fisheye: bool = False) -> np.ndarray:
    zero = np.zeros(3)
    if fisheye:
        px, _ = cv2.fisheye.projectPoints(points.reshape(-1, 1, 3), zero, zero, K,
                                          np.array(d, dtype=np.float64))
    else:
        px, _ = cv2.projectPoints(points.reshape(-1, 1, 3), zero, zero, K,
                                  np.array(d, dtype=np.float64))
    return px.reshape(-1, 2)


@pytest.mark.parametrize('model,d', [('plumb_bob', PLUMB_BOB),
                                     ('rational_polynomial', RATIONAL),
                                     ('equidistant', EQUIDISTANT),
                                     ('none', [])])
def test_pixel_to_ray_inverts_opencv_projection(model: str, d: list) -> None:
    cam = CameraModel(W, H, K.reshape(-1), d, model, 'cam_optical')
    pts = _points()
    px = _cv_project(pts, d or [0, 0, 0, 0, 0], fisheye=model == 'equidistant')
    rays = cam.pixel_to_ray(px)
    assert rays.shape == (len(pts), 3)
    np.testing.assert_allclose(rays[:, 2], 1.0)
    # z-depth times the ray gives the original point back (well under a micrometre).
    np.testing.assert_allclose(rays * pts[:, 2:3], pts, atol=1e-7)
    # And project() is OpenCV's projection.
    np.testing.assert_allclose(cam.project(pts), px, atol=1e-9)


def test_undistort_refuses_pixel_outside_calibrated_field() -> None:
    cam = CameraModel(W, H, K.reshape(-1), PLUMB_BOB, 'plumb_bob')
    good = _cv_project(_points(3), PLUMB_BOB)
    with pytest.raises(PointGroundingError) as info:
        cam.pixel_to_ray(np.vstack([good, [[-3000.0, -3000.0]]]))
    assert info.value.index == 3
    assert info.value.cause == 'undistort'
    assert 'point 3' in str(info.value)


def test_non_finite_pixel_names_the_point() -> None:
    cam = CameraModel(W, H, K.reshape(-1), PLUMB_BOB, 'plumb_bob')
    with pytest.raises(PointGroundingError) as info:
        cam.pixel_to_ray([[10.0, 10.0], [float('nan'), 5.0]])
    assert info.value.index == 1 and info.value.cause == 'not_finite'


@pytest.mark.parametrize('kwargs,needle', [
    (dict(width=0), 'size'),
    (dict(K=[0, 0, 0, 0, 0, 0, 0, 0, 1]), 'camera matrix'),
    (dict(K=[1, 2, 3]), '9 finite'),
    (dict(distortion_model='kannala'), 'unsupported'),
    (dict(distortion_model='equidistant', D=[0.1, 0.2]), '4 coefficients'),
    (dict(distortion_model='', D=[0.1, 0, 0, 0, 0]), 'distortion_model is empty'),
    (dict(D=[float('nan')] * 5), 'non-finite'),
])
def test_bad_camera_info_is_a_config_error(kwargs: dict, needle: str) -> None:
    args = dict(width=W, height=H, K=K.reshape(-1), D=PLUMB_BOB,
                distortion_model='plumb_bob')
    args.update(kwargs)
    with pytest.raises(ConfigError, match=needle):
        CameraModel(**args)


def test_empty_model_with_zero_d_means_no_distortion() -> None:
    cam = CameraModel(W, H, K.reshape(-1), [0.0] * 5, '')
    assert cam.distortion_model == 'none' and cam.D == ()
    ray = cam.pixel_to_ray([[300.5 + 52.0, 215.25 - 96.0]])[0]
    np.testing.assert_allclose(ray, [0.1, -0.2, 1.0], atol=1e-12)


def test_empty_d_means_no_distortion_whatever_the_model() -> None:
    for model in ('plumb_bob', 'equidistant', 'rational_polynomial'):
        assert CameraModel(W, H, K.reshape(-1), [], model).distortion_model == 'none'


def test_plumb_bob_with_four_coefficients_is_padded() -> None:
    cam = CameraModel(W, H, K.reshape(-1), PLUMB_BOB[:4], 'plumb_bob')
    assert cam.D == tuple(PLUMB_BOB[:4]) + (0.0,)


def test_scaled_camera_for_half_resolution() -> None:
    cam = CameraModel(W, H, K.reshape(-1), PLUMB_BOB, 'plumb_bob')
    half = cam.scaled(320, 200)
    np.testing.assert_allclose(half.matrix, [[260.0, 0, 150.25], [0, 240.0, 107.625],
                                             [0, 0, 1]])
    assert half.D == cam.D and half.size == (320, 200)
    assert cam.scaled(W, H) is cam
    with pytest.raises(GroundingError, match='aspect'):
        cam.scaled(640, 480)


# ----------------------------------------------------------------------------- Transform

def test_transform_rotation_about_z_by_hand() -> None:
    s = math.sqrt(0.5)
    t = Transform((1.0, 2.0, 3.0), (0.0, 0.0, s, s))  # +90 deg about z
    np.testing.assert_allclose(t.apply([1.0, 0.0, 0.0]), [1.0, 3.0, 3.0], atol=1e-12)
    np.testing.assert_allclose(t.apply([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
                               [[0.0, 2.0, 3.0], [1.0, 2.0, 4.0]], atol=1e-12)
    np.testing.assert_allclose(t.rotate([1.0, 0.0, 0.0]), [0.0, 1.0, 0.0], atol=1e-12)


def test_transform_inverse_and_compose() -> None:
    rng = np.random.default_rng(3)
    a = Transform(rng.normal(size=3), rng.normal(size=4))
    b = Transform(rng.normal(size=3), rng.normal(size=4))
    pts = rng.normal(size=(10, 3))
    np.testing.assert_allclose(a.inverse().apply(a.apply(pts)), pts, atol=1e-12)
    np.testing.assert_allclose(a.compose(b).apply(pts), a.apply(b.apply(pts)), atol=1e-12)
    np.testing.assert_allclose(a.compose(b).matrix, a.matrix @ b.matrix, atol=1e-12)
    assert a.compose(a.inverse()).is_identity(atol=1e-12)
    assert Transform.identity().is_identity()


def test_quaternion_matrix_round_trip_and_product() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        q = -q if q[3] < 0 else q
        np.testing.assert_allclose(matrix_to_quaternion(quaternion_to_matrix(q)), q,
                                   atol=1e-12)
    q1, q2 = rng.normal(size=4), rng.normal(size=4)
    np.testing.assert_allclose(quaternion_to_matrix(quaternion_multiply(q1, q2)),
                               quaternion_to_matrix(q1) @ quaternion_to_matrix(q2), atol=1e-12)
    # 180 deg about x: the default "camera looking straight down" rotation.
    np.testing.assert_allclose(quaternion_to_matrix([1, 0, 0, 0]), np.diag([1, -1, -1]))


def test_transform_from_matrix() -> None:
    m = np.eye(4)
    m[:3, :3] = np.diag([1.0, -1.0, -1.0])
    m[:3, 3] = [0.1, 0.2, 0.3]
    t = Transform.from_matrix(m)
    np.testing.assert_allclose(t.quaternion_xyzw, [1, 0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(t.matrix, m, atol=1e-12)
    with pytest.raises(ConfigError):
        Transform.from_matrix(np.diag([1.0, 1.0, -1.0, 1.0]))  # a reflection


@pytest.mark.parametrize('translation,quat,needle', [
    ((0, 0, 0), (0, 0, 0, 0), 'zero length'),
    ((0, 0, 0), (0, 0, 1), '4 values'),
    ((0, 0, float('inf')), (0, 0, 0, 1), 'translation'),
    ((0, 0, 0), (0, float('nan'), 0, 1), 'non-finite'),
])
def test_bad_transform_is_a_config_error(translation: tuple, quat: tuple, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        Transform(translation, quat)


def test_transform_normalises_quaternion() -> None:
    t = Transform((0, 0, 0), (0, 0, 0, 2.0))
    assert t.quaternion_xyzw == (0.0, 0.0, 0.0, 1.0)
    assert t == Transform()
