"""The tabletop task and episode loop in Isaac Sim (standalone script). NOT RUN HERE.

Honest status: written against Isaac Sim 5.x/6.x's Python API (``isaacsim.core.api``,
``isaacsim.sensors.camera``, the ``isaacsim.ros2.bridge`` OmniGraph nodes) and never
executed: Isaac Sim needs Python 3.12 and an RTX GPU, and the machines this project is
built on have neither (the lent H100/H200 have no RT cores). Node type names and a few
call signatures move between Isaac releases; where it fails, the comments say what the
call is for. Everything task-specific is imported from ``cosmos_planner.sim`` (layout per
seed, success check, trajectory follower, command rules), so Isaac and MuJoCo episodes are
the same task scored the same way.

Run (Isaac's Python, with cosmos_planner importable, e.g. ``pip install -e .`` into it)::

    ./python.sh isaac/tabletop_isaac.py --episodes 10 --out runs/isaac
    # in a ROS 2 shell:
    ros2 launch cosmos_planner sim.launch.py simulator:=isaac

What it does, matching the MuJoCo sim node and ``cosmos-planner sim``:

- scene: table top at z = 0 of ``/World``, a basket (floor + 4 walls), three objects,
  camera ``sim_camera`` placed and aimed like ``config/sim.yaml`` (same intrinsics);
- ROS 2 bridge (OmniGraph): ``rgb`` (rgb8), ``depth`` (32FC1 m), ``camera_info`` with frame
  id ``sim_camera``, ``/clock`` from the simulation time; sim time restarts at zero on
  Stop/Play, which is how episodes reset;
- a Cartesian gripper: a kinematic body moved along the planner's ``~/trajectory`` by
  ``TrajectoryFollower``; closing with the target between the fingers attaches it
  (it follows the gripper until opened), the same rule as the MuJoCo weld;
- per episode: layout from the seed, the task on ``/cosmos_planner/task`` after 0.6 s,
  replans via ``/cosmos_planner/replan`` when idle, success = target at rest in the
  basket; one JSON line per episode and ``summary.json`` in ``--out``.
"""

import argparse
import json
import math
from pathlib import Path
import sys

parser = argparse.ArgumentParser(description='Tabletop episodes in Isaac Sim.')
parser.add_argument('--episodes', type=int, default=1)
parser.add_argument('--seed', type=int, default=0)
parser.add_argument('--task', default='put the red cube in the basket')
parser.add_argument('--out', type=Path, default=Path('runs/isaac'))
parser.add_argument('--headless', action='store_true')
parser.add_argument('--max-requests', type=int, default=4)
args, _unknown = parser.parse_known_args()

from isaacsim import SimulationApp  # noqa: E402 - must start before any omni import

app = SimulationApp({'headless': args.headless, 'renderer': 'RayTracedLighting'})

import numpy as np  # noqa: E402
import omni.graph.core as og  # noqa: E402
from isaacsim.core.api import World  # noqa: E402
from isaacsim.core.api.objects import DynamicCuboid, DynamicCylinder  # noqa: E402
from isaacsim.core.api.objects import FixedCuboid, VisualCuboid  # noqa: E402
from isaacsim.core.utils.extensions import enable_extension  # noqa: E402
from isaacsim.sensors.camera import Camera  # noqa: E402

enable_extension('isaacsim.ros2.bridge')
app.update()

import rclpy  # noqa: E402 - Isaac's bundled rclpy, available once the bridge is enabled
from geometry_msgs.msg import PoseStamped  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, MultiDOFJointTrajectory  # noqa: E402

from cosmos_planner.sim.camera import look_at_optical_pose, matrix_to_quat_xyzw  # noqa: E402
from cosmos_planner.sim.commands import gripper_events, stale_reason, stamp_ns  # noqa: E402
from cosmos_planner.sim.commands import trajectory_points  # noqa: E402
from cosmos_planner.sim.config import load_sim_config  # noqa: E402
from cosmos_planner.sim.follower import TrajectoryFollower  # noqa: E402
from cosmos_planner.sim.layout import sample_layout  # noqa: E402
from cosmos_planner.sim.planner_process import GRIPPER_CLOSED, GRIPPER_OPEN  # noqa: E402
from cosmos_planner.sim.success import evaluate  # noqa: E402

CFG = load_sim_config()
CAMERA_PATH = '/World/sim_camera'
MAX_PLAN_AGE_S = 5.0
TASK_DELAY_S = 0.6
SETTLE_S = 1.0


def wxyz(rot: np.ndarray) -> np.ndarray:
    """Rotation matrix to Isaac's (w, x, y, z) quaternion."""
    x, y, z, w = matrix_to_quat_xyzw(rot)
    return np.array([w, x, y, z])


def yaw_wxyz(yaw: float) -> np.ndarray:
    return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


# ----------------------------------------------------------------------------- scene
world = World(stage_units_in_meters=1.0, physics_dt=CFG.physics_dt,
              rendering_dt=CFG.control_dt)
world.scene.add_default_ground_plane(z_position=-0.76)
tx, ty = CFG.table_half
world.scene.add(FixedCuboid('/World/table', name='table', position=np.array([0, 0, -0.02]),
                            scale=np.array([2 * tx, 2 * ty, 0.04]),
                            color=np.array([0.8, 0.78, 0.74])))
hx, hy = CFG.basket_half
t, h = CFG.basket_wall_thickness, CFG.basket_wall
BASKET_PARTS = {  # name: (offset from the basket centre, size)
    'floor': ((0, 0, t / 2), (2 * hx + 2 * t, 2 * hy + 2 * t, t)),
    'wall_px': ((hx + t / 2, 0, h / 2), (t, 2 * hy + 2 * t, h)),
    'wall_nx': ((-hx - t / 2, 0, h / 2), (t, 2 * hy + 2 * t, h)),
    'wall_py': ((0, hy + t / 2, h / 2), (2 * hx, t, h)),
    'wall_ny': ((0, -hy - t / 2, h / 2), (2 * hx, t, h)),
}
basket = {name: world.scene.add(FixedCuboid(
    f'/World/basket/{name}', name=f'basket_{name}', position=np.array(off),
    scale=np.array(size), color=np.array([0.55, 0.38, 0.2])))
    for name, (off, size) in BASKET_PARTS.items()}
objects = {}
for spec in CFG.objects:
    if spec.shape == 'box':
        objects[spec.name] = world.scene.add(DynamicCuboid(
            f'/World/{spec.name}', name=spec.name, scale=2 * np.array(spec.size),
            color=np.array(spec.rgba[:3]), mass=spec.mass))
    else:
        objects[spec.name] = world.scene.add(DynamicCylinder(
            f'/World/{spec.name}', name=spec.name, radius=spec.size[0],
            height=2 * spec.size[1], color=np.array(spec.rgba[:3]), mass=spec.mass))
# A collision-free kinematic tool, like the MuJoCo gripper: the TCP is its origin.
gripper = world.scene.add(VisualCuboid('/World/gripper', name='gripper',
                                       scale=np.array([0.11, 0.036, 0.02]),
                                       color=np.array([0.3, 0.3, 0.34])))

# Camera: the optical pose of config/sim.yaml; USD cameras look along -z with y up.
optical = look_at_optical_pose(CFG.camera_pos, CFG.camera_target)
camera = Camera(CAMERA_PATH, resolution=(CFG.width, CFG.height))
camera.initialize()
camera.set_world_pose(np.asarray(CFG.camera_pos),
                      wxyz(optical.rotation @ np.diag([1.0, -1.0, -1.0])), camera_axes='usd')
FOCAL = 24.0  # only the aperture/focal ratios matter
camera.set_focal_length(FOCAL / 10.0)
v_aperture = 2 * FOCAL * math.tan(math.radians(CFG.fovy_deg) / 2)
camera.set_vertical_aperture(v_aperture / 10.0)
camera.set_horizontal_aperture(v_aperture * CFG.width / CFG.height / 10.0)

# ROS 2 bridge graph: clock from sim time every tick, camera topics at the camera rate.
skip = max(0, int(round(1.0 / (CFG.camera_rate_hz * CFG.control_dt))) - 1)
keys = og.Controller.Keys
og.Controller.edit({'graph_path': '/ROS2Bridge', 'evaluator_name': 'execution'}, {
    keys.CREATE_NODES: [
        ('Tick', 'omni.graph.action.OnPlaybackTick'),
        ('SimTime', 'isaacsim.core.nodes.IsaacReadSimulationTime'),
        ('Clock', 'isaacsim.ros2.bridge.ROS2PublishClock'),
        ('RunOnce', 'isaacsim.core.nodes.OgnIsaacRunOneSimulationFrame'),
        ('Render', 'isaacsim.core.nodes.IsaacCreateRenderProduct'),
        ('Rgb', 'isaacsim.ros2.bridge.ROS2CameraHelper'),
        ('Depth', 'isaacsim.ros2.bridge.ROS2CameraHelper'),
        ('Info', 'isaacsim.ros2.bridge.ROS2CameraInfoHelper'),
    ],
    keys.CONNECT: [
        ('Tick.outputs:tick', 'Clock.inputs:execIn'),
        ('SimTime.outputs:simulationTime', 'Clock.inputs:timeStamp'),
        ('Tick.outputs:tick', 'RunOnce.inputs:execIn'),
        ('RunOnce.outputs:step', 'Render.inputs:execIn'),
        ('Render.outputs:execOut', 'Rgb.inputs:execIn'),
        ('Render.outputs:execOut', 'Depth.inputs:execIn'),
        ('Render.outputs:execOut', 'Info.inputs:execIn'),
        ('Render.outputs:renderProductPath', 'Rgb.inputs:renderProductPath'),
        ('Render.outputs:renderProductPath', 'Depth.inputs:renderProductPath'),
        ('Render.outputs:renderProductPath', 'Info.inputs:renderProductPath'),
    ],
    keys.SET_VALUES: [
        ('Render.inputs:cameraPrim', CAMERA_PATH),
        ('Render.inputs:width', CFG.width), ('Render.inputs:height', CFG.height),
        ('Rgb.inputs:type', 'rgb'), ('Rgb.inputs:topicName', 'rgb'),
        ('Depth.inputs:type', 'depth'), ('Depth.inputs:topicName', 'depth'),
        ('Info.inputs:topicName', 'camera_info'),
        ('Rgb.inputs:frameId', CFG.camera_frame_id),
        ('Depth.inputs:frameId', CFG.camera_frame_id),
        ('Info.inputs:frameId', CFG.camera_frame_id),
        ('Rgb.inputs:frameSkipCount', skip), ('Depth.inputs:frameSkipCount', skip),
        ('Info.inputs:frameSkipCount', skip),
    ],
})

# ----------------------------------------------------------------------------- control
rclpy.init()
node = rclpy.create_node('isaac_tabletop')
queue = []
node.create_subscription(MultiDOFJointTrajectory, '/cosmos_planner/trajectory',
                         lambda m: queue.append(('trajectory', m)), 10)
node.create_subscription(JointTrajectory, '/cosmos_planner/gripper',
                         lambda m: queue.append(('gripper', m)), 10)
statuses = []
node.create_subscription(String, '/cosmos_planner/status',
                         lambda m: statuses.append(json.loads(m.data)), 50)
task_pub = node.create_publisher(String, '/cosmos_planner/task', 10)
pose_pub = node.create_publisher(PoseStamped, '/ee_pose', 10)
replan = node.create_client(Trigger, '/cosmos_planner/replan')


class Tool:
    """Kinematic gripper state: commanded TCP, attached object, follower."""

    def __init__(self) -> None:
        self.follower = TrajectoryFollower(max_speed=0.3)
        self.target = np.asarray(CFG.gripper_home, float)
        self.closed = False
        self.held = None
        self.offset = np.zeros(3)
        self.plans = 0
        self.pending = {}


tool = Tool()


def set_gripper(closed: bool) -> None:
    """Close: attach the nearest object between the fingers (same region as MuJoCo)."""
    if closed and not tool.closed:
        for name, obj in objects.items():
            local = obj.get_world_pose()[0] - tool.target
            if abs(local[0]) <= CFG.finger_open and abs(local[1]) <= 0.03 \
                    and -0.04 <= local[2] <= 0.05:
                tool.held, tool.offset = name, local
                obj.disable_rigid_body_physics()  # follows the tool kinematically
                break
    elif not closed and tool.closed and tool.held is not None:
        objects[tool.held].enable_rigid_body_physics()
        tool.held = None
    tool.closed = closed


def control_tick(now_s: float) -> None:
    """Apply queued planner messages, then move the tool (the ControllerNode's rules)."""
    now_ns = int(round(now_s * 1e9))
    while queue:
        kind, msg = queue.pop(0)
        stamp = stamp_ns(msg.header)
        if kind == 'trajectory' and not msg.points:
            tool.follower.stop(tool.target)
            continue
        if stale_reason(stamp, now_ns, MAX_PLAN_AGE_S) or msg.header.frame_id not in (
                '', CFG.world_frame_id):
            continue  # another timeline, too old, or a frame this script does not know
        if kind == 'trajectory':
            times, points = trajectory_points(msg)
            tool.follower.start(now_s, tool.target, times, points, stamp)
            tool.plans += 1
            if stamp in tool.pending:
                tool.follower.set_gripper_schedule(tool.pending.pop(stamp))
        else:
            events = gripper_events(msg, GRIPPER_OPEN, GRIPPER_CLOSED)
            path = tool.follower.path
            if path is not None and path.stamp_ns == stamp:
                tool.follower.set_gripper_schedule(events)
            else:
                tool.pending[stamp] = events
    target = tool.follower.target(now_s)
    if target is not None:
        tool.target = target
    closed = tool.follower.gripper_due(now_s)
    if closed is not None:
        set_gripper(closed)
    gripper.set_world_pose(tool.target + np.array([0, 0, 0.075]))
    if tool.held is not None:
        objects[tool.held].set_world_pose(tool.target + tool.offset)
    msg = PoseStamped()
    msg.header.frame_id = CFG.world_frame_id
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now_ns, 1_000_000_000)
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = map(float, tool.target)
    msg.pose.orientation.x, msg.pose.orientation.w = 1.0, 0.0
    pose_pub.publish(msg)


def reset_episode(seed: int) -> None:
    """Stop/Play (sim time back to zero), then place everything for ``seed``."""
    world.stop()
    world.play()
    layout = sample_layout(seed, CFG)
    centre = np.array([layout.basket.x, layout.basket.y, 0.0])
    for name, (off, _size) in BASKET_PARTS.items():
        basket[name].set_world_pose(centre + np.asarray(off))
    for spec in CFG.objects:
        place = layout.objects[spec.name]
        objects[spec.name].enable_rigid_body_physics()
        objects[spec.name].set_world_pose(np.array([place.x, place.y, spec.half_height]),
                                          yaw_wxyz(place.yaw))
        objects[spec.name].set_linear_velocity(np.zeros(3))
        objects[spec.name].set_angular_velocity(np.zeros(3))
    tool.target = np.asarray(layout.gripper_start, float)
    tool.follower.stop(tool.target)
    tool.closed, tool.held, tool.plans = False, None, 0
    tool.pending.clear()
    queue.clear()


def run_episode(index: int, seed: int) -> dict:
    reset_episode(seed)
    requests, outcome = [], 'timeout'
    target = objects[CFG.target]
    while app.is_running():
        now = world.current_time
        rclpy.spin_once(node, timeout_sec=0.0)
        control_tick(now)
        world.step(render=True)
        pos, _ = target.get_world_pose()
        speed = float(np.linalg.norm(target.get_linear_velocity()))
        centre = basket['floor'].get_world_pose()[0] - np.array([0, 0, t / 2])
        state = evaluate(now, pos, speed, centre, tool.held, CFG)
        if state.success or state.fallen or now >= CFG.time_limit_s:
            outcome = 'success' if state.success else 'fallen' if state.fallen else outcome
            break
        if not requests and now >= TASK_DELAY_S:
            task_pub.publish(String(data=json.dumps(
                {'task': args.task, 'task_id': f'isaac-{index}-{seed}'})))
            requests.append(now)
        elif requests and len(requests) < args.max_requests \
                and tool.follower.done(now) and now - requests[-1] > SETTLE_S + 5.0:
            replan.call_async(Trigger.Request())
            requests.append(now)
    return {'episode': index, 'seed': seed, 'success': outcome == 'success',
            'outcome': outcome, 'sim_time_s': world.current_time, 'plans': tool.plans,
            'requests': len(requests), 'final_object_error_m': state.object_error_m,
            'simulator': 'isaac'}


def main() -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    with open(args.out / 'episodes.jsonl', 'w') as lines:
        for i in range(args.episodes):
            result = run_episode(i, args.seed + i)
            results.append(result)
            lines.write(json.dumps(result) + '\n')
    n = len(results)
    wins = sum(r['success'] for r in results)
    (args.out / 'summary.json').write_text(json.dumps(
        {'episodes': n, 'successes': wins, 'success_rate': wins / n if n else 0.0,
         'simulator': 'isaac', 'task': args.task}, indent=2))
    node.destroy_node()
    rclpy.try_shutdown()
    app.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
