"""Tests of pipeline/node_config.py: the parameters' mapping onto NodeConfig and the yaml."""

import pytest

from cosmos_planner.errors import ConfigError
from cosmos_planner.pipeline.node_config import (all_specs, node_config_from_values,
                                                 NODE_PARAMS, render_params_yaml,
                                                 validate_changes)


@pytest.mark.parametrize('values, name', [
    ({'buffer.fps': -1.0}, 'buffer.fps'),
    ({'backend.kind': 'gpt'}, 'backend.kind'),
    ({'backend.kind': 'replay'}, 'backend.replay_path'),
    ({'cameras.primary': 'nope'}, 'cameras.primary'),
    ({'cameras.names': ['a', 'a']}, 'cameras.names'),
    ({'safety.workspace_min': [1.0, 1.0, 1.0], 'safety.workspace_max': [0.0, 0.0, 0.0]},
     'safety.workspace_min'),
    ({'ground.plane': [0.0, 0.0, 0.0, 1.0]}, 'ground.plane'),
    ({'backend.kind': 'faults', 'backend.faults': 'explode'}, 'backend.faults'),
    ({'planner.max_attempts': True}, 'planner.max_attempts'),
])
def test_bad_configurations_name_the_parameter(values: dict, name: str) -> None:
    with pytest.raises(ConfigError, match=name.replace('.', r'\.')):
        node_config_from_values(values)


def test_config_maps_cameras_backend_and_pipeline() -> None:
    cfg = node_config_from_values({
        'backend.kind': 'openai', 'backend.base_url': 'http://h:1/v1', 'cameras.names':
        ['front', 'wrist'], 'cameras.primary': 'wrist', 'cameras.front.compressed': True,
        'gripper.joint_name': 'finger', 'safety.max_velocity_mps': 0.1})
    assert cfg.primary == 'wrist' and cfg.context_cameras == ('front',)
    assert cfg.camera('front').image_topic == 'front/image/compressed'
    assert cfg.camera('wrist').info_topic == 'wrist/camera_info'
    assert cfg.backend_options['base_url'] == 'http://h:1/v1'
    assert cfg.pipeline.safety.max_velocity_mps == 0.1
    assert cfg.gripper.joint_name == 'finger'
    assert (cfg.backend_options['media'], cfg.backend_options['schema_mode'],
            cfg.backend_options['max_retries']) == ('video', 'structured_outputs', 2)


def test_remote_switches_for_servers_without_vllm_extras_reach_the_backend() -> None:
    """NIM or another server that lacks structured_outputs / video: the node can say so."""
    from cosmos_planner.backends.registry import backend_class

    cfg = node_config_from_values({
        'backend.kind': 'openai', 'backend.media': 'images',
        'backend.schema_mode': 'response_format', 'backend.max_retries': 0})
    opts = cfg.backend_options
    assert (opts['media'], opts['schema_mode'], opts['max_retries']) == (
        'images', 'response_format', 0)
    cls = backend_class('openai')
    backend = cls(**{**opts, 'probe': False})
    assert backend.config.media == 'images'
    assert backend.config.schema_mode == 'response_format'
    assert backend.config.max_retries == 0
    with pytest.raises(ConfigError, match=r'backend\.media'):
        node_config_from_values({'backend.kind': 'openai', 'backend.media': 'gif'})


def test_run_time_changes_are_validated_as_a_whole() -> None:
    specs = all_specs(['camera'])
    current = {name: spec.default for name, spec in specs.items()}
    assert validate_changes(specs, current, [('safety.max_velocity_mps', 0.3)]) is None
    assert 'safety.workspace_max' in validate_changes(
        specs, current, [('safety.workspace_max', [-1.0, -1.0, -1.0])])
    assert 'ground.mode' in validate_changes(specs, current, [('ground.mode', 'sonar')])
    assert validate_changes(specs, current, [('use_sim_time', True)]) is None


def test_rendered_yaml_lists_every_parameter() -> None:
    text = render_params_yaml(['a', 'b'])
    for spec in NODE_PARAMS:
        assert f'    {spec.name}: ' in text
    assert '    cameras.b.compressed: false' in text
