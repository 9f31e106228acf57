"""Model resolution offline: local folders, the Hugging Face cache, the embedded default.

No network and no torch; about 1 s (one tiny checkpoint build into a temporary cache).
"""

import shutil
from pathlib import Path

import pytest

from cosmos_planner.errors import ModelNotFoundError
from cosmos_planner.backends.local.resolve import (DEFAULT_MODEL_ID, display_name, ENV_MODEL,
                                                   find_in_hf_cache, locate_model,
                                                   resolve_default_model)
from cosmos_planner.backends.local.tiny_checkpoint import MARKER_FILE


def fake_hf_cache(root, repo_id, source):
    """Lay out ``source``'s files as the Hugging Face cache does (refs/main -> snapshot)."""
    repo = root / ('models--' + repo_id.replace('/', '--'))
    snapshot = repo / 'snapshots' / ('a' * 40)
    snapshot.mkdir(parents=True)
    for name in ('config.json', 'model.safetensors'):
        shutil.copy(source / name, snapshot / name)
    (repo / 'refs').mkdir()
    (repo / 'refs' / 'main').write_text('a' * 40)
    return snapshot


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_MODEL, raising=False)
    monkeypatch.setenv('HF_HUB_CACHE', str(tmp_path / 'hf'))
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setenv('COSMOS_PLANNER_CACHE', str(tmp_path / 'cosmos'))
    return tmp_path


def test_default_is_the_tiny_checkpoint_when_no_weights_are_present(isolated):
    path, is_tiny = resolve_default_model()
    assert is_tiny is True
    assert (isolated / 'cosmos') in Path(path).parents
    assert (Path(path) / MARKER_FILE).is_file()


def test_default_prefers_cosmos_reason2_in_the_hf_cache(isolated, tiny_checkpoint):
    snapshot = fake_hf_cache(isolated / 'hf', DEFAULT_MODEL_ID, tiny_checkpoint)
    assert find_in_hf_cache(DEFAULT_MODEL_ID) == snapshot
    assert resolve_default_model() == (str(snapshot), False)
    assert display_name(snapshot) == DEFAULT_MODEL_ID
    assert locate_model(DEFAULT_MODEL_ID) == snapshot


def test_env_variable_wins_and_missing_weights_are_an_error(isolated, tiny_checkpoint,
                                                            monkeypatch):
    monkeypatch.setenv(ENV_MODEL, str(tiny_checkpoint))
    assert resolve_default_model() == (str(tiny_checkpoint), True)
    monkeypatch.setenv(ENV_MODEL, str(isolated / 'gone'))
    with pytest.raises(ModelNotFoundError, match='does not exist'):
        resolve_default_model()  # no silent fallback to random weights
    monkeypatch.setenv(ENV_MODEL, 'nvidia/Cosmos-Reason2-8B')
    with pytest.raises(ModelNotFoundError, match='gated') as err:
        resolve_default_model()
    assert 'HF_HUB_OFFLINE=1' in str(err.value) and '--backend openai' in str(err.value)


def test_locate_rejects_folders_that_are_not_models(isolated):
    empty = isolated / 'empty'
    empty.mkdir()
    with pytest.raises(ModelNotFoundError, match='no config.json'):
        locate_model(empty)
    with pytest.raises(ModelNotFoundError, match='no model named'):
        locate_model('  ')
    assert display_name('/models/mine') == '/models/mine'
