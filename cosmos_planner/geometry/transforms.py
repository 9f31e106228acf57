"""Rigid transforms (rotation + translation) for grounding without tf2.

``Transform`` follows TF's convention so a value read from ``tf2_ros`` drops straight in:
``T_target_source = buffer.lookup_transform(target, source, t)`` maps points expressed in
``source`` into ``target`` (``p_target = R p_source + t``); its translation and rotation are
the pose of the source frame in the target frame. Quaternions are ``(x, y, z, w)`` as in
``geometry_msgs``. Kept in pure numpy because tf2_ros is not installable on pip-only machines.
"""

from dataclasses import dataclass
from typing import Sequence, Tuple, TYPE_CHECKING, Union

import numpy as np

from cosmos_planner.errors import ConfigError

#: A vector given as a list/tuple of floats or as a numpy array (read with ``np.asarray``).
Vector = Union[Sequence[float], np.ndarray]

#: Quaternions shorter than this cannot be normalised into a rotation.
_MIN_QUAT_NORM = 1e-6


def normalize_quaternion(q_xyzw: Vector, name: str = 'quaternion') -> np.ndarray:
    """Return ``q`` as a unit quaternion; raise ConfigError naming ``name`` if degenerate.

    Parameters arrive as hand-typed lists, so a zero or non-finite quaternion is a
    configuration mistake that must be reported, not silently turned into NaN rotations.
    """
    q = np.asarray(q_xyzw, dtype=np.float64).reshape(-1)
    if q.shape != (4,):
        raise ConfigError(f'{name} must have 4 values (x, y, z, w), got {q.size}')
    if not np.all(np.isfinite(q)):
        raise ConfigError(f'{name} has non-finite values: {q.tolist()}')
    norm = float(np.linalg.norm(q))
    if norm < _MIN_QUAT_NORM:
        raise ConfigError(f'{name} has zero length: {q.tolist()}')
    return q / norm


def quaternion_to_matrix(q_xyzw: Vector) -> np.ndarray:
    """3x3 rotation matrix of a (normalised) ``(x, y, z, w)`` quaternion."""
    x, y, z, w = normalize_quaternion(q_xyzw)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def matrix_to_quaternion(rot: np.ndarray) -> np.ndarray:
    """``(x, y, z, w)`` quaternion (w >= 0) of a 3x3 rotation matrix (Shepperd's method)."""
    m = np.asarray(rot, dtype=np.float64)
    if m.shape != (3, 3) or not np.all(np.isfinite(m)):
        raise ConfigError(f'rotation must be a finite 3x3 matrix, got shape {m.shape}')
    if not np.allclose(m @ m.T, np.eye(3), atol=1e-6) or np.linalg.det(m) < 0:
        raise ConfigError('rotation matrix is not orthonormal with determinant +1')
    tr = np.trace(m)
    if tr > 0:
        s = 2.0 * np.sqrt(tr + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4, (m[1, 0] - m[0, 1]) / s]
    out = np.asarray(q)
    out /= np.linalg.norm(out)
    return -out if out[3] < 0 else out


def quaternion_multiply(a_xyzw: Vector, b_xyzw: Vector) -> np.ndarray:
    """Hamilton product ``a * b`` (apply ``b`` first, then ``a``), both ``(x, y, z, w)``."""
    ax, ay, az, aw = np.asarray(a_xyzw, dtype=np.float64)
    bx, by, bz, bw = np.asarray(b_xyzw, dtype=np.float64)
    return np.array([
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    ])


@dataclass(frozen=True, init=False)
class Transform:
    """Rigid transform ``p_target = R(q) p_source + t`` (TF convention, see module doc)."""

    translation: Tuple[float, float, float]
    quaternion_xyzw: Tuple[float, float, float, float]
    if TYPE_CHECKING:  # set in __init__; not a dataclass field (no eq/repr/hash)
        _rot: np.ndarray

    def __init__(self, translation: Vector = (0.0, 0.0, 0.0),
                 quaternion_xyzw: Vector = (0.0, 0.0, 0.0, 1.0)) -> None:
        t = np.asarray(translation, dtype=np.float64).reshape(-1)
        if t.shape != (3,) or not np.all(np.isfinite(t)):
            raise ConfigError(f'translation must be 3 finite values, got {list(translation)}')
        q = normalize_quaternion(quaternion_xyzw, 'rotation quaternion')
        object.__setattr__(self, 'translation', tuple(float(v) for v in t))
        object.__setattr__(self, 'quaternion_xyzw', tuple(float(v) for v in q))
        object.__setattr__(self, '_rot', quaternion_to_matrix(q))

    @classmethod
    def identity(cls) -> 'Transform':
        """Return the identity: output in the source frame itself."""
        return cls()

    @classmethod
    def from_matrix(cls, matrix: np.ndarray) -> 'Transform':
        """Build from a 4x4 homogeneous matrix (bottom row must be 0 0 0 1)."""
        m = np.asarray(matrix, dtype=np.float64)
        if m.shape != (4, 4) or not np.allclose(m[3], [0, 0, 0, 1]):
            raise ConfigError('transform matrix must be 4x4 with bottom row 0 0 0 1')
        return cls(m[:3, 3], matrix_to_quaternion(m[:3, :3]))

    @property
    def rotation(self) -> np.ndarray:
        """3x3 rotation matrix (a copy: the transform stays immutable)."""
        return self._rot.copy()

    @property
    def matrix(self) -> np.ndarray:
        """4x4 homogeneous matrix."""
        m = np.eye(4)
        m[:3, :3] = self._rot
        m[:3, 3] = self.translation
        return m

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Transform points: shape (3,) or (N, 3) in, same shape out."""
        p = np.asarray(points, dtype=np.float64)
        if p.shape[-1:] != (3,) or p.ndim > 2:
            raise ValueError(f'points must have shape (3,) or (N, 3), got {p.shape}')
        return p @ self._rot.T + np.asarray(self.translation)

    def rotate(self, vectors: np.ndarray) -> np.ndarray:
        """Rotate direction vectors (no translation): shape (3,) or (N, 3)."""
        v = np.asarray(vectors, dtype=np.float64)
        if v.shape[-1:] != (3,) or v.ndim > 2:
            raise ValueError(f'vectors must have shape (3,) or (N, 3), got {v.shape}')
        return v @ self._rot.T

    def inverse(self) -> 'Transform':
        """``T_source_target`` from ``T_target_source``."""
        rot_t = self._rot.T
        x, y, z, w = self.quaternion_xyzw
        return Transform(-rot_t @ np.asarray(self.translation), (-x, -y, -z, w))

    def compose(self, other: 'Transform') -> 'Transform':
        """Chain two transforms, applying ``other`` first (``T_a_c = T_a_b * T_b_c``)."""
        t = self._rot @ np.asarray(other.translation) + np.asarray(self.translation)
        return Transform(t, quaternion_multiply(self.quaternion_xyzw, other.quaternion_xyzw))

    def is_identity(self, atol: float = 1e-12) -> bool:
        """Whether this is the identity (used to skip work and to label outputs)."""
        return bool(np.allclose(self.matrix, np.eye(4), atol=atol))
