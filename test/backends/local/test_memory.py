"""Tests of backends/local/memory.py: where and at which dtype a model of a given size fits."""

import pytest

from cosmos_planner.backends.local.memory import choose_placement
from cosmos_planner.errors import ConfigError, ModelTooLargeError

GIB = 1024 ** 3


def test_placement_from_memory_figures():
    two_b = 2_000_000_000
    assert choose_placement(two_b, ram_bytes=32 * GIB).dtype == 'float32'
    assert choose_placement(two_b, ram_bytes=8 * GIB).dtype == 'bfloat16'
    gpu = choose_placement(two_b, cuda_free_bytes=80 * GIB, ram_bytes=8 * GIB)
    assert (gpu.device, gpu.dtype) == ('cuda', 'bfloat16')
    spill = choose_placement(two_b, cuda_free_bytes=2 * GIB, ram_bytes=64 * GIB)
    assert (spill.device, spill.dtype) == ('cpu', 'float32')
    with pytest.raises(ModelTooLargeError, match=r'needs .* GiB at bfloat16.*server backend'):
        choose_placement(two_b, ram_bytes=4 * GIB)
    with pytest.raises(ModelTooLargeError):
        choose_placement(two_b, dtype='float32', ram_bytes=8 * GIB)
    with pytest.raises(ModelTooLargeError, match='cuda:0'):
        choose_placement(8 * two_b, device='cuda:0', cuda_free_bytes=8 * GIB, ram_bytes=GIB)
    with pytest.raises(ConfigError, match='no CUDA'):
        choose_placement(two_b, device='cuda', ram_bytes=64 * GIB)
    with pytest.raises(ConfigError, match='dtype'):
        choose_placement(two_b, dtype='int4', ram_bytes=64 * GIB)
