"""``cosmos_planner.settings``: the one spec class, the one writer, the one NAME=VALUE parser.

The parser is tested through both of its command-line callers (``cosmos-planner replay -p``
and ``cosmos-planner sim --param``), so they cannot drift apart again; the writer is read
back by the replay's own reader and by plain YAML.
"""

import argparse
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml

from cosmos_planner.errors import ConfigError
from cosmos_planner.settings import (ParamSpec, parse_assignment, parse_assignments,
                                     render_params_file, write_params_file)


# --- ParamSpec ----------------------------------------------------------------------------

def test_one_range_check_for_ros_values_and_core_values() -> None:
    spec = ParamSpec('safety.max_waypoints', 10, 'Most points in a trajectory.', min=1,
                     max=100)
    assert spec.type == 'integer'
    assert spec.check(5) is None and spec.coerce(5.0) == 5
    assert 'must be an integer' in spec.check(5.0)   # ROS-strict: rcl refuses the type
    for bad in (0, 101):
        assert spec.check(bad) == f'safety.max_waypoints = {bad} is outside [1, 100]'
        with pytest.raises(ConfigError, match=r'is outside \[1, 100\]'):
            spec.coerce(bad)
    assert 'must be an integer' in spec.check(True)


@pytest.mark.parametrize('spec, value, needle', [
    (ParamSpec('d', 1.0, 'x', min=0.0), float('nan'), 'd must be a finite number'),
    (ParamSpec('d', 1.0, 'x', max=2.0), 3, r'd = 3.0 is outside \[-inf, 2\]'),
    (ParamSpec('s', 'a', 'x', choices=('a', 'b')), 'c', r"s must be one of \['a', 'b'\]"),
    (ParamSpec('v', [0.0, 0.0], 'x', length=2), [1.0], 'v must be a list of 2 numbers'),
    (ParamSpec('v', [0.0], 'x'), [float('inf')], 'v contains a non-finite number'),
    (ParamSpec('v', [0.0], 'x'), ['a'], 'v must be a list of numbers'),
    (ParamSpec('n', ['a'], 'x'), [1], 'n must be a list of strings'),
    (ParamSpec('b', True, 'x'), 1, 'b must be a bool'),
])
def test_refusals_name_the_parameter(spec: ParamSpec, value: Any, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        spec.coerce(value)
    assert spec.check(value) is not None


def test_only_one_spec_class_in_the_package() -> None:
    from cosmos_planner.pipeline import config, node_config
    from cosmos_planner.ros import params

    assert config.ParamSpec is node_config.ParamSpec is params.ParamSpec is ParamSpec


# --- NAME=VALUE -----------------------------------------------------------------------------

@pytest.mark.parametrize('item, expected', [
    ('backend.kind:=replay', ('backend.kind', 'replay')),
    ('backend.kind=replay', ('backend.kind', 'replay')),
    ('safety.max_step_m:=0.5', ('safety.max_step_m', 0.5)),
    ('ground.plane=[0, 0, 1, 0]', ('ground.plane', [0, 0, 1, 0])),
    ('prompt.reasoning:=true', ('prompt.reasoning', True)),
    ('target.frame:=""', ('target.frame', '')),
    ('a=b:=c', ('a', 'b:=c')),             # the name ends at the first '='
    ('backend.base_url:=http://h:8000/v1', ('backend.base_url', 'http://h:8000/v1')),
])
def test_assignment_rule(item: str, expected: tuple) -> None:
    assert parse_assignment(item) == expected


@pytest.mark.parametrize('item', ['backend.kind', ':=1', '=1', 'a b=1', 'a:=', 'x.:=1',
                                  'a:=[1,'])
def test_bad_assignments_are_refused(item: str) -> None:
    with pytest.raises(ConfigError, match=r'^--flag '):
        parse_assignment(item, '--flag')


def test_later_assignment_wins() -> None:
    assert parse_assignments(['a:=1', 'b=2', 'a=3']) == {'a': 3, 'b': 2}


ITEMS = ['safety.max_step_m:=0.5', 'backend.kind=replay', 'a=b:=c']
PARSED = {'safety.max_step_m': 0.5, 'backend.kind': 'replay', 'a': 'b:=c'}


def test_replay_command_parses_p_with_the_shared_rule(tmp_path: Path) -> None:
    from cosmos_planner.bag import replay

    parser = argparse.ArgumentParser()
    replay.add_arguments(parser)
    argv: List[str] = [str(tmp_path / 'bag'), '--task', 'pick']
    for item in ITEMS:
        argv += ['-p', item]
    assert replay.options_from_args(parser.parse_args(argv)).params == PARSED
    with pytest.raises(ConfigError, match='-p takes NAME:=VALUE'):
        replay.options_from_args(parser.parse_args(argv + ['-p', 'oops']))


def test_sim_command_parses_param_with_the_shared_rule(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from cosmos_planner.cli.main import main
    from cosmos_planner.sim import episode

    seen: Dict[str, Any] = {}

    class FakeRunner:
        def __init__(self, sim_cfg: object, cfg: 'episode.RunnerConfig') -> None:
            seen.update(cfg.planner_params)

        def __enter__(self) -> 'FakeRunner':
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def run(self) -> Dict[str, Any]:
            return {'success_rate': 1.0, 'successes': 1, 'episodes': 1}

    monkeypatch.setattr(episode, 'EpisodeRunner', FakeRunner)
    argv = ['sim', '--backend', 'expert']
    for item in ITEMS:
        argv += ['--param', item]
    assert main(argv) == 0
    assert seen == PARSED
    assert main(['sim', '--backend', 'expert', '--param', 'oops']) != 0
    assert '--param takes NAME:=VALUE' in capsys.readouterr().err


# --- the parameter-file writer ------------------------------------------------------------------

VALUES = {'use_sim_time': True, 'backend.kind': 'replay', 'qos.depth': 10,
          'safety.max_step_m': 1e-05, 'target.frame': '', 'backend.model': '5',
          'backend.base_url': 'http://h:8000/v1', 'cameras.names': ['front', 'wrist'],
          'ground.plane': (0.0, 0.0, 1.0, 0.0), 'prompt.preset': 'no'}


def test_written_file_reads_back_exactly(tmp_path: Path) -> None:
    from cosmos_planner.bag.node_params import load_params_file

    path = write_params_file(tmp_path / 'sub' / 'p.yaml', VALUES)
    expected = dict(VALUES, **{'ground.plane': [0.0, 0.0, 1.0, 0.0]})
    read = yaml.safe_load(path.read_text())['cosmos_planner']['ros__parameters']
    assert read == expected
    assert {k: type(v) for k, v in read.items()} == {k: type(v) for k, v in expected.items()}
    assert load_params_file(path) == expected
    nested = render_params_file({'a': {'b': 1, 'c': {'d': 'x'}}}, 'other')
    assert yaml.safe_load(nested) == {'other': {'ros__parameters': {'a.b': 1, 'a.c.d': 'x'}}}


@pytest.mark.parametrize('value', [None, float('nan'), {1, 2}])
def test_values_yaml_cannot_hold_are_refused(value: Any) -> None:
    with pytest.raises(ConfigError, match='cannot be written'):
        render_params_file({'x': value})


def test_comments_and_header() -> None:
    text = render_params_file({'a': 1}, header=['made here'], comments={'a': 'why ' * 30})
    lines = text.splitlines()
    assert lines[0] == '# made here' and lines[1] == 'cosmos_planner:'
    assert all(len(line) <= 99 for line in lines)
    assert lines[-1] == '    a: 1' and lines[-2].startswith('    # why')


# --- OpenAI settings: one declaration, three surfaces ----------------------------------------

def test_openai_flags_parameters_and_options_come_from_one_declaration() -> None:
    from cosmos_planner.backends.openai.config import OpenAICompatConfig
    from cosmos_planner.cli.plan import add_backend_arguments, openai_options
    from cosmos_planner.pipeline.node_config import all_specs, node_config_from_values
    from cosmos_planner.settings import node_settings

    names = [spec.name for spec in node_settings(OpenAICompatConfig, '')]
    parser = argparse.ArgumentParser()
    add_backend_arguments(parser, default_preset='plan')
    args = parser.parse_args(['--backend', 'openai', '--base-url', 'http://h:1/v1',
                              '--media', 'images', '--timeout-s', '5', '--max-retries', '0'])
    assert openai_options(args) == {
        'base_url': 'http://h:1/v1', 'api_key_env': None, 'timeout_s': 5.0,
        'media': 'images', 'schema_mode': None, 'max_retries': 0}
    assert set(openai_options(args)) == set(names)
    with pytest.raises(SystemExit):
        parser.parse_args(['--media', 'gif'])
    specs = all_specs(['camera'])
    assert all(specs['backend.' + name].read_only for name in names)
    opts = node_config_from_values({'backend.kind': 'openai'}).backend_options
    assert set(opts) == set(names) | {'model'}
    config = OpenAICompatConfig.from_options(opts)   # every option is a config field
    assert (config.timeout_s, config.api_key_env, config.model) == (60.0, 'OPENAI_API_KEY',
                                                                    None)
