"""The backend a planner configuration names, built the same way by the node and the replay.

``kind`` and ``options`` come from the ``backend.*`` parameters (``NodeConfig``); a local
backend without a model resolves the default checkpoint, and ``faults`` (TEST-ONLY) wraps
recorded answers in fault injection, optionally recording what comes out.
"""

import logging
from typing import Any, Mapping, Sequence, TYPE_CHECKING

if TYPE_CHECKING:
    from cosmos_planner.model.protocol import Backend


def make_configured_backend(kind: str, options: Mapping[str, Any], faults: Sequence[str] = (),
                            faults_then: str = 'pass') -> 'Backend':
    """Build the backend of ``backend.kind`` with its options (may load a model)."""
    from cosmos_planner.backends.registry import make_backend

    options = dict(options)
    if kind == 'local' and not options.get('model'):
        from cosmos_planner.backends.local.resolve import resolve_default_model

        resolved = resolve_default_model()
        options['model'] = resolved.path
        if resolved.is_tiny:
            logging.getLogger(__name__).warning(
                'no Cosmos Reason 2 weights found: using the tiny random test checkpoint, '
                'whose plans are meaningless (set backend.model or COSMOS_REASON2_MODEL)')
    if kind != 'faults':
        return make_backend(kind, **options)
    from cosmos_planner.backends.faults import FaultInjectingBackend

    record_path = options.pop('record_path', None)
    inner = make_backend('replay', **options) if options.get('path') else None
    backend: 'Backend' = FaultInjectingBackend(inner, faults=list(faults), then=faults_then)
    if record_path:
        from cosmos_planner.backends.recording import RecordingBackend
        backend = RecordingBackend(backend, record_path)
    return backend
