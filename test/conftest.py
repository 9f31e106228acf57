"""Shared pytest fixtures (keep this file small: one fixture per shared resource)."""

import os
from pathlib import Path

from hypothesis import HealthCheck, settings
import pytest

# Property-based tests are deterministic unless HYPOTHESIS_PROFILE says otherwise: the same
# examples every run, no example database, so CI can never turn red on a case drawn for the
# first time. ``scripts/fuzz.sh`` selects the ``fuzz`` profile: new random examples each run,
# printed with a reproduction blob when one fails. A test's own ``@settings`` sets its
# example count; the profile decides only whether those examples are drawn at random.
settings.register_profile('ci', derandomize=True, database=None, print_blob=True)
settings.register_profile('fuzz', derandomize=False, database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get('HYPOTHESIS_PROFILE', 'ci'))


@pytest.fixture(scope='session')
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the tiny random Qwen3-VL checkpoint once per session (about 1 s) and share it.

    Built into the session's temporary folder rather than the user cache, so tests never
    depend on (or pollute) ``~/.cache``. Its answers are random by design.
    """
    from cosmos_planner.backends.local.tiny_checkpoint import build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp('tiny') / 'tiny-qwen3-vl')
