"""Shared pytest fixtures (keep this file small: one fixture per shared resource)."""

from pathlib import Path

import pytest


@pytest.fixture(scope='session')
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the tiny random Qwen3-VL checkpoint once per session (about 1 s) and share it.

    Built into the session's temporary folder rather than the user cache, so tests never
    depend on (or pollute) ``~/.cache``. Its answers are random by design.
    """
    from cosmos_planner.tiny_checkpoint import build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp('tiny') / 'tiny-qwen3-vl')
