"""Where a local model runs and in which dtype, decided before a single weight is loaded.

Loading an 8B model into 24 GB of RAM at float32 would swap the machine to a halt; finding
out by trying is too late. So the parameter count is read from the safetensors headers (a few
kilobytes per file), multiplied by the bytes per parameter of each candidate dtype plus a
margin for activations and the KV cache, and compared with the memory available:

- CUDA present and the model fits at bfloat16 (or the dtype asked for): CUDA.
- Else CPU at float32 when it fits (fastest and exact on CPU), else bfloat16 (half the
  memory), else ``ModelTooLargeError`` naming the figures and the alternatives.

Pure Python (no torch import), so the decision is testable with injected memory figures.
"""

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from cosmos_planner.errors import ConfigError, ModelTooLargeError

BYTES_PER_PARAM = {'float32': 4, 'bfloat16': 2, 'float16': 2}
_SAFETENSORS_BYTES = {'F64': 8, 'F32': 4, 'BF16': 2, 'F16': 2, 'F8_E4M3': 1, 'F8_E5M2': 1,
                      'I64': 8, 'I32': 4, 'I16': 2, 'I8': 1, 'U8': 1, 'BOOL': 1}
#: Weights times this, plus the fixed margin, is what a model needs to run.
OVERHEAD_FACTOR = 1.2
OVERHEAD_BYTES = 256 * 1024 ** 2
_GIB = 1024 ** 3


@dataclass(frozen=True)
class Placement:
    """Device and dtype for a model, with the memory figures the decision used."""

    device: str
    dtype: str
    needed_bytes: int
    available_bytes: int


def count_parameters(folder: Union[str, Path]) -> int:
    """Count parameters from the safetensors headers of ``folder`` (reads no tensor data)."""
    total = 0
    files = sorted(Path(folder).glob('*.safetensors'))
    if not files:
        raise ConfigError(f'{folder}: no *.safetensors files to size the model from')
    for file in files:
        try:
            with open(file, 'rb') as handle:
                (length,) = struct.unpack('<Q', handle.read(8))
                if length > 100 * 1024 ** 2:
                    raise ValueError('header too large')
                header = json.loads(handle.read(length))
        except (OSError, ValueError, struct.error) as exc:
            raise ConfigError(f'{file}: unreadable safetensors header ({exc})') from exc
        for name, info in header.items():
            if name == '__metadata__':
                continue
            count = 1
            for dim in info.get('shape', []):
                count *= int(dim)
            total += count
    return total


def needed_bytes(n_params: int, dtype: str) -> int:
    """Memory to run ``n_params`` at ``dtype``: weights with margin for activations."""
    return int(n_params * BYTES_PER_PARAM[dtype] * OVERHEAD_FACTOR) + OVERHEAD_BYTES


def available_ram_bytes() -> int:
    """RAM that can be used without swapping (``MemAvailable``), or total RAM if unknown."""
    try:
        with open('/proc/meminfo', encoding='ascii') as handle:
            for line in handle:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    import os
    return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')


def _gib(n: int) -> str:
    return f'{n / _GIB:.1f} GiB'


def choose_placement(n_params: int, device: str = 'auto', dtype: str = 'auto',
                     cuda_free_bytes: Optional[int] = None,
                     ram_bytes: Optional[int] = None) -> Placement:
    """Decide device and dtype; ``cuda_free_bytes`` None means no CUDA device.

    Raises ConfigError for an unknown device/dtype or CUDA asked for but absent, and
    ModelTooLargeError when the model cannot fit with any allowed dtype.
    """
    if dtype != 'auto' and dtype not in BYTES_PER_PARAM:
        raise ConfigError(f'unknown dtype {dtype!r}; choose auto, '
                          + ', '.join(BYTES_PER_PARAM))
    wants_cuda = device.startswith('cuda')
    if device not in ('auto', 'cpu') and not wants_cuda:
        raise ConfigError(f"unknown device {device!r}; choose 'auto', 'cpu' or 'cuda[:N]'")
    if wants_cuda and cuda_free_bytes is None:
        raise ConfigError(f'device {device!r} asked for but no CUDA device is available')
    ram = available_ram_bytes() if ram_bytes is None else ram_bytes
    if wants_cuda or (device == 'auto' and cuda_free_bytes is not None):
        assert cuda_free_bytes is not None  # checked above when CUDA is asked for
        gpu_dtype = 'bfloat16' if dtype == 'auto' else dtype
        need = needed_bytes(n_params, gpu_dtype)
        if need <= cuda_free_bytes:
            return Placement('cuda' if device == 'auto' else device, gpu_dtype, need,
                             cuda_free_bytes)
        if wants_cuda:
            raise ModelTooLargeError(
                f'the model ({n_params / 1e9:.2f} B parameters) needs {_gib(need)} at '
                f'{gpu_dtype} but {device} has {_gib(cuda_free_bytes)} free; free GPU '
                'memory, use a smaller model or run it on a server backend')
    candidates = ('float32', 'bfloat16') if dtype == 'auto' else (dtype,)
    for candidate in candidates:
        need = needed_bytes(n_params, candidate)
        if need <= ram:
            return Placement('cpu', candidate, need, ram)
    smallest = needed_bytes(n_params, candidates[-1])
    raise ModelTooLargeError(
        f'the model ({n_params / 1e9:.2f} B parameters) needs {_gib(smallest)} at '
        f'{candidates[-1]} but only {_gib(ram)} of RAM is available'
        + (' and no CUDA device fits it' if cuda_free_bytes is not None else '')
        + '; use a smaller checkpoint (Cosmos-Reason2-2B), a GPU, or a server backend '
        '(--backend openai against vLLM or NIM)')
