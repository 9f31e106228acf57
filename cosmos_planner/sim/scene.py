"""MJCF text of the tabletop scene for one layout.

The scene: a table (top surface at z = 0 in ``world``), an open basket, a few free objects,
one camera named like Isaac's default frame, and a Cartesian gripper. The gripper is a
mocap body (the commanded pose) welded to a free, gravity-compensated gripper body, so it
follows targets smoothly with physical dynamics instead of teleporting. Grasping is an
equality weld between the gripper and an object, switched on when the gripper closes with
the object between its fingers (more reliable on CPU physics than finger friction). The
gripper's own geoms do not collide: it is a kinematic tool; grasped objects stay physical
and collide with the table, the basket and each other.
"""

import math
from typing import List, Sequence, Tuple

import numpy as np

from cosmos_planner.sim.config import ObjectSpec, SimConfig
from cosmos_planner.sim.layout import SceneLayout

CAMERA_NAME = 'sim_camera'
MOCAP_BODY = 'ee_target'
GRIPPER_BODY = 'gripper'
BASKET_BODY = 'basket'
GRASP_PREFIX = 'grasp_'
#: Height of the palm above the tool centre point (TCP, between the fingertips).
PALM_Z = 0.075
FINGER_HALF = (0.005, 0.012, 0.035)
FINGER_Z = 0.03


def _fmt(values: Sequence[float]) -> str:
    return ' '.join(f'{float(v):.6g}' for v in values)


def look_at_xyaxes(pos: Sequence[float], target: Sequence[float]) -> Tuple[float, ...]:
    """Return ``xyaxes`` of a MuJoCo camera (x right, y up, looking along -z) aimed at target."""
    fwd = np.asarray(target, float) - np.asarray(pos, float)
    fwd /= np.linalg.norm(fwd)
    up = np.array([0.0, 0.0, 1.0])
    right = np.cross(fwd, up)
    if np.linalg.norm(right) < 1e-6:  # looking straight down: keep image x along world x
        right = np.array([1.0, 0.0, 0.0])
    right /= np.linalg.norm(right)
    cam_up = np.cross(right, fwd)
    return tuple(right) + tuple(cam_up)


def _yaw_quat(yaw: float) -> Tuple[float, float, float, float]:
    return (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))


def _object_xml(obj: ObjectSpec, x: float, y: float, yaw: float) -> str:
    z = obj.half_height + 0.0005
    if obj.shape == 'box':
        geom = f'type="box" size="{_fmt(obj.size)}"'
    else:
        geom = f'type="cylinder" size="{_fmt(obj.size[:2])}"'
    return (
        f'<body name="{obj.name}" pos="{_fmt((x, y, z))}" quat="{_fmt(_yaw_quat(yaw))}">'
        f'<freejoint name="{obj.name}_joint"/>'
        f'<geom name="{obj.name}_geom" {geom} rgba="{_fmt(obj.rgba)}" mass="{obj.mass:g}"'
        f' friction="1.2 0.01 0.0002" condim="4"/>'
        '</body>')


def _basket_xml(cfg: SimConfig, x: float, y: float) -> str:
    hx, hy = cfg.basket_half
    t = cfg.basket_wall_thickness
    h = cfg.basket_wall
    rgba = '0.55 0.38 0.2 1'
    parts: List[str] = [f'<body name="{BASKET_BODY}" pos="{_fmt((x, y, 0))}">']
    parts.append(f'<geom name="basket_floor" type="box" size="{_fmt((hx + t, hy + t, t / 2))}"'
                 f' pos="0 0 {t / 2:g}" rgba="{rgba}"/>')
    walls = [
        ('basket_wall_px', (hx + t / 2, 0.0), (t / 2, hy + t)),
        ('basket_wall_nx', (-hx - t / 2, 0.0), (t / 2, hy + t)),
        ('basket_wall_py', (0.0, hy + t / 2), (hx, t / 2)),
        ('basket_wall_ny', (0.0, -hy - t / 2), (hx, t / 2)),
    ]
    for name, (px, py), (sx, sy) in walls:
        parts.append(f'<geom name="{name}" type="box" size="{_fmt((sx, sy, h / 2))}"'
                     f' pos="{_fmt((px, py, h / 2))}" rgba="{rgba}"/>')
    parts.append('</body>')
    return ''.join(parts)


def _gripper_xml(cfg: SimConfig, start: Sequence[float]) -> str:
    opening = cfg.finger_open
    grip = 'contype="0" conaffinity="0"'
    fx, fy, fz = FINGER_HALF
    finger_range = opening - fx - 0.002

    def finger(side: str, sign: float) -> str:
        return (
            f'<body name="finger_{side}" pos="{_fmt((sign * (opening + fx), 0, FINGER_Z))}"'
            ' gravcomp="1">'
            f'<joint name="finger_{side}_joint" type="slide" axis="{_fmt((-sign, 0, 0))}"'
            f' range="0 {finger_range:.4f}" damping="2"/>'
            f'<geom type="box" size="{_fmt(FINGER_HALF)}" rgba="0.25 0.25 0.28 1" mass="0.02"'
            f' {grip}/>'
            '</body>')

    return (
        f'<body name="{MOCAP_BODY}" mocap="true" pos="{_fmt(start)}"/>'
        f'<body name="{GRIPPER_BODY}" pos="{_fmt(start)}" gravcomp="1">'
        '<freejoint name="gripper_joint"/>'
        '<site name="tcp" size="0.004" rgba="1 1 0 0"/>'
        f'<geom name="palm" type="box" size="{_fmt((opening + 2 * fx + 0.004, 0.018, 0.01))}"'
        f' pos="0 0 {PALM_Z:g}" rgba="0.3 0.3 0.34 1" mass="0.3" {grip}/>'
        f'<geom name="wrist" type="cylinder" size="0.015 0.04" pos="0 0 {PALM_Z + 0.05:g}"'
        f' rgba="0.6 0.6 0.65 1" mass="0.1" {grip}/>'
        + finger('l', -1.0) + finger('r', 1.0)
        + '</body>')


def build_mjcf(layout: SceneLayout, cfg: SimConfig) -> str:
    """Return the complete MJCF document for ``layout`` under ``cfg``."""
    xyaxes = look_at_xyaxes(cfg.camera_pos, cfg.camera_target)
    shadow = 'true' if cfg.shadows else 'false'
    shadowsize = 2048 if cfg.shadows else 0
    tx, ty = cfg.table_half
    objects = ''.join(_object_xml(o, layout.objects[o.name].x, layout.objects[o.name].y,
                                  layout.objects[o.name].yaw) for o in cfg.objects)
    welds = ''.join(
        f'<weld name="{GRASP_PREFIX}{o.name}" body1="{GRIPPER_BODY}" body2="{o.name}"'
        ' active="false" solref="0.01 1"/>' for o in cfg.objects)
    legs = ''.join(
        '<geom type="box" size="0.025 0.025 0.36"'
        f' pos="{_fmt((sx * (tx - 0.05), sy * (ty - 0.05), -0.4))}"'
        ' rgba="0.35 0.25 0.18 1" contype="0" conaffinity="0"/>'
        for sx in (-1, 1) for sy in (-1, 1))
    finger_kp = 40.0
    return f"""<mujoco model="cosmos_planner_tabletop">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{cfg.physics_dt:g}" integrator="implicitfast" cone="elliptic"/>
  <visual>
    <global offwidth="{max(cfg.width, 640)}" offheight="{max(cfg.height, 480)}"/>
    <quality shadowsize="{shadowsize}"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.45 0.45 0.45" specular="0.1 0.1 0.1"/>
    <map znear="0.02" zfar="20"/>
  </visual>
  <asset>
    <texture name="grid" type="2d" builtin="checker" width="256" height="256"
             rgb1="0.82 0.80 0.76" rgb2="0.76 0.74 0.70"/>
    <material name="tabletop" texture="grid" texrepeat="6 5"/>
  </asset>
  <worldbody>
    <light name="key" pos="0.3 -0.4 1.6" dir="-0.2 0.3 -1" castshadow="{shadow}"
           diffuse="0.55 0.55 0.55"/>
    <light name="fill" pos="-0.6 0.4 1.2" dir="0.4 -0.2 -1" castshadow="false"
           diffuse="0.25 0.25 0.25"/>
    <geom name="floor" type="plane" size="4 4 0.1" pos="0 0 -0.76" rgba="0.45 0.47 0.5 1"/>
    <geom name="table" type="box" size="{tx:g} {ty:g} 0.02" pos="0 0 -0.02"
          material="tabletop"/>
    {legs}
    <camera name="{CAMERA_NAME}" pos="{_fmt(cfg.camera_pos)}" xyaxes="{_fmt(xyaxes)}"
            fovy="{cfg.fovy_deg:g}"/>
    {_basket_xml(cfg, layout.basket.x, layout.basket.y)}
    {objects}
    {_gripper_xml(cfg, layout.gripper_start)}
  </worldbody>
  <equality>
    <weld name="ee_follow" body1="{MOCAP_BODY}" body2="{GRIPPER_BODY}" solref="0.02 1"/>
    {welds}
  </equality>
  <actuator>
    <position name="finger_l_act" joint="finger_l_joint" kp="{finger_kp:g}"/>
    <position name="finger_r_act" joint="finger_r_joint" kp="{finger_kp:g}"/>
  </actuator>
</mujoco>
"""
