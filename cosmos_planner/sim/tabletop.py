"""``TabletopSim``: the MuJoCo tabletop task without ROS.

One object owns the MuJoCo model, data and renderer; the sim node, the benchmark and the
tests drive it directly. Time is MuJoCo's ``data.time`` (sim seconds since the last
reset). The model is compiled once; a reset moves the basket and objects to the new
seed's layout, so the renderer (an EGL context) is created once and closed explicitly.

Not thread-safe. An EGL context can be current in one thread only, so the renderer is
created on the first render, in the thread that renders, and rendering from any other
thread raises ``ConfigError`` instead of failing deep inside EGL (``EGL_BAD_ACCESS``).
"""

import threading
from typing import Dict, List, Optional

import numpy as np

from cosmos_planner.errors import ConfigError
from cosmos_planner.sim import scene
from cosmos_planner.sim.camera import Intrinsics, OpticalPose, pixel_to_model, project
from cosmos_planner.sim.config import ObjectSpec, SimConfig
from cosmos_planner.sim.layout import SceneLayout, sample_layout
from cosmos_planner.sim.mujoco_gl import import_mujoco
from cosmos_planner.sim.success import evaluate, in_basket, TaskState

#: Capture region between the fingers, in the gripper frame relative to the TCP (metres).
CAPTURE_Y = 0.03
CAPTURE_Z = (-0.04, 0.05)


class TabletopSim:
    """Physics, rendering, Cartesian gripper, grasping and success check of the task."""

    def __init__(self, cfg: SimConfig, seed: Optional[int] = None, render: bool = True) -> None:
        self.cfg = cfg
        self._mj = import_mujoco()
        self.layout: SceneLayout = sample_layout(cfg.seed if seed is None else seed, cfg)
        xml = scene.build_mjcf(self.layout, cfg)
        try:
            self.model = self._mj.MjModel.from_xml_string(xml)
        except ValueError as exc:  # MuJoCo reports compile errors as ValueError
            raise ConfigError(f'the sim scene does not compile: {exc}') from None
        self.data = self._mj.MjData(self.model)
        m = self.model
        self._cam_id = m.camera(scene.CAMERA_NAME).id
        self._mocap_id = int(m.body(scene.MOCAP_BODY).mocapid[0])
        self._gripper_body = m.body(scene.GRIPPER_BODY).id
        self._gripper_qadr = int(m.jnt_qposadr[m.joint('gripper_joint').id])
        self._basket_body = m.body(scene.BASKET_BODY).id
        self._obj_body = {o.name: m.body(o.name).id for o in cfg.objects}
        self._obj_qadr = {o.name: int(m.jnt_qposadr[m.joint(f'{o.name}_joint').id])
                          for o in cfg.objects}
        self._obj_dadr = {o.name: int(m.jnt_dofadr[m.joint(f'{o.name}_joint').id])
                          for o in cfg.objects}
        self._grasp_eq = {o.name: m.equality(f'{scene.GRASP_PREFIX}{o.name}').id
                          for o in cfg.objects}
        self._finger_act = [m.actuator('finger_l_act').id, m.actuator('finger_r_act').id]
        self._finger_range = float(m.jnt_range[m.joint('finger_l_joint').id][1])
        self._specs: Dict[str, ObjectSpec] = {o.name: o for o in cfg.objects}
        self.intrinsics = Intrinsics.from_fovy(cfg.width, cfg.height, cfg.fovy_deg)
        self._render = bool(render)
        self._renderer = None
        self._render_thread: Optional[int] = None
        self.gripper_closed = False
        self.grasped: Optional[str] = None
        self.episode = 0
        self.reset(self.layout.seed)

    # ----------------------------------------------------------------- lifecycle
    def reset(self, seed: int) -> SceneLayout:
        """Start a new episode: time back to zero, new layout for ``seed``, gripper open."""
        mj, m, d = self._mj, self.model, self.data
        self.layout = sample_layout(seed, self.cfg)
        mj.mj_resetData(m, d)
        m.body_pos[self._basket_body] = (self.layout.basket.x, self.layout.basket.y, 0.0)
        for name, place in self.layout.objects.items():
            adr = self._obj_qadr[name]
            z = self._specs[name].half_height + 0.0005
            d.qpos[adr:adr + 3] = (place.x, place.y, z)
            d.qpos[adr + 3:adr + 7] = (np.cos(place.yaw / 2), 0.0, 0.0, np.sin(place.yaw / 2))
        start = np.asarray(self.layout.gripper_start, float)
        d.mocap_pos[self._mocap_id] = start
        d.mocap_quat[self._mocap_id] = (1.0, 0.0, 0.0, 0.0)
        d.qpos[self._gripper_qadr:self._gripper_qadr + 3] = start
        d.qpos[self._gripper_qadr + 3:self._gripper_qadr + 7] = (1.0, 0.0, 0.0, 0.0)
        d.eq_active[:] = m.eq_active0
        for eq in self._grasp_eq.values():
            d.eq_active[eq] = 0
        d.ctrl[self._finger_act] = 0.0
        self.gripper_closed = False
        self.grasped = None
        self.episode += 1
        mj.mj_forward(m, d)
        return self.layout

    def close(self) -> None:
        """Release the EGL renderer now (call it from the rendering thread)."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
            self._render_thread = None

    def __enter__(self) -> 'TabletopSim':
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- stepping
    @property
    def time(self) -> float:
        """Sim seconds since the last reset."""
        return float(self.data.time)

    @property
    def time_ns(self) -> int:
        return int(round(self.data.time * 1e9))

    def set_ee_target(self, position: np.ndarray) -> None:
        """Command the tool centre point (between the fingertips) to a world position."""
        pos = np.asarray(position, float).reshape(3)
        if not np.all(np.isfinite(pos)):
            raise ConfigError(f'end-effector target is not finite: {pos}')
        self.data.mocap_pos[self._mocap_id] = pos

    def ee_target(self) -> np.ndarray:
        return self.data.mocap_pos[self._mocap_id].copy()

    def ee_position(self) -> np.ndarray:
        """Where the tool centre point is now (it lags the target slightly)."""
        return self.data.xpos[self._gripper_body].copy()

    def set_gripper(self, closed: bool) -> None:
        """Open or close; closing with an object between the fingers grasps it."""
        closed = bool(closed)
        if closed and not self.gripper_closed:
            self._try_grasp()
        elif not closed and self.gripper_closed:
            self._release()
        self.gripper_closed = closed

    def step(self, n_control: int = 1) -> None:
        """Advance ``n_control`` control ticks of physics (``cfg.control_dt`` each)."""
        self._mj.mj_step(self.model, self.data, nstep=self.cfg.steps_per_control * n_control)

    # ----------------------------------------------------------------- grasping
    def _capture_candidates(self) -> List[tuple]:
        d = self.data
        rot = d.xmat[self._gripper_body].reshape(3, 3)
        tcp = d.xpos[self._gripper_body]
        out = []
        for name, body in self._obj_body.items():
            local = rot.T @ (d.xpos[body] - tcp)
            if abs(local[0]) <= self.cfg.finger_open and abs(local[1]) <= CAPTURE_Y \
                    and CAPTURE_Z[0] <= local[2] <= CAPTURE_Z[1]:
                out.append((float(np.linalg.norm(local)), name))
        return sorted(out)

    def _try_grasp(self) -> None:
        mj, m, d = self._mj, self.model, self.data
        candidates = self._capture_candidates()
        finger = self._finger_range
        if candidates:
            name = candidates[0][1]
            body = self._obj_body[name]
            g_rot = d.xmat[self._gripper_body].reshape(3, 3)
            rel_pos = g_rot.T @ (d.xpos[body] - d.xpos[self._gripper_body])
            g_quat_inv = np.zeros(4)
            mj.mju_negQuat(g_quat_inv, d.xquat[self._gripper_body])
            rel_quat = np.zeros(4)
            mj.mju_mulQuat(rel_quat, g_quat_inv, d.xquat[body])
            eq = self._grasp_eq[name]
            # Weld data: anchor(3), body2 pose in body1's frame (pos 3, quat wxyz 4), scale.
            m.eq_data[eq, 3:6] = rel_pos
            m.eq_data[eq, 6:10] = rel_quat
            d.eq_active[eq] = 1
            self.grasped = name
            spec = self._specs[name]
            half_width = min(spec.size[0], spec.size[1]) if spec.shape == 'box' else spec.size[0]
            finger = max(0.0, self.cfg.finger_open - half_width - 0.001)
        d.ctrl[self._finger_act] = min(finger, self._finger_range)

    def _release(self) -> None:
        if self.grasped is not None:
            self.data.eq_active[self._grasp_eq[self.grasped]] = 0
            self.grasped = None
        self.data.ctrl[self._finger_act] = 0.0

    # ----------------------------------------------------------------- state
    def object_position(self, name: str) -> np.ndarray:
        if name not in self._obj_body:
            raise ConfigError(f'unknown object {name!r}; objects: {sorted(self._obj_body)}')
        return self.data.xpos[self._obj_body[name]].copy()

    def object_speed(self, name: str) -> float:
        adr = self._obj_dadr[name]
        return float(np.linalg.norm(self.data.qvel[adr:adr + 3]))

    def basket_center(self) -> np.ndarray:
        return self.data.xpos[self._basket_body].copy()

    def in_basket(self, name: str) -> bool:
        """Tell whether the object's centre is inside the basket's inner volume."""
        return in_basket(self.object_position(name), self.basket_center(), self.cfg)

    def evaluate(self) -> TaskState:
        """Success = target inside the basket, released, at rest; fallen = off the table."""
        name = self.cfg.target
        return evaluate(self.time, self.object_position(name), self.object_speed(name),
                        self.basket_center(), self.grasped, self.cfg)

    # ----------------------------------------------------------------- camera
    def optical_pose(self) -> OpticalPose:
        """Return the camera's optical frame (z forward, x right, y down) in ``world``."""
        return OpticalPose.from_mujoco(self.data.cam_xpos[self._cam_id],
                                       self.data.cam_xmat[self._cam_id])

    def _require_renderer(self):
        if not self._render:
            raise ConfigError('this TabletopSim was created with render=False')
        me = threading.get_ident()
        if self._renderer is None:
            self._renderer = self._mj.Renderer(self.model, self.cfg.height, self.cfg.width)
            self._render_thread = me
        elif self._render_thread != me:
            raise ConfigError('TabletopSim renders only from the thread that rendered first '
                              '(its EGL context is current there)')
        return self._renderer

    def render_rgb(self) -> np.ndarray:
        """HxWx3 uint8 RGB from ``sim_camera`` (a fresh array, safe to keep)."""
        r = self._require_renderer()
        r.update_scene(self.data, camera=self._cam_id)
        return r.render().copy()

    def render_depth(self) -> np.ndarray:
        """Render float32 depth (HxW), metres along the optical axis, NaN where nothing is hit."""
        r = self._require_renderer()
        r.enable_depth_rendering()
        try:
            r.update_scene(self.data, camera=self._cam_id)
            depth = r.render().astype(np.float32, copy=True)
        finally:
            r.disable_depth_rendering()
        far = float(self.model.vis.map.zfar * self.model.stat.extent)
        depth[depth >= 0.999 * far] = np.nan
        return depth

    def ground_truth(self) -> dict:
        """Return what the scripted expert may know: poses in world and 0-1000 image coords.

        A plain dict (JSON-ready) so it crosses process boundaries unchanged; see
        ``cosmos_planner.sim.ground_truth`` for its schema and channel.
        """
        pose = self.optical_pose()
        intr = self.intrinsics

        def image(points: np.ndarray) -> dict:
            px, z = project(points, pose, intr)
            return {'pixel': px.tolist(), 'point_2d': pixel_to_model(px, intr).tolist(),
                    'depth': z.tolist()}

        objects = {}
        for name, spec in self._specs.items():
            pos = self.object_position(name)
            objects[name] = {'label': spec.label, 'position': pos.tolist(),
                             'half_height': spec.half_height, **image(pos)}
        basket = self.basket_center()
        floor = basket + np.array([0.0, 0.0, self.cfg.basket_wall_thickness])
        ee = self.ee_position()
        return {
            'time_s': self.time, 'episode': self.episode, 'seed': self.layout.seed,
            'target': self.cfg.target, 'world_frame': self.cfg.world_frame_id,
            'camera': {'frame_id': self.cfg.camera_frame_id, 'width': intr.width,
                       'height': intr.height, 'K': intr.K.tolist(),
                       'translation': pose.translation.tolist(),
                       'quaternion_xyzw': list(pose.quaternion_xyzw())},
            'gripper': {'position': ee.tolist(), 'closed': self.gripper_closed,
                        'grasped': self.grasped, **image(ee)},
            'objects': objects,
            'basket': {'position': basket.tolist(), 'half': list(self.cfg.basket_half),
                       'wall': self.cfg.basket_wall,
                       'floor': self.cfg.basket_wall_thickness, **image(floor)},
            'state': self.evaluate().as_dict(),
        }
