"""Fixtures shared by the local-backend tests: the backend on the tiny random checkpoint."""

import pytest


@pytest.fixture(scope='module')
def backend(tiny_checkpoint):
    """Load the tiny checkpoint on the CPU once per test module (closed after it)."""
    local = pytest.importorskip('cosmos_planner.backends.local.backend')
    instance = local.LocalBackend(str(tiny_checkpoint), device='cpu', max_think_chars=80)
    yield instance
    instance.close()
