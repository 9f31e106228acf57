"""Make a backend by name, importing only the one asked for.

Backends are registered as ``'module:Class'`` strings, so asking for ``replay`` never imports
torch and asking for ``local`` on a machine without the model stack fails with the install
extra to add, not an ImportError from deep inside transformers. Options are checked against
the constructor's signature first, so a typo names the accepted options instead of raising a
TypeError from somewhere inside the backend. ``record_path`` wraps any backend in a
RecordingBackend.
"""

import importlib
from importlib.metadata import entry_points
import inspect
from typing import Any, Callable, Dict, Tuple

from cosmos_planner.model.protocol import Backend
from cosmos_planner.errors import ConfigError

#: Entry-point group through which outer packages add backends (setup.py declares the
#: simulator's scripted expert there), so this inner module never names an outer one.
ENTRY_POINT_GROUP = 'cosmos_planner.backends'

#: kind -> ('module:Class', pip extra that provides its dependencies).
BACKENDS: Dict[str, Tuple[str, str]] = {
    'local': ('cosmos_planner.backends.local.backend:LocalBackend', 'model'),
    'replay': ('cosmos_planner.backends.recording:ReplayBackend', ''),
    'openai': ('cosmos_planner.backends.openai.client:OpenAICompatBackend', 'remote'),
}
_plugins_loaded = False


def _load_plugins() -> None:
    """Register the installed entry points once (an explicit registration wins)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        BACKENDS.setdefault(ep.name, (ep.value.split('[')[0].strip(),
                                      ','.join(ep.extras)))


def backend_kinds() -> Tuple[str, ...]:
    """List the registered backend kinds, for help texts and error messages."""
    _load_plugins()
    return tuple(BACKENDS)


def register_backend(kind: str, spec: str, extra: str = '') -> None:
    """Add or replace a backend kind (``spec`` is ``'module:Class'``)."""
    if ':' not in spec:
        raise ConfigError(f"backend spec must be 'module:Class', got {spec!r}")
    BACKENDS[kind] = (spec, extra)


def backend_class(kind: str) -> Callable[..., Backend]:
    """Import and return the class registered for ``kind``."""
    _load_plugins()
    if kind not in BACKENDS:
        raise ConfigError(f'unknown backend {kind!r}; valid kinds: '
                          + ', '.join(sorted(BACKENDS)))
    spec, extra = BACKENDS[kind]
    module_name, _, class_name = spec.partition(':')
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f" (install it with: pip install 'cosmos_planner[{extra}]')" if extra else ''
        raise ConfigError(f'backend {kind!r} cannot be imported: {exc}{hint}') from exc
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise ConfigError(f'backend {kind!r}: {module_name} has no {class_name}') from None


def make_backend(kind: str, **options: Any) -> Backend:
    """Build the backend ``kind`` with ``options``; ``record_path=FILE`` records its answers.

    Options set to None are dropped, so command lines can pass every flag and let each
    backend keep its own defaults.
    """
    record_path = options.pop('record_path', None)
    options = {k: v for k, v in options.items() if v is not None}
    cls = backend_class(kind)
    try:
        inspect.signature(cls).bind(**options)
    except TypeError as exc:
        accepted = [name for name, p in inspect.signature(cls).parameters.items()
                    if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        raise ConfigError(f'backend {kind!r}: {exc}; it accepts: '
                          + (', '.join(accepted) or 'no options')) from None
    except ValueError:  # no signature available (C extension): let the call decide
        pass
    backend = cls(**options)
    if record_path:
        from cosmos_planner.backends.recording import RecordingBackend
        backend = RecordingBackend(backend, record_path)
    return backend
