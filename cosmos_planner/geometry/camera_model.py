"""Pinhole camera model from CameraInfo fields: pixels to rays and 3D points to pixels.

Why a class of our own rather than ``image_geometry``: that package is not installable on
pip-only machines, and the grounding stage needs only two operations, both delegated to
OpenCV so the maths matches the calibration tools that produced ``K`` and ``D``:

- ``pixel_to_ray``: undistort (``plumb_bob`` / ``rational_polynomial`` with
  ``cv2.undistortPoints``, ``equidistant`` with ``cv2.fisheye.undistortPoints``) to
  normalised coordinates; the ray is ``(x, y, 1)`` in the camera optical frame (z forward,
  x right, y down), so a z-depth ``d`` gives the point ``d * ray``.
- ``project``: optical-frame points to distorted pixels (``cv2.projectPoints`` /
  ``cv2.fisheye.projectPoints``).

Pixel coordinates follow OpenCV/ROS: the centre of the top-left pixel is ``(0, 0)``.
Undistortion is iterative; every result is re-projected and a pixel whose round trip misses by
more than ``max_reprojection_px`` (far outside the calibrated field) raises GroundingError
naming the point, instead of returning a silently wrong ray.
"""

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from cosmos_planner.errors import ConfigError, GroundingError
from cosmos_planner.geometry.transforms import Vector

#: CameraInfo ``distortion_model`` strings (sensor_msgs/distortion_models.hpp) we support,
#: with the number of coefficients each one takes. Empty D means no distortion.
DISTORTION_MODELS = {
    'plumb_bob': (5,),
    'rational_polynomial': (8,),
    'equidistant': (4,),
    'none': (0,),
}
_PINHOLE = ('plumb_bob', 'rational_polynomial', 'none')


class PointGroundingError(GroundingError):
    """One plan point could not be grounded; ``index`` and ``cause`` say which and why.

    ``cause`` is a short key (``undistort``, ``no_depth``, ``parallel_to_plane``, ...) for
    status messages and counters; the message repeats both for humans.
    """

    def __init__(self, index: int, cause: str, message: str) -> None:
        super().__init__(f'point {index}: {message} [{cause}]')
        self.index = index
        self.cause = cause


#: Iterative undistortion needs many more than OpenCV's default 5 iterations to reach
#: sub-millimetre accuracy at the image corners of a strongly distorted lens.
_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-12)


@dataclass(frozen=True, init=False)
class CameraModel:
    """Intrinsics and distortion of one camera at its native resolution.

    ``K`` is the 3x3 camera matrix (CameraInfo ``k``), ``D`` the distortion coefficients
    (CameraInfo ``d``), ``distortion_model`` the CameraInfo string; an empty D means no
    distortion whatever the model string says, and '' is read as 'none' when D is all
    zeros. ``frame_id`` is the optical frame the rays are expressed in.
    """

    width: int
    height: int
    K: Tuple[float, ...]
    D: Tuple[float, ...]
    distortion_model: str
    frame_id: str
    max_reprojection_px: float

    def __init__(self, width: int, height: int, K: Vector,
                 D: Vector = (), distortion_model: str = 'plumb_bob',
                 frame_id: str = '', max_reprojection_px: float = 0.5) -> None:
        if int(width) <= 0 or int(height) <= 0:
            raise ConfigError(f'camera size must be positive, got {width}x{height}')
        k: np.ndarray = np.asarray(K, dtype=np.float64).reshape(-1)
        if k.size != 9 or not np.all(np.isfinite(k)):
            raise ConfigError(f'camera K must be 9 finite values, got {k.size}')
        k = k.reshape(3, 3)
        if k[0, 0] <= 0 or k[1, 1] <= 0 or not np.allclose(k[2], [0, 0, 1]):
            raise ConfigError(f'camera K is not a camera matrix (fx, fy > 0, last row 0 0 1): '
                              f'{k.tolist()}')
        d = np.asarray(D, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(d)):
            raise ConfigError(f'camera D has non-finite values: {d.tolist()}')
        model = (distortion_model or '').strip().lower()
        if d.size == 0:
            model = 'none'  # drivers of rectified or simulated cameras publish an empty D
        if not model:
            if d.size and np.any(d != 0):
                raise ConfigError('camera D is non-zero but distortion_model is empty')
            model = 'none'
        if model not in DISTORTION_MODELS:
            raise ConfigError(f'unsupported distortion_model {distortion_model!r}; '
                              f'supported: {sorted(DISTORTION_MODELS)}')
        if model == 'none':
            if d.size and np.any(d != 0):
                raise ConfigError('distortion_model none with non-zero D')
            d = np.zeros(0)
        elif model == 'plumb_bob' and d.size in (4, 5):
            d = np.pad(d, (0, 5 - d.size))  # k3 is optional in some calibration files
        elif model == 'rational_polynomial' and d.size in (5, 8, 12, 14):
            d = np.pad(d, (0, max(0, 8 - d.size)))
        elif d.size not in DISTORTION_MODELS[model]:
            raise ConfigError(f'{model} takes {DISTORTION_MODELS[model][0]} coefficients, '
                              f'got {d.size}')
        if not max_reprojection_px > 0:
            raise ConfigError('max_reprojection_px must be positive')
        object.__setattr__(self, 'width', int(width))
        object.__setattr__(self, 'height', int(height))
        object.__setattr__(self, 'K', tuple(float(v) for v in k.reshape(-1)))
        object.__setattr__(self, 'D', tuple(float(v) for v in d))
        object.__setattr__(self, 'distortion_model', model)
        object.__setattr__(self, 'frame_id', frame_id)
        object.__setattr__(self, 'max_reprojection_px', float(max_reprojection_px))

    @property
    def matrix(self) -> np.ndarray:
        """3x3 camera matrix."""
        return np.asarray(self.K, dtype=np.float64).reshape(3, 3)

    @property
    def dist_coeffs(self) -> np.ndarray:
        """Distortion coefficients as OpenCV wants them (empty: no distortion)."""
        return np.asarray(self.D, dtype=np.float64)

    @property
    def size(self) -> Tuple[int, int]:
        """(width, height), the same order as ``Frame.native_size``."""
        return (self.width, self.height)

    def scaled(self, width: int, height: int) -> 'CameraModel':
        """Return this lens for an image resized to ``width`` x ``height`` (binning, resize).

        Distortion is defined in normalised coordinates, so only K scales. A different aspect
        ratio means a crop or the wrong CameraInfo, which cannot be fixed here.
        """
        if (width, height) == self.size:
            return self
        sx, sy = width / self.width, height / self.height
        if abs(sx / sy - 1.0) > 0.01:
            raise GroundingError(
                f'camera_info is {self.width}x{self.height} but the image is {width}x{height}: '
                'aspect ratio differs (crop or wrong camera_info)')
        k = self.matrix
        k[0] *= sx  # plain scaling, as image_geometry does for binning
        k[1] *= sy
        return CameraModel(width, height, k.reshape(-1), self.D, self.distortion_model,
                           self.frame_id, self.max_reprojection_px)

    def undistort(self, pixels: np.ndarray) -> np.ndarray:
        """Distorted pixels (N, 2) to normalised coordinates (N, 2); raises on a bad point."""
        px = _as_points(pixels, 2, 'pixels')
        if px.shape[0] == 0:
            return np.zeros((0, 2))
        src = px.reshape(-1, 1, 2)
        if self.distortion_model == 'equidistant':
            norm = cv2.fisheye.undistortPoints(src, self.matrix, self.dist_coeffs,
                                               criteria=_CRITERIA)
        else:
            norm = cv2.undistortPoints(src, self.matrix, self.dist_coeffs,
                                       criteria=_CRITERIA)
        norm = norm.reshape(-1, 2)
        if self.distortion_model != 'none':
            back = self.project(np.column_stack([norm, np.ones(len(norm))]))
            err = np.linalg.norm(back - px, axis=1)
            bad = np.flatnonzero(~(err <= self.max_reprojection_px))
            if bad.size:
                i = int(bad[0])
                raise PointGroundingError(
                    i, 'undistort', f'pixel {px[i].tolist()} cannot be undistorted (round '
                    f'trip misses by {err[i]:.2f} px; outside the calibrated field?)')
        return norm

    def pixel_to_ray(self, pixels: np.ndarray) -> np.ndarray:
        """Distorted pixels (N, 2) to optical-frame rays (N, 3) with z = 1 (not unit length).

        z = 1 makes z-depth grounding a single multiply: ``point = depth * ray``.
        """
        norm = self.undistort(pixels)
        return np.column_stack([norm, np.ones(len(norm))])

    def project(self, points: np.ndarray) -> np.ndarray:
        """Optical-frame points (N, 3) with z > 0 to distorted pixels (N, 2)."""
        p = _as_points(points, 3, 'points')
        if p.shape[0] == 0:
            return np.zeros((0, 2))
        zero = np.zeros(3)
        if self.distortion_model == 'equidistant':
            px, _ = cv2.fisheye.projectPoints(p.reshape(-1, 1, 3), zero, zero, self.matrix,
                                              self.dist_coeffs)
        else:
            px, _ = cv2.projectPoints(p.reshape(-1, 1, 3), zero, zero, self.matrix,
                                      self.dist_coeffs)
        return px.reshape(-1, 2)

    def contains(self, pixels: np.ndarray, margin: float = 0.5) -> np.ndarray:
        """Boolean mask of pixels inside the image (edges included, up to ``margin``)."""
        px = _as_points(pixels, 2, 'pixels')
        return ((px[:, 0] >= -margin) & (px[:, 0] <= self.width - 1 + margin)
                & (px[:, 1] >= -margin) & (px[:, 1] <= self.height - 1 + margin))


def _as_points(values: np.ndarray, dim: int, name: str) -> np.ndarray:
    """Coerce to a float64 (N, dim) array, raising GroundingError on non-finite values."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1 and arr.size == dim:
        arr = arr.reshape(1, dim)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise GroundingError(f'{name} must have shape (N, {dim}), got {arr.shape}')
    finite = np.all(np.isfinite(arr), axis=1)
    if not np.all(finite):
        i = int(np.flatnonzero(~finite)[0])
        raise PointGroundingError(i, 'not_finite', f'{name} not finite: {arr[i].tolist()}')
    return arr


def camera_model_from_fields(width: int, height: int, k: Sequence[float], d: Sequence[float],
                             distortion_model: str,
                             frame_id: Optional[str] = '') -> CameraModel:
    """Build from CameraInfo-shaped fields (lower-case ``k``/``d`` as in ROS 2 messages)."""
    return CameraModel(width, height, k, d, distortion_model, frame_id or '')
