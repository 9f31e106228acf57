"""The launch file and the shipped params file agree with what the node declares.

``launch`` / ``launch_ros`` are not installable on pip-only machines, so the launch file is
checked statically here (it compiles; every parameter it passes is declared by the node;
every topic it remaps is one the node subscribes to) and loaded through ``launch`` only
where that is importable. ``config/planner.yaml`` is checked both ways (no unknown keys, no
missing parameter, defaults in sync) and then actually used: the node is started with it,
through rcl's own YAML parser, and must reach ``active``.

Runtime: about 5-10 s (one node start).
"""

import ast
import importlib.util
from pathlib import Path
import py_compile
from typing import Any, Dict, List, Set

import pytest
import yaml

from ros_helpers import claim_domain_id, NodeProcess, node_command, release_domain_id
from ros_helpers import RosPeer

from cosmos_planner.pipeline.node_config import all_specs, node_config_from_values
from cosmos_planner.pipeline.node_config import render_params_yaml

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_FILE = ROOT / 'launch' / 'planner.launch.py'
PARAMS_FILE = ROOT / 'config' / 'planner.yaml'
#: Declared by rclpy for every node.
BUILTIN_PARAMS = {'use_sim_time', 'start_type_description_service'}


def _flatten(tree: Dict[str, Any], prefix: str = '') -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, value in tree.items():
        name = f'{prefix}{key}'
        if isinstance(value, dict):
            out.update(_flatten(value, name + '.'))
        else:
            out[name] = value
    return out


def _yaml_values() -> Dict[str, Any]:
    data = yaml.safe_load(PARAMS_FILE.read_text())
    return _flatten(data['cosmos_planner']['ros__parameters'])


def _launch_module() -> ast.Module:
    return ast.parse(LAUNCH_FILE.read_text(), str(LAUNCH_FILE))


def _passed_parameters(tree: ast.Module) -> Set[str]:
    """Collect the string keys of dicts in ``parameters=[...]`` of ``Node(...)`` calls."""
    names: Set[str] = set()
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, 'id', '') == 'Node':
            for kw in call.keywords:
                if kw.arg == 'parameters':
                    for node in ast.walk(kw.value):
                        if isinstance(node, ast.Dict):
                            names |= {k.value for k in node.keys
                                      if isinstance(k, ast.Constant)}
    return names


def _default_topics(tree: ast.Module) -> Dict[str, str]:
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) or isinstance(node, ast.Assign):
            target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0]
            if getattr(target, 'id', '') == 'DEFAULT_TOPICS':
                return ast.literal_eval(node.value)
    raise AssertionError('DEFAULT_TOPICS not found in the launch file')


def test_launch_file_compiles() -> None:
    py_compile.compile(str(LAUNCH_FILE), doraise=True)
    assert 'generate_launch_description' in {
        n.name for n in _launch_module().body if isinstance(n, ast.FunctionDef)}


def test_launch_file_passes_only_declared_parameters() -> None:
    declared = set(all_specs(['camera'])) | BUILTIN_PARAMS
    passed = _passed_parameters(_launch_module())
    assert passed, 'no parameters found in the launch file'
    assert passed <= declared, passed - declared


def test_launch_remaps_topics_the_node_subscribes_to() -> None:
    values = _yaml_values()
    raw = node_config_from_values(dict(values, **{'backend.kind': 'replay',
                                                  'backend.replay_path': 'x.jsonl'}))
    compressed = node_config_from_values(dict(values, **{
        'backend.kind': 'replay', 'backend.replay_path': 'x.jsonl',
        'cameras.camera.compressed': True, 'cameras.camera.depth_topic': 'camera/depth'}))
    subscribed = {raw.cameras[0].image_topic, raw.cameras[0].info_topic, raw.ee_pose_topic,
                  compressed.cameras[0].image_topic, compressed.cameras[0].depth_topic}
    remapped = set(_default_topics(_launch_module()).values())
    assert remapped == subscribed


def test_params_file_matches_the_declared_parameters() -> None:
    values = _yaml_values()
    names = [str(n) for n in values['cameras.names']]
    specs = all_specs(names)
    assert set(values) - set(specs) == set(), 'unknown keys in config/planner.yaml'
    assert set(specs) - set(values) == set(), 'parameters missing from config/planner.yaml'
    for name, spec in specs.items():
        assert spec.check(values[name]) is None, name
        assert values[name] == spec.default, f'{name}: yaml {values[name]!r} != default'
    node_config_from_values(values)   # the whole file is a valid configuration


def test_params_file_is_regenerated_from_the_declarations() -> None:
    assert PARAMS_FILE.read_text() == render_params_yaml(), (
        'config/planner.yaml is out of date: python -m cosmos_planner.ros.params > '
        'config/planner.yaml')


def test_node_starts_with_the_shipped_params_file(tmp_path: Path) -> None:
    """Start the node with config/planner.yaml, parsed by rcl itself (dotted keys too)."""
    (tmp_path / 'empty.jsonl').write_text('')
    domain = claim_domain_id()
    cmd: List[str] = node_command('planner_node', 'cosmos_planner.ros.planner_node') + [
        '--ros-args', '--params-file', str(PARAMS_FILE),
        '-p', 'backend.kind:=replay', '-p', f'backend.replay_path:={tmp_path}/empty.jsonl']
    node = NodeProcess(cmd, domain, tmp_path / 'node.log').start()
    try:
        with RosPeer(domain) as peer:
            state = peer.wait_for_lifecycle_state('/cosmos_planner', 'active', 60, node.alive)
            assert state == 'active', node.output()
            values = peer.get_parameters('/cosmos_planner', ['buffer.max_frames',
                                                             'safety.workspace_min'])
            expected = _yaml_values()
            assert values['buffer.max_frames'] == expected['buffer.max_frames']
            assert list(values['safety.workspace_min']) == expected['safety.workspace_min']
    finally:
        node.stop()
        release_domain_id(domain)


def test_launch_description_loads_where_launch_is_installed() -> None:
    pytest.importorskip('launch')
    pytest.importorskip('launch_ros')
    spec = importlib.util.spec_from_file_location('planner_launch', LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        description = module.generate_launch_description()
    except Exception as exc:  # noqa: BLE001 - package not in the ament index here
        pytest.skip(f'cosmos_planner is not installed in the ament index: {exc}')
    kinds = [type(e).__name__ for e in description.entities]
    assert 'Node' in kinds
    arguments = {e.name for e in description.entities if hasattr(e, 'default_value')}
    assert {'params_file', 'use_sim_time', 'namespace', 'image_topic'} <= arguments


@pytest.mark.parametrize('overrides, code, needle', [
    (['safety.max_velocity_mps:=-1.0'], 2, 'safety.max_velocity_mps'),     # refused at start
    (['backend.replay_path:=/nonexistent/answers.jsonl'], 2, 'backend.replay_path'),  # ditto
    (['backend.kind:=openai', 'backend.base_url:=ftp://h/v1'], 1, 'base_url'),  # cannot load
])
def test_node_exits_with_a_message_on_bad_configuration(tmp_path: Path, overrides: List[str],
                                                        code: int, needle: str) -> None:
    domain = claim_domain_id()
    (tmp_path / 'empty.jsonl').write_text('')
    cmd = node_command('planner_node', 'cosmos_planner.ros.planner_node') + [
        '--ros-args', '-p', 'backend.kind:=replay',
        '-p', f'backend.replay_path:={tmp_path}/empty.jsonl']
    for override in overrides:
        cmd += ['-p', override]
    node = NodeProcess(cmd, domain, tmp_path / 'node.log').start()
    try:
        assert node.wait(60) == code, node.output()
        assert needle in node.output()
    finally:
        node.stop()
        release_domain_id(domain)
