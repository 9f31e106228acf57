"""Pinhole camera of the simulator: intrinsics and the optical-frame pose (pure numpy).

MuJoCo cameras look along their -z axis with y up; ROS optical frames (and Isaac's
``sim_camera`` images) have z forward, x right, y down. Everything published or projected
here uses the optical convention, so the grounding code sees exactly what it would see
from Isaac Sim or a real camera. Pixel coordinates follow ROS: the centre of the top-left
pixel is (0, 0), so the principal point of a centred camera is ((w-1)/2, (h-1)/2).
"""

import math
from dataclasses import dataclass
from typing import cast, Tuple

import numpy as np

#: MuJoCo camera axes (x right, y up, z back) -> optical axes (x right, y down, z forward).
MUJOCO_TO_OPTICAL = np.diag([1.0, -1.0, -1.0])


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of an undistorted image (MuJoCo renders without distortion)."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_fovy(cls, width: int, height: int, fovy_deg: float) -> 'Intrinsics':
        """Build from MuJoCo's ``fovy`` (the vertical field of view); pixels are square."""
        f = 0.5 * height / math.tan(math.radians(fovy_deg) / 2)
        return cls(width, height, f, f, (width - 1) / 2.0, (height - 1) / 2.0)

    @property
    def K(self) -> np.ndarray:  # noqa: N802 - the standard name of the matrix
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def P(self) -> np.ndarray:  # noqa: N802 - the standard name of the matrix
        return np.hstack([self.K, np.zeros((3, 1))])


@dataclass(frozen=True)
class OpticalPose:
    """Pose of the optical frame in ``world``: ``p_world = R @ p_optical + t``."""

    rotation: np.ndarray
    translation: np.ndarray

    @classmethod
    def from_mujoco(cls, cam_xpos: np.ndarray, cam_xmat: np.ndarray) -> 'OpticalPose':
        rot = np.asarray(cam_xmat, float).reshape(3, 3) @ MUJOCO_TO_OPTICAL
        return cls(rot, np.asarray(cam_xpos, float).copy())

    def world_to_optical(self, points: np.ndarray) -> np.ndarray:
        """Nx3 world points to the optical frame."""
        return (np.asarray(points, float) - self.translation) @ self.rotation

    def optical_to_world(self, points: np.ndarray) -> np.ndarray:
        """Nx3 optical-frame points to world."""
        return np.asarray(points, float) @ self.rotation.T + self.translation

    def quaternion_xyzw(self) -> Tuple[float, float, float, float]:
        """Rotation as a ROS (x, y, z, w) quaternion."""
        return matrix_to_quat_xyzw(self.rotation)


def look_at_optical_pose(position: Tuple[float, float, float],
                         target: Tuple[float, float, float]) -> OpticalPose:
    """Return the optical pose of a camera at ``position`` aimed at ``target`` (z up world).

    The same pose MuJoCo computes for the scene's camera (``scene.look_at_xyaxes``), without
    MuJoCo: it is what the planner's static camera-to-world transform must be, also for
    Isaac Sim, whose standalone script places its camera the same way.
    """
    pos = np.asarray(position, float)
    fwd = np.asarray(target, float) - pos
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    if np.linalg.norm(right) < 1e-6:  # looking straight down: image x along world x
        right = np.array([1.0, 0.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    return OpticalPose(np.stack([right, down, fwd], axis=1), pos)


def project(points_world: np.ndarray, pose: OpticalPose,
            intr: Intrinsics) -> Tuple[np.ndarray, np.ndarray]:
    """Pixels (Nx2, ROS convention) and depths (N, metres along z) of world points."""
    p = pose.world_to_optical(np.atleast_2d(points_world))
    z = p[:, 2]
    with np.errstate(divide='ignore', invalid='ignore'):
        u = intr.fx * p[:, 0] / z + intr.cx
        v = intr.fy * p[:, 1] / z + intr.cy
    return np.stack([u, v], axis=1), z


def pixel_to_model(px: np.ndarray, intr: Intrinsics) -> np.ndarray:
    """Native pixels to the model's 0-1000 coordinates (value = pixel / size * 1000)."""
    px = np.atleast_2d(np.asarray(px, float))
    return np.stack([px[:, 0] / intr.width * 1000.0, px[:, 1] / intr.height * 1000.0], axis=1)


def matrix_to_quat_xyzw(rot: np.ndarray) -> Tuple[float, float, float, float]:
    """Rotation matrix to a unit quaternion (x, y, z, w), w >= 0 (Shepperd's method)."""
    m = np.asarray(rot, float)
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = math.sqrt(tr + 1.0) * 2
        w, x = 0.25 * s, (m[2, 1] - m[1, 2]) / s
        y, z = (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        w, x = (m[2, 1] - m[1, 2]) / s, 0.25 * s
        y, z = (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s
    elif m[1, 1] > m[2, 2]:
        s = math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        w, x = (m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s
        y, z = 0.25 * s, (m[1, 2] + m[2, 1]) / s
    else:
        s = math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        w, x = (m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s
        y, z = (m[1, 2] + m[2, 1]) / s, 0.25 * s
    q = np.array([x, y, z, w])
    q /= np.linalg.norm(q)
    if q[3] < 0:
        q = -q
    return cast(Tuple[float, float, float, float], tuple(float(c) for c in q))


def quat_xyzw_to_matrix(q: Tuple[float, float, float, float]) -> np.ndarray:
    """Convert a quaternion (x, y, z, w) to a rotation matrix; normalises its input."""
    x, y, z, w = np.asarray(q, float) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])
