"""Tests of backends/registry.py: kinds, options, wrapping, lazy imports (a 2 s subprocess)."""

import json
import subprocess
import sys

import pytest

from cosmos_planner.backends.recording import RecordingBackend, ReplayBackend
from cosmos_planner.backends.registry import (backend_class, backend_kinds, BACKENDS,
                                              make_backend, register_backend)
from cosmos_planner.errors import ConfigError
from planner_helpers import PLAN_ANSWER


def test_factory_registry_lists_valid_kinds_on_error():
    assert set(backend_kinds()) >= {'local', 'replay', 'openai', 'expert'}
    with pytest.raises(ConfigError, match='valid kinds: expert, local, openai, replay'):
        make_backend('vllm-magic')


def test_factory_builds_replay_and_wraps_recording(recorded, requests_, tmp_path):
    backend = make_backend('replay', path=recorded, record_path=tmp_path / 'again.jsonl')
    assert isinstance(backend, RecordingBackend)
    assert isinstance(backend.inner, ReplayBackend)
    backend.generate(requests_[0])
    backend.close()
    assert json.loads((tmp_path / 'again.jsonl').read_text())['text'] == PLAN_ANSWER
    assert isinstance(make_backend('replay', path=recorded, device=None), ReplayBackend)


def test_factory_names_accepted_options(recorded):
    with pytest.raises(ConfigError, match='it accepts: path, when_exhausted'):
        make_backend('replay', path=recorded, temprature=0.3)


def test_factory_reports_missing_modules_with_the_extra():
    register_backend('broken', 'cosmos_planner.backends.does_not_exist:Nope', extra='model')
    try:
        with pytest.raises(ConfigError, match=r"cosmos_planner\[model\]"):
            backend_class('broken')
        with pytest.raises(ConfigError, match="module:Class"):
            register_backend('bad', 'no_colon_here')
    finally:
        BACKENDS.pop('broken', None)


def test_factory_imports_only_the_backend_asked_for(recorded):
    code = ('import sys; from cosmos_planner.backends.registry import make_backend; '
            f'make_backend("replay", path={str(recorded)!r}); '
            'print(sorted(m for m in ("torch", "transformers", "openai", "rclpy", "mujoco") '
            'if m in sys.modules))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == '[]'
