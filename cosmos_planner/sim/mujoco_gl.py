"""Import MuJoCo with offscreen EGL rendering selected first.

``MUJOCO_GL`` is read once, when ``mujoco`` is first imported; set later it has no effect
and rendering falls back to GLFW, which needs a display. Every module that renders
imports mujoco through ``import_mujoco()`` so the order is right wherever it starts.
"""

import os
from types import ModuleType

from cosmos_planner.errors import ConfigError


def import_mujoco() -> ModuleType:
    """Return the ``mujoco`` module, with ``MUJOCO_GL=egl`` unless the user chose one."""
    os.environ.setdefault('MUJOCO_GL', 'egl')
    if os.environ['MUJOCO_GL'] == 'egl':
        # Mesa's EGL picks a device by itself; PYOPENGL_PLATFORM must agree with MUJOCO_GL.
        os.environ.setdefault('PYOPENGL_PLATFORM', 'egl')
    try:
        import mujoco
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError(
            f'the simulator needs MuJoCo: pip install "cosmos_planner[sim]" ({exc})') from None
    return mujoco
