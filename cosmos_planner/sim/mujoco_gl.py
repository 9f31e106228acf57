"""Import MuJoCo with offscreen EGL rendering selected first.

``MUJOCO_GL`` is read once, when ``mujoco`` is first imported; set later it has no effect
and rendering falls back to GLFW, which needs a display. Every module that renders
imports mujoco through ``import_mujoco()`` so the order is right wherever it starts.

A second load-order hazard, found on the development machine: Mesa's software renderer
(llvmpipe, used by EGL here) loads the system ``libLLVM-15`` with its symbols visible to
every later library. Triton (pulled in by torch/torchvision) bundles its own LLVM, and
when ``libtriton.so`` is loaded *after* Mesa its static initialisers bind to Mesa's LLVM
and the process dies with a segmentation fault (e.g. ``import torchvision.ops`` after the
first rendered frame, in the same process). Loaded *before* Mesa it is harmless, so when
Triton is installed its library is preloaded, privately (``RTLD_LOCAL``), before MuJoCo
creates a GL context. It costs about 30 ms and runs nothing of Triton's beyond its own
initialisers.
"""

import ctypes
import importlib.util
import os
from pathlib import Path
from types import ModuleType

from cosmos_planner.errors import ConfigError

_preloaded = False


def _preload_triton() -> None:
    """Load ``libtriton.so`` before Mesa's LLVM, when Triton is installed (see module doc)."""
    global _preloaded
    if _preloaded:
        return
    _preloaded = True
    try:
        spec = importlib.util.find_spec('triton')
    except (ImportError, ValueError):
        return
    if spec is None or not spec.origin:
        return
    lib = Path(spec.origin).parent / '_C' / 'libtriton.so'
    if lib.exists():
        try:
            ctypes.CDLL(str(lib), mode=os.RTLD_LAZY | os.RTLD_LOCAL)
        except OSError:  # a broken Triton install: rendering does not need it
            pass


def import_mujoco() -> ModuleType:
    """Return the ``mujoco`` module, with ``MUJOCO_GL=egl`` unless the user chose one."""
    os.environ.setdefault('MUJOCO_GL', 'egl')
    if os.environ['MUJOCO_GL'] == 'egl':
        # PyOpenGL (used by mujoco.Renderer) must pick the same platform as MuJoCo.
        os.environ.setdefault('PYOPENGL_PLATFORM', 'egl')
    _preload_triton()
    try:
        import mujoco
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError(
            f'the simulator needs MuJoCo: pip install "cosmos_planner[sim]" ({exc})') from None
    return mujoco
