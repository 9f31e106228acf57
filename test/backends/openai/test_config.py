"""Tests of backends/openai/config.py: validated settings, the /v1 suffix, declared specs."""

import dataclasses

import pytest

from cosmos_planner.backends.openai.config import OpenAICompatConfig
from cosmos_planner.errors import ConfigError


@pytest.mark.parametrize('kw,match', [
    ({'base_url': 'ftp://x'}, 'http'), ({'media': 'gif'}, 'media'),
    ({'schema_mode': 'guided_json'}, 'schema_mode'), ({'timeout_s': 0}, 'timeout_s'),
    ({'max_retries': -1}, 'max_retries'), ({'backoff_s': 5, 'backoff_max_s': 1}, 'backoff'),
    ({'jpeg_quality': 0}, 'jpeg_quality'), ({'timeout_s': 7200.0}, 'timeout_s'),
    ({'stream': 1}, 'stream must be a bool'), ({'api_key_env': ' '}, 'api_key_env'),
])
def test_bad_config_is_rejected(kw, match):
    args = {'base_url': 'http://127.0.0.1:1/v1', **kw}
    with pytest.raises(ConfigError, match=match):
        OpenAICompatConfig(**args)


def test_bare_server_url_gets_v1():
    assert OpenAICompatConfig('http://gpu:8000').base_url == 'http://gpu:8000/v1'


def test_settings_are_declared_once_on_the_config():
    """The node's backend.* parameters come from the config fields (node defaults kept)."""
    from cosmos_planner.settings import node_settings, settings_specs

    node = {s.name: s for s in node_settings(OpenAICompatConfig, 'backend.')}
    assert list(node) == ['backend.base_url', 'backend.api_key_env', 'backend.timeout_s',
                          'backend.media', 'backend.schema_mode', 'backend.max_retries']
    assert (node['backend.timeout_s'].default, node['backend.api_key_env'].default) == (
        60.0, 'OPENAI_API_KEY')
    assert all(s.read_only and s.description for s in node.values())
    every = settings_specs(OpenAICompatConfig)
    assert [s.name for s in every] == [f.name for f in dataclasses.fields(OpenAICompatConfig)]
    assert all(len(s.description) > 15 for s in every)
    assert OpenAICompatConfig(model='').model is None   # the node's empty backend.model
