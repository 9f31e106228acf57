"""The sim's planner presets and launch file agree with what the nodes declare.

``config/isaac_bridge.yaml`` is the contract with Isaac Sim's ROS 2 bridge; the runner
writes the same parameters for the MuJoCo loop. Both are checked by the planner node's own
validation (``node_config_from_values``), so a renamed parameter fails here, not in a
simulator. The launch file is checked statically (``launch`` is not installable on pip-only
machines) and loaded where it is. Under 2 s.
"""

import ast
import importlib.util
from pathlib import Path
import py_compile

import numpy as np
import pytest
import yaml

from cosmos_planner.pipeline.node_config import all_specs, node_config_from_values
from cosmos_planner.sim.camera import look_at_optical_pose
from cosmos_planner.sim.config import SimConfig
from cosmos_planner.sim.planner_process import CAMERA, isaac_bridge_parameters
from cosmos_planner.sim.planner_process import planner_parameters, planner_command
from cosmos_planner.settings import write_params_file
from cosmos_planner.sim.tabletop import TabletopSim

ROOT = Path(__file__).resolve().parents[2]
#: Parameters rclpy declares itself.
ROS_BUILTIN = {'use_sim_time'}


def _declared() -> set:
    return set(all_specs([CAMERA])) | ROS_BUILTIN


def test_isaac_bridge_yaml_is_the_generated_preset() -> None:
    doc = yaml.safe_load((ROOT / 'config' / 'isaac_bridge.yaml').read_text())
    params = doc['cosmos_planner']['ros__parameters']
    assert params == isaac_bridge_parameters()
    assert set(params) <= _declared()
    cfg = node_config_from_values({k: v for k, v in params.items() if k not in ROS_BUILTIN})
    cam = cfg.camera(CAMERA)
    assert (cam.image_topic, cam.info_topic, cam.depth_topic) == (
        '/rgb', '/camera_info', '/depth'), "Isaac's bridge topic names"
    assert cfg.qos_reliable and params['use_sim_time'] is True


@pytest.mark.parametrize('backend,grounding', [('expert', 'plane'), ('local', 'depth')])
def test_runner_parameters_pass_the_nodes_validation(tmp_path, backend, grounding) -> None:
    cfg = SimConfig()
    pose = look_at_optical_pose(cfg.camera_pos, cfg.camera_target)
    params = planner_parameters(cfg, pose, backend, {'model': '/m'} if backend == 'local'
                                else None, ground_truth='/tmp/gt.json', grounding=grounding)
    assert set(params) <= _declared()
    node_cfg = node_config_from_values({k: v for k, v in params.items()
                                        if k not in ROS_BUILTIN})
    assert node_cfg.backend_kind == backend
    if backend == 'expert':
        assert node_cfg.backend_options['ground_truth'] == '/tmp/gt.json'
    else:
        assert params['heights.grasp_offset_m'] == -cfg.target_spec.half_height
    path = write_params_file(tmp_path / 'p.yaml', params)
    assert yaml.safe_load(path.read_text())['cosmos_planner']['ros__parameters'] == params
    assert planner_command(path)[-2:] == ['--params-file', str(path)]


def test_static_camera_transform_is_the_simulated_camera_pose() -> None:
    cfg = SimConfig()
    with TabletopSim(cfg, render=False) as sim:
        mujoco_pose = sim.optical_pose()
    pose = look_at_optical_pose(cfg.camera_pos, cfg.camera_target)
    assert np.allclose(pose.rotation, mujoco_pose.rotation, atol=1e-5)
    assert np.allclose(pose.translation, mujoco_pose.translation)


def _launch_parameters(node_call: ast.Call) -> set:
    names = set()
    for kw in node_call.keywords:
        if kw.arg == 'parameters':
            for item in ast.walk(kw.value):
                if isinstance(item, ast.Dict):
                    names |= {k.value for k in item.keys if isinstance(k, ast.Constant)}
    return names


def test_launch_file_passes_only_declared_parameters() -> None:
    tree = ast.parse((ROOT / 'launch' / 'sim.launch.py').read_text())
    nodes = {}
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, 'id', '') == 'Node':
            kws = {kw.arg: kw.value for kw in call.keywords}
            nodes[kws['executable'].value] = _launch_parameters(call)
    assert set(nodes) == {'sim_node', 'planner_node'}
    assert nodes['planner_node'] <= _declared()
    assert nodes['sim_node'] <= {'seed', 'real_time_factor', 'ground_truth_path',
                                 'camera_rate_hz', 'width', 'height', 'config_file'}


def test_launch_description_loads_where_launch_is_installed() -> None:
    pytest.importorskip('launch')
    pytest.importorskip('launch_ros')
    spec = importlib.util.spec_from_file_location('sim_launch', ROOT / 'launch' /
                                                  'sim.launch.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.generate_launch_description().entities


def test_isaac_script_compiles(tmp_path) -> None:
    # It cannot run here (Isaac Sim needs Python 3.12 and an RTX GPU): syntax only.
    py_compile.compile(str(ROOT / 'isaac' / 'tabletop_isaac.py'),
                       cfile=str(tmp_path / 'tabletop_isaac.pyc'), doraise=True)
