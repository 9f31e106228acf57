"""Find model weights offline: a local folder, the Hugging Face cache, or the tiny checkpoint.

Cosmos Reason 2 weights are gated and user-supplied; nothing here ever downloads. A model is
named by a folder path or a Hugging Face id; an id is looked up in the local Hugging Face
cache only (``local_files_only``, honouring ``HF_HOME`` / ``HF_HUB_CACHE``). When the weights
are absent, ``ModelNotFoundError`` says how to provide them.

The embedded default (``resolve_default_model``) is ``COSMOS_REASON2_MODEL`` when set (a path
or an id; absent weights are then an error, not a silent fallback), else
``nvidia/Cosmos-Reason2-2B`` when it is in the cache, else the tiny random checkpoint, with
``is_tiny=True`` so callers say plainly that its plans are meaningless.
"""

import os
import re
from pathlib import Path
from typing import NamedTuple, Optional, Union

from cosmos_planner.errors import ModelNotFoundError

DEFAULT_MODEL_ID = 'nvidia/Cosmos-Reason2-2B'
ENV_MODEL = 'COSMOS_REASON2_MODEL'
_HF_ID = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$')


class ResolvedModel(NamedTuple):
    """A model folder on this machine and whether it is the tiny random checkpoint."""

    path: str
    is_tiny: bool


def guidance(model: str) -> str:
    """Explain the three ways of providing weights (used in ModelNotFoundError messages)."""
    repo = model if _HF_ID.match(model) else DEFAULT_MODEL_ID
    return (
        'Provide the weights in one of these ways: '
        f'(1) a local folder with config.json and *.safetensors, passed as the model '
        f'(e.g. --model /models/Cosmos-Reason2-2B) or set {ENV_MODEL}=/models/Cosmos-Reason2-2B; '
        f'(2) the Hugging Face cache: on a machine with access run '
        f'`huggingface-cli download {repo}` (the repository is gated: accept its license '
        'first), copy the cache (~/.cache/huggingface, or HF_HOME) here and set '
        'HF_HUB_OFFLINE=1; '
        '(3) a server backend instead of local weights: --backend openai --base-url '
        'http://HOST:8000/v1 against vLLM or an NVIDIA NIM serving Cosmos Reason 2.')


def is_hf_id(model: str) -> bool:
    """Tell whether ``model`` looks like a Hugging Face repository id (``org/name``)."""
    return bool(_HF_ID.match(model))


def hf_cache_dir() -> Optional[str]:
    """Return the Hugging Face hub cache named by the environment now (None: the default).

    Read at call time, not at import time as huggingface_hub does, so a changed
    ``HF_HUB_CACHE`` / ``HF_HOME`` is honoured in a long-lived process.
    """
    for name in ('HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE'):
        if os.environ.get(name):
            return os.environ[name]
    home = os.environ.get('HF_HOME')
    return os.path.join(home, 'hub') if home else None


def find_in_hf_cache(repo_id: str) -> Optional[Path]:
    """Return the cached snapshot folder of ``repo_id``, or None; never touches the network."""
    try:
        from huggingface_hub import snapshot_download
        folder = snapshot_download(repo_id=repo_id, local_files_only=True,
                                   cache_dir=hf_cache_dir())
    except Exception:  # noqa: BLE001 - any lookup failure means: not available offline
        return None
    path = Path(folder)
    return path if (path / 'config.json').is_file() else None


def _check_folder(folder: Path, model: str) -> Path:
    if not (folder / 'config.json').is_file():
        raise ModelNotFoundError(
            f'{folder} has no config.json, so it is not a model folder. ' + guidance(model))
    if not any(folder.glob('*.safetensors')):
        bins = any(folder.glob('*.bin'))
        why = ('it holds only PyTorch .bin weights and this backend loads safetensors only '
               '(safer: no pickle)' if bins else 'it holds no *.safetensors weights')
        raise ModelNotFoundError(f'{folder}: {why}. ' + guidance(model))
    return folder


def locate_model(model: Union[str, Path]) -> Path:
    """Return the local folder of ``model`` (path or HF id) or raise ModelNotFoundError."""
    text = str(model).strip()
    if not text:
        raise ModelNotFoundError('no model named. ' + guidance(DEFAULT_MODEL_ID))
    folder = Path(text).expanduser()
    if folder.is_dir():
        return _check_folder(folder.resolve(), text)
    if is_hf_id(text) and not text.startswith(('.', '/', '~')):
        cached = find_in_hf_cache(text)
        if cached is not None:
            return _check_folder(cached, text)
        raise ModelNotFoundError(
            f'model {text!r} is neither a local folder nor in the Hugging Face cache '
            '(looked up offline; nothing is downloaded). ' + guidance(text))
    raise ModelNotFoundError(f'model folder {folder} does not exist. ' + guidance(text))


def display_name(path: Union[str, Path]) -> str:
    """Name a model folder for people: ``org/name`` for Hugging Face cache snapshots."""
    parts = Path(path).parts
    for part in parts:
        if part.startswith('models--'):
            return part[len('models--'):].replace('--', '/', 1)
    return str(path)


def resolve_default_model() -> ResolvedModel:
    """Pick the embedded default model (see the module docstring for the order)."""
    from cosmos_planner.backends.local.tiny_checkpoint import (ensure_tiny_checkpoint,
                                                               is_tiny_checkpoint)

    chosen = os.environ.get(ENV_MODEL, '').strip()
    if chosen:
        path = locate_model(chosen)
        return ResolvedModel(str(path), is_tiny_checkpoint(path))
    cached = find_in_hf_cache(DEFAULT_MODEL_ID)
    if cached is not None and any(cached.glob('*.safetensors')):
        return ResolvedModel(str(cached), is_tiny_checkpoint(cached))
    return ResolvedModel(str(ensure_tiny_checkpoint()), True)
