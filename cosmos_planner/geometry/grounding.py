"""Ground a plan's pixel points in 3D and lift them to gripper waypoints.

Two stages, because a 2D point on the table says nothing about how high the gripper is:

1. **Surface.** Each pixel is undistorted with the camera's intrinsics (``CameraModel``) into
   a ray in the camera optical frame, then put on the scene surface, either
   - ``depth``: the registered depth image (z-depth along the optical axis, same optical
     frame as the colour camera) whose stamp lies within ``depth_sync_tolerance_s`` of the
     plan's frame; the depth is the median of the valid values (finite, inside
     ``[depth_min_m, depth_max_m]``; 0 and NaN are holes) in a ``depth_patch_px`` square
     around the pixel; the point is ``depth * (x, y, 1)``; or
   - ``plane``: the plane ``a x + b y + c z + d = 0`` given in the target frame (sloped
     planes allowed), intersected with the ray after transforming it into that frame.
   Then everything is expressed in the target frame through ``T_target_camera`` (a static
   ``Transform``, TF convention), or left in the camera optical frame when
   ``target_frame`` is empty.

2. **Lift rule.** Each surface point becomes a waypoint ``surface + h * up`` where ``up`` is
   a unit vector in the target frame (``heights.up``, default +z: lifting is vertical, even
   above a sloped table) and ``h`` depends on the point's role:

   - *With gripper labels* (any point carries ``gripper: open|close``), roles follow the
     gripper state, starting open: points before the first ``close`` are **approach**
     points (``approach_m``); a ``close`` while open is the **grasp** (``grasp_offset_m``);
     points while closed are **carry** points (``carry_m``; a repeated ``close`` is carry
     too); an ``open`` while closed is the **release** (``place_m``); points after a release
     are **retreat** points (``approach_m``), and a later ``close`` starts a new grasp.
     An ``open`` while already open is an approach/retreat point that keeps its command.
   - *Without labels* (NVIDIA's bare list of ``point_2d``): the first point is the
     **start** (the current gripper; its waypoint is ``ee_position`` when that is given,
     else the surface point at ``approach_m``), the second is the **grasp** (``close``), the
     last is the **release** (``open``, when there are 3 or more points), the points between
     are **carry** points. One point is just the start; two are start and grasp.
   - *Approach waypoints*: before every grasp a **pre_grasp** waypoint is inserted above the
     grasp's surface point at ``approach_m``, and before every release a **pre_release**
     waypoint above the release's surface point at ``approach_m``, so the gripper descends
     vertically onto the object and onto the place spot. An insertion is skipped when the
     waypoint before it is already there (within 1 mm). Inserted waypoints repeat the pixel
     of the point they stand above and are marked ``inserted``.
   - The gripper is assumed open before the first command.

Orientation is one configured tool orientation (``tool_orientation_xyzw``, in the output
frame) for every waypoint: a 2D trajectory says nothing about wrist rotation.

A point that cannot be grounded (undistortion fails, no valid depth in its patch, ray
parallel to or pointing away from the plane) fails the whole plan with a
``PointGroundingError`` naming the point index and the cause.
"""

from dataclasses import dataclass
import math
from typing import cast, List, Optional, Sequence, Tuple, Union

import numpy as np

from cosmos_planner.geometry.camera_model import CameraModel, PointGroundingError
from cosmos_planner.errors import ConfigError, GroundingError
from cosmos_planner.frames.types import DepthFrame
from cosmos_planner.geometry.transforms import normalize_quaternion, Transform

__all__ = [
    'GroundingConfig', 'GroundedPlan', 'Grounder', 'PointGroundingError', 'Waypoint',
    'assign_roles', 'lift_waypoints', 'ROLES',
]

MODES = ('depth', 'plane')
#: Roles a waypoint can have; the first six come from model points, the last two are inserted.
ROLES = ('start', 'approach', 'grasp', 'carry', 'release', 'retreat', 'pre_grasp',
         'pre_release')
#: Plan pixel (0 at the image edge) minus this is the OpenCV pixel (0 at the first centre).
PIXEL_EDGE_TO_CENTRE = 0.5
#: An inserted approach waypoint this close to the previous waypoint is redundant.
_MERGE_TOL_M = 1e-3


def _vec(value: Sequence[float], n: int, name: str) -> Tuple[float, ...]:
    """Validate a fixed-length finite vector parameter, naming it on error."""
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f'{name} must be {n} numbers: {exc}') from None
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise ConfigError(f'{name} must be {n} finite numbers, got {list(np.atleast_1d(value))}')
    return tuple(float(v) for v in arr)


@dataclass(frozen=True)
class GroundingConfig:
    """How pixels become 3D waypoints; validated on construction (ConfigError names the field).

    Defaults describe a coherent scene: a camera 1 m above a table, looking straight down,
    the table being the plane z = 0 of ``world``.
    """

    mode: str = 'plane'
    depth_patch_px: int = 5
    depth_sync_tolerance_s: float = 0.05
    depth_min_m: float = 0.05
    depth_max_m: float = 10.0
    plane: Tuple[float, float, float, float] = (0.0, 0.0, 1.0, 0.0)
    approach_m: float = 0.10
    grasp_offset_m: float = 0.02
    carry_m: float = 0.15
    place_m: float = 0.04
    up: Tuple[float, float, float] = (0.0, 0.0, 1.0)
    insert_approach: bool = True
    tool_orientation_xyzw: Tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    target_frame: str = 'world'
    target_translation: Tuple[float, float, float] = (0.0, 0.0, 1.0)
    target_rotation_xyzw: Tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f'ground.mode must be one of {MODES}, got {self.mode!r}')
        if not isinstance(self.depth_patch_px, int) or isinstance(self.depth_patch_px, bool) \
                or not 1 <= self.depth_patch_px <= 101 or self.depth_patch_px % 2 == 0:
            raise ConfigError(f'ground.depth_patch_px must be an odd integer 1-101 (the patch '
                              f'is centred on the pixel), got {self.depth_patch_px!r}')
        _nonneg(self.depth_sync_tolerance_s, 'ground.depth_sync_tolerance_s')
        _positive(self.depth_min_m, 'ground.depth_min_m')
        _positive(self.depth_max_m, 'ground.depth_max_m')
        if not self.depth_max_m > self.depth_min_m:
            raise ConfigError('ground.depth_max_m must be greater than ground.depth_min_m')
        plane = _vec(self.plane, 4, 'ground.plane')
        if np.linalg.norm(plane[:3]) < 1e-9:
            raise ConfigError('ground.plane normal (a, b, c) must not be zero')
        object.__setattr__(self, 'plane', plane)
        for name in ('approach_m', 'grasp_offset_m', 'carry_m', 'place_m'):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not -1.0 <= value <= 2.0:
                raise ConfigError(f'heights.{name} must be a number in [-1, 2] m, got {value!r}')
            object.__setattr__(self, name, float(value))
        up = np.asarray(_vec(self.up, 3, 'heights.up'))
        if np.linalg.norm(up) < 1e-9:
            raise ConfigError('heights.up must not be zero')
        object.__setattr__(self, 'up', tuple(float(v) for v in up / np.linalg.norm(up)))
        if not isinstance(self.insert_approach, bool):
            raise ConfigError(f'heights.insert_approach must be a bool, got '
                              f'{self.insert_approach!r}')
        object.__setattr__(self, 'tool_orientation_xyzw', tuple(float(v) for v in (
            _quat(self.tool_orientation_xyzw, 'tool.orientation_xyzw'))))
        if not isinstance(self.target_frame, str):
            raise ConfigError(f'target.frame must be a string, got {self.target_frame!r}')
        object.__setattr__(self, 'target_translation',
                           _vec(self.target_translation, 3, 'target.translation'))
        object.__setattr__(self, 'target_rotation_xyzw', tuple(float(v) for v in (
            _quat(self.target_rotation_xyzw, 'target.rotation_xyzw'))))

    @property
    def target_transform(self) -> Transform:
        """``T_target_camera``: identity when the output stays in the camera frame."""
        if not self.target_frame:
            return Transform.identity()
        return Transform(self.target_translation, self.target_rotation_xyzw)


def _quat(value: Sequence[float], name: str) -> np.ndarray:
    _vec(value, 4, name)
    return normalize_quaternion(value, name)


def _positive(value: float, name: str) -> None:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f'{name} must be a positive number, got {value!r}')


def _nonneg(value: float, name: str) -> None:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigError(f'{name} must be a non-negative number, got {value!r}')


@dataclass(frozen=True)
class Waypoint:
    """One gripper waypoint: position in the output frame plus where it came from."""

    position: Tuple[float, float, float]
    role: str
    gripper: Optional[str]
    source_index: int
    pixel: Tuple[float, float]
    point_2d: Tuple[float, float]
    label: str
    inserted: bool = False


@dataclass(frozen=True)
class GroundedPlan:
    """Waypoints in ``frame_id`` plus the surface points they were lifted from."""

    frame_id: str
    waypoints: Tuple[Waypoint, ...]
    surface_points: np.ndarray
    orientation_xyzw: Tuple[float, float, float, float]
    labeled: bool
    stamp_ns: int = 0

    @property
    def positions(self) -> np.ndarray:
        """(N, 3) waypoint positions."""
        return np.array([w.position for w in self.waypoints], dtype=np.float64).reshape(-1, 3)

    @property
    def gripper(self) -> Tuple[Optional[str], ...]:
        """Gripper command per waypoint ('open', 'close' or None)."""
        return tuple(w.gripper for w in self.waypoints)


def assign_roles(gripper: Sequence[Optional[str]]) -> List[Tuple[str, Optional[str]]]:
    """Apply the lift rule's role assignment (module doc) to per-point gripper labels.

    Returns ``(role, gripper_command)`` per model point. All-None labels mean NVIDIA's bare
    list, whose commands are implied by position.
    """
    labels = list(gripper)
    for i, g in enumerate(labels):
        if g not in (None, 'open', 'close'):
            raise GroundingError(f'point {i}: unknown gripper label {g!r}')
    n = len(labels)
    if not any(labels):
        roles: List[Tuple[str, Optional[str]]] = []
        for i in range(n):
            if i == 0:
                roles.append(('start', None))
            elif i == 1:
                roles.append(('grasp', 'close'))
            elif i == n - 1:
                roles.append(('release', 'open'))
            else:
                roles.append(('carry', None))
        return roles
    roles = []
    holding = False
    released = False
    for g in labels:
        if g == 'close' and not holding:
            roles.append(('grasp', g))
            holding = True
        elif g == 'open' and holding:
            roles.append(('release', g))
            holding, released = False, True
        elif holding:
            roles.append(('carry', g))
        else:
            roles.append(('retreat' if released else 'approach', g))
    return roles


def lift_waypoints(surface: np.ndarray, roles: Sequence[Tuple[str, Optional[str]]],
                   config: GroundingConfig, pixels: Sequence[Tuple[float, float]],
                   points_2d: Sequence[Tuple[float, float]], labels: Sequence[str],
                   ee_position: Optional[Sequence[float]] = None) -> Tuple[Waypoint, ...]:
    """Lift surface points (N, 3, output frame) to waypoints by role (module doc)."""
    surface = np.asarray(surface, dtype=np.float64).reshape(-1, 3)
    up = np.asarray(config.up)
    height = {'start': config.approach_m, 'approach': config.approach_m,
              'grasp': config.grasp_offset_m, 'carry': config.carry_m,
              'release': config.place_m, 'retreat': config.approach_m}
    ee = None
    if ee_position is not None:
        ee = np.asarray(ee_position, dtype=np.float64).reshape(-1)
        if ee.shape != (3,) or not np.all(np.isfinite(ee)):
            raise GroundingError(f'ee_position must be 3 finite values, got {ee_position!r}')
    out: List[Waypoint] = []

    def add(pos: np.ndarray, role: str, cmd: Optional[str], i: int, inserted: bool,
            label: str) -> None:
        out.append(Waypoint(cast(Tuple[float, float, float], tuple(float(v) for v in pos)),
                            role, cmd, i,
                            cast(Tuple[float, float], tuple(float(v) for v in pixels[i])),
                            cast(Tuple[float, float], tuple(float(v) for v in points_2d[i])),
                            label, inserted))

    for i, (role, cmd) in enumerate(roles):
        if config.insert_approach and role in ('grasp', 'release'):
            above = surface[i] + config.approach_m * up
            if not out or np.linalg.norm(np.asarray(out[-1].position) - above) > _MERGE_TOL_M:
                kind = 'pre_grasp' if role == 'grasp' else 'pre_release'
                add(above, kind, None, i, True, f'{kind} approach (inserted)')
        if role == 'start' and ee is not None:
            pos = ee
        else:
            pos = surface[i] + height[role] * up
        add(pos, role, cmd, i, False, labels[i])
    return tuple(out)


class Grounder:
    """Turn pixel points into surface points and waypoints for one configuration."""

    def __init__(self, config: GroundingConfig) -> None:
        self.config = config
        self._t_target_camera = config.target_transform

    def output_frame(self, camera: CameraModel) -> str:
        """Frame the waypoints are expressed in (target frame, else the camera's)."""
        return self.config.target_frame or camera.frame_id

    def surface_points(self, pixels: np.ndarray, camera: CameraModel,
                       depth: Optional[DepthFrame] = None,
                       stamp_ns: Optional[int] = None) -> np.ndarray:
        """Surface points (N, 3) in the output frame for native-resolution plan pixels (N, 2).

        Plan pixels are continuous with 0 at the image's left/top edge (the parser's
        convention); OpenCV and CameraInfo put 0 at the centre of the first pixel, so half a
        pixel is subtracted here, the one place the two conventions meet.
        """
        px = np.asarray(pixels, dtype=np.float64).reshape(-1, 2) - PIXEL_EDGE_TO_CENTRE
        outside: Union[np.ndarray, List[int]] = (
            np.flatnonzero(~camera.contains(px, margin=0.5 + 1e-6)) if len(px) else [])
        if len(outside):
            i = int(outside[0])
            edge_px = (px[i] + PIXEL_EDGE_TO_CENTRE).tolist()
            raise PointGroundingError(i, 'outside_image', f'pixel {edge_px} is outside '
                                      f'the {camera.width}x{camera.height} image')
        rays = camera.pixel_to_ray(px)
        if self.config.mode == 'depth':
            return self._from_depth(px, rays, camera, depth, stamp_ns)
        return self._from_plane(rays)

    def _from_depth(self, px: np.ndarray, rays: np.ndarray, camera: CameraModel,
                    depth: Optional[DepthFrame], stamp_ns: Optional[int]) -> np.ndarray:
        cfg = self.config
        if depth is None:
            raise GroundingError('ground.mode is depth but no depth image is available')
        if stamp_ns is not None:
            skew_s = abs(depth.stamp_ns - stamp_ns) * 1e-9
            if skew_s > cfg.depth_sync_tolerance_s:
                raise GroundingError(
                    f'depth image is {skew_s:.3f} s away from the plan frame '
                    f'(ground.depth_sync_tolerance_s = {cfg.depth_sync_tolerance_s})')
        if depth.frame_id and camera.frame_id and depth.frame_id != camera.frame_id:
            raise GroundingError(
                f'depth frame {depth.frame_id!r} is not the camera frame {camera.frame_id!r}: '
                'depth must be registered to the colour camera')
        img = np.asarray(depth.depth_m)
        if img.ndim != 2 or img.size == 0:
            raise GroundingError(f'depth image must be 2D, got shape {img.shape}')
        dh, dw = img.shape
        if abs((dw / dh) / (camera.width / camera.height) - 1.0) > 0.01:
            raise GroundingError(f'depth image {dw}x{dh} does not match the camera\'s aspect '
                                 f'({camera.width}x{camera.height}): not registered?')
        sx, sy = dw / camera.width, dh / camera.height
        half = cfg.depth_patch_px // 2
        z = np.empty(len(px))
        for i, (u, v) in enumerate(px):
            cu = min(max(int(round((u + 0.5) * sx - 0.5)), 0), dw - 1)
            cv = min(max(int(round((v + 0.5) * sy - 0.5)), 0), dh - 1)
            patch = img[max(cv - half, 0):cv + half + 1, max(cu - half, 0):cu + half + 1]
            patch = patch.astype(np.float64, copy=False).reshape(-1)
            valid = patch[np.isfinite(patch) & (patch >= cfg.depth_min_m)
                          & (patch <= cfg.depth_max_m)]
            if valid.size == 0:
                raise PointGroundingError(
                    i, 'no_depth', f'no valid depth in the {cfg.depth_patch_px}x'
                    f'{cfg.depth_patch_px} patch at depth pixel ({cu}, {cv}) '
                    f'(holes: 0/NaN or outside [{cfg.depth_min_m}, {cfg.depth_max_m}] m)')
            z[i] = float(np.median(valid))
        return self._t_target_camera.apply(rays * z[:, None])

    def _from_plane(self, rays: np.ndarray) -> np.ndarray:
        plane = np.asarray(self.config.plane)
        normal, offset = plane[:3], plane[3]
        origin = np.asarray(self._t_target_camera.translation)
        dirs = self._t_target_camera.rotate(rays)
        denom = dirs @ normal
        num = -(origin @ normal + offset)
        out = np.empty_like(dirs)
        for i in range(len(dirs)):
            if abs(denom[i]) < 1e-9 * np.linalg.norm(normal) * np.linalg.norm(dirs[i]):
                raise PointGroundingError(i, 'parallel_to_plane',
                                          'camera ray is parallel to the ground plane')
            s = num / denom[i]
            if s <= 0:
                raise PointGroundingError(i, 'plane_behind_camera',
                                          'the ground plane is behind the camera along this ray')
            out[i] = origin + s * dirs[i]
        return out

    def ground(self, pixels: Sequence[Tuple[float, float]],
               points_2d: Sequence[Tuple[float, float]],
               gripper: Sequence[Optional[str]], labels: Sequence[str],
               camera: CameraModel, depth: Optional[DepthFrame] = None,
               stamp_ns: Optional[int] = None,
               ee_position: Optional[Sequence[float]] = None) -> GroundedPlan:
        """Full grounding: surface points, lift rule, approach insertion, orientation."""
        n = len(pixels)
        if n == 0:
            raise GroundingError('the plan has no points to ground')
        if not (len(points_2d) == len(gripper) == len(labels) == n):
            raise GroundingError('pixels, points_2d, gripper and labels differ in length')
        surface = self.surface_points(np.asarray(pixels, dtype=np.float64), camera, depth,
                                      stamp_ns)
        roles = assign_roles(gripper)
        waypoints = lift_waypoints(surface, roles, self.config, pixels, points_2d, labels,
                                   ee_position)
        return GroundedPlan(self.output_frame(camera), waypoints, surface,
                            self.config.tool_orientation_xyzw, labeled=any(gripper),
                            stamp_ns=int(stamp_ns or 0))
