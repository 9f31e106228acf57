"""Tabletop simulator core without ROS: config, layout, camera conventions, grasp, success.

Real MuJoCo (EGL software rendering) at small sizes; about 10 s on 2 cores.
"""

import threading

import numpy as np
import pytest

from cosmos_planner.errors import ConfigError
from cosmos_planner.sim.camera import Intrinsics, matrix_to_quat_xyzw, project
from cosmos_planner.sim.camera import quat_xyzw_to_matrix
from cosmos_planner.sim.config import load_sim_config, ObjectSpec, SimConfig
from cosmos_planner.sim.config import sim_config_from_dict
from cosmos_planner.sim.follower import TrajectoryFollower
from cosmos_planner.sim.layout import sample_layout
from cosmos_planner.sim.tabletop import TabletopSim


@pytest.fixture(scope='module')
def sim():
    s = TabletopSim(load_sim_config(width=160, height=120), seed=3)
    yield s
    s.close()


def _drive(sim: TabletopSim, points, gripper_at=(), step_s=0.6, settle_s=1.0) -> None:
    """Move through ``points`` (world) like a controller; toggle the gripper at indices."""
    follower = TrajectoryFollower(max_speed=0.4)
    times = [step_s * (i + 1) for i in range(len(points))]
    t0 = sim.time
    follower.start(t0, sim.ee_target(), times, points)
    commands = dict(gripper_at)
    done_idx = set()
    while sim.time < t0 + follower.path.end_s - t0 + settle_s:
        now = sim.time
        sim.set_ee_target(follower.target(now))
        for idx, closed in commands.items():
            # Command on arrival at the waypoint's (warped) time.
            if idx not in done_idx and now >= follower.path.times[idx + 1]:
                sim.set_gripper(closed)
                done_idx.add(idx)
        sim.step()


def test_config_rejects_bad_values_with_named_field() -> None:
    with pytest.raises(ConfigError, match='camera_rate_hz'):
        SimConfig(camera_rate_hz=0.0)
    with pytest.raises(ConfigError, match='target'):
        SimConfig(target='nothing')
    with pytest.raises(ConfigError, match='unknown keys'):
        sim_config_from_dict({'bogus': 1})
    with pytest.raises(ConfigError, match='shape'):
        ObjectSpec('x', 'x', shape='sphere')
    with pytest.raises(ConfigError, match='does not fit the basket'):
        SimConfig(objects=(ObjectSpec('big', 'big', size=(0.1, 0.1, 0.02)),), target='big')


def test_packaged_yaml_matches_the_dataclass_defaults() -> None:
    # config/sim.yaml documents every default; drift would make the CLI lie.
    assert load_sim_config() == SimConfig()


def test_layout_is_deterministic_and_separated() -> None:
    cfg = SimConfig()
    a, b = sample_layout(7, cfg), sample_layout(7, cfg)
    assert a == b
    assert sample_layout(8, cfg) != a
    for seed in range(30):
        lay = sample_layout(seed, cfg)
        items = [(lay.basket.x, lay.basket.y, np.hypot(*cfg.basket_half))]
        items += [(lay.objects[o.name].x, lay.objects[o.name].y, o.footprint_radius)
                  for o in cfg.objects]
        for i in range(len(items)):
            for j in range(i):
                gap = np.hypot(items[i][0] - items[j][0], items[i][1] - items[j][1])
                assert gap > items[i][2] + items[j][2]
    with pytest.raises(ConfigError):
        sample_layout(-1, cfg)


def test_quaternion_round_trip() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        rot = quat_xyzw_to_matrix(q)
        back = np.asarray(matrix_to_quat_xyzw(rot))
        assert np.allclose(quat_xyzw_to_matrix(back), rot, atol=1e-9)


def test_optical_frame_conventions(sim: TabletopSim) -> None:
    pose = sim.optical_pose()
    # z forward: the point the camera looks at is in front of it, near the image centre.
    target = np.asarray(sim.cfg.camera_target)
    px, z = project(target, pose, sim.intrinsics)
    assert z[0] > 0
    assert abs(px[0, 0] - sim.intrinsics.cx) < 1.0 and abs(px[0, 1] - sim.intrinsics.cy) < 1.0
    # x right: world +x (to the camera's right in this scene) increases u.
    right, _ = project(target + [0.1, 0, 0], pose, sim.intrinsics)
    assert right[0, 0] > px[0, 0] + 5
    # y down: higher world z is higher in the image (smaller v).
    up, _ = project(target + [0, 0, 0.1], pose, sim.intrinsics)
    assert up[0, 1] < px[0, 1] - 5
    assert np.allclose(sim.intrinsics.K[0, 2], (sim.cfg.width - 1) / 2)


def test_rendered_pixels_agree_with_projection_and_depth(sim: TabletopSim) -> None:
    sim.reset(3)
    sim.set_ee_target([-0.4, 0.3, 0.3])  # move the gripper out of the way (it occludes)
    sim.step(150)
    rgb = sim.render_rgb()
    depth = sim.render_depth()
    assert rgb.shape == (120, 160, 3) and rgb.dtype == np.uint8
    assert depth.shape == (120, 160) and depth.dtype == np.float32
    pose, intr = sim.optical_pose(), sim.intrinsics
    spec = sim.cfg.target_spec
    top = sim.object_position(spec.name) + [0, 0, spec.half_height]
    (u, v), = np.round(project(top, pose, intr)[0]).astype(int)
    r, g, b = rgb[v, u].astype(int)
    assert r > g + 40 and r > b + 40, 'the red cube is where its projection says'
    _, z = project(top, pose, intr)
    assert abs(depth[v, u] - z[0]) < 0.02, 'depth is z along the optical axis, in metres'
    table_px, table_z = project(np.array([0.3, 0.2, 0.0]), pose, intr)
    tu, tv = np.round(table_px[0]).astype(int)
    assert abs(depth[tv, tu] - table_z[0]) < 0.02


def test_render_from_another_thread_is_a_clear_error(sim: TabletopSim) -> None:
    sim.render_rgb()
    errors = []

    def other() -> None:
        try:
            sim.render_rgb()
        except ConfigError as exc:
            errors.append(str(exc))

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert errors and 'thread' in errors[0]


def test_pick_and_place_succeeds_and_reset_restores_time_zero(sim: TabletopSim) -> None:
    sim.reset(5)
    obj = sim.object_position('red_cube')
    basket = sim.basket_center()
    start = sim.ee_position()
    assert not sim.evaluate().success
    points = [obj + [0, 0, 0.1], obj, obj + [0, 0, 0.15], basket + [0, 0, 0.15],
              basket + [0, 0, 0.05]]
    _drive(sim, points, gripper_at=[(1, True), (4, False)])
    state = sim.evaluate()
    assert state.success and state.in_basket and state.at_rest and state.grasped is None
    assert state.object_error_m < 0.03
    truth = sim.ground_truth()
    assert truth['state']['success'] is True
    sim.reset(5)
    assert sim.time == 0.0
    assert np.allclose(sim.ee_position(), start)
    assert np.allclose(sim.object_position('red_cube'), obj, atol=1e-3)
    assert not sim.evaluate().success


def test_closing_without_an_object_grasps_nothing(sim: TabletopSim) -> None:
    sim.reset(6)
    sim.set_gripper(True)
    assert sim.grasped is None
    sim.step(20)
    sim.set_gripper(False)
    obj = sim.object_position('red_cube')
    # Close beside the cube (4 cm off across the fingers' span): still nothing.
    _drive(sim, [obj + [0.0, 0.06, 0.0]])
    sim.set_gripper(True)
    assert sim.grasped is None


def test_ground_truth_projects_consistently(sim: TabletopSim) -> None:
    sim.reset(2)
    truth = sim.ground_truth()
    cube = truth['objects']['red_cube']
    px = np.asarray(cube['pixel'][0])
    model = np.asarray(cube['point_2d'][0])
    assert np.allclose(model, px / [sim.cfg.width, sim.cfg.height] * 1000.0)
    intr = Intrinsics(truth['camera']['width'], truth['camera']['height'],
                      *np.asarray(truth['camera']['K'])[[0, 1, 0, 1], [0, 1, 2, 2]])
    assert intr.width == 160 and truth['camera']['frame_id'] == 'sim_camera'
    assert truth['episode'] == sim.episode and truth['seed'] == 2


def test_fallen_object_is_a_failure(sim: TabletopSim) -> None:
    sim.reset(4)
    adr = sim._obj_qadr['red_cube']
    sim.data.qpos[adr:adr + 3] = (0.0, 0.0, -0.5)  # knocked off the table
    sim.step()
    assert sim.evaluate().fallen
