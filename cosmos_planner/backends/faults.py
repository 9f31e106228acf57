"""FaultInjectingBackend: a test wrapper that makes a backend fail in scripted ways.

A fake on purpose, and named so: it exists to prove that the planner, the node and the
pipeline handle every way a real backend fails (slow, erroring, unreachable, out of memory,
garbage or cut-off text, hanging until cancelled) without a real server misbehaving on cue.
Faults are scripted per call: the n-th ``generate`` gets the n-th fault, later calls get
``then`` (pass-through by default). Faults can be ``Fault`` objects or short strings for
command lines and parametrized tests: ``pass``, ``delay:0.2``, ``error``,
``error:retryable``, ``unavailable``, ``garbage``, ``truncate:0.5``, ``oom``, ``hang``,
``hang:30``.

``hang`` and ``delay`` wait on the job's cancel token, so a cancel ends them at once with
``GenerationCancelled``; the token is passed on to the wrapped backend unchanged.
"""

import dataclasses
import threading
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Union

from cosmos_planner.model.cancel import CancelToken, token_or_new
from cosmos_planner.model.protocol import Backend, Completion, GenerationRequest
from cosmos_planner.errors import (BackendError, BackendUnavailable, ConfigError,
                                   GenerationCancelled)

FAULT_KINDS = ('pass', 'delay', 'error', 'unavailable', 'garbage', 'truncate', 'oom', 'hang')
#: Longest a ``hang`` waits for a cancel before failing, so a broken test cannot hang CI.
DEFAULT_HANG_S = 60.0


@dataclass(frozen=True)
class Fault:
    """One scripted behaviour for one ``generate`` call."""

    kind: str = 'pass'
    #: ``delay``: seconds before passing through; ``hang``: longest wait for a cancel.
    seconds: float = 0.0
    #: ``garbage``: the text returned instead of an answer.
    text: str = 'I cannot help with that. {"point_2d": [oops'
    #: ``truncate``: fraction of the inner answer's characters kept.
    keep: float = 0.5
    #: ``error``: whether the raised BackendError says a retry may help.
    retryable: bool = False
    message: str = ''

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ConfigError(f'unknown fault {self.kind!r}; valid: {", ".join(FAULT_KINDS)}')
        if not 0.0 <= self.keep <= 1.0:
            raise ConfigError(f'truncate keep must be within 0-1, got {self.keep}')
        if self.seconds < 0:
            raise ConfigError(f'fault seconds must be >= 0, got {self.seconds}')

    @classmethod
    def parse(cls, spec: Union['Fault', str]) -> 'Fault':
        """Build a fault from ``kind[:arg]`` (see the module docstring); Faults pass through."""
        if isinstance(spec, Fault):
            return spec
        if not isinstance(spec, str):
            raise ConfigError(f'a fault is a Fault or a string, got {type(spec).__name__}')
        kind, _, arg = spec.strip().partition(':')
        try:
            if kind == 'delay':
                return cls('delay', seconds=float(arg or 0.1))
            if kind == 'hang':
                return cls('hang', seconds=float(arg or DEFAULT_HANG_S))
            if kind == 'truncate':
                return cls('truncate', keep=float(arg or 0.5))
        except ValueError:
            raise ConfigError(f'bad fault argument in {spec!r}') from None
        if kind == 'error':
            if arg not in ('', 'retryable', 'fatal'):
                raise ConfigError(f"fault 'error' takes 'retryable' or 'fatal', got {arg!r}")
            return cls('error', retryable=arg == 'retryable')
        if kind == 'garbage' and arg:
            return cls('garbage', text=arg)
        return cls(kind)


class FaultInjectingBackend:
    """Wrap ``inner`` (may be None if every fault produces its own outcome) with faults."""

    def __init__(self, inner: Optional[Backend] = None,
                 faults: Sequence[Union[Fault, str]] = (),
                 then: Union[Fault, str] = 'pass', name: str = 'faults') -> None:
        self.inner = inner
        self.faults: List[Fault] = [Fault.parse(f) for f in faults]
        self.then = Fault.parse(then)
        self.name = name if inner is None else f'{inner.name}+faults'
        self.calls = 0
        #: Kinds applied so far, in call order (tests assert on it).
        self.applied: List[str] = []
        #: Set while a ``hang`` or ``delay`` is waiting, so tests can cancel without sleeping.
        self.waiting = threading.Event()
        self._lock = threading.Lock()

    def generate(self, request: GenerationRequest,
                 cancel: Optional[CancelToken] = None) -> Completion:
        """Apply the next scripted fault to this call (``cancel``: the job's token)."""
        with self._lock:
            index = self.calls
            self.calls += 1
            fault = self.faults[index] if index < len(self.faults) else self.then
            self.applied.append(fault.kind)
        token = token_or_new(cancel)
        kind = fault.kind
        if kind == 'error':
            raise BackendError(fault.message or 'injected fault: backend error',
                               retryable=fault.retryable)
        if kind == 'unavailable':
            raise BackendUnavailable(fault.message or 'injected fault: backend unavailable')
        if kind == 'oom':
            raise BackendError(fault.message or 'injected fault: out of memory while '
                               'generating (CUDA out of memory)', retryable=False)
        if kind == 'garbage':
            return Completion(text=fault.text, backend=self.name, finish_reason='stop')
        if kind == 'hang':
            self._wait(fault.seconds or DEFAULT_HANG_S, token)
            raise BackendError(f'injected fault: hung for {fault.seconds or DEFAULT_HANG_S} s '
                               'and was never cancelled', retryable=False)
        if kind == 'delay':
            self._wait(fault.seconds, token)
        completion = self._inner(kind).generate(request, token)
        if kind == 'truncate':
            cut = int(len(completion.text) * fault.keep)
            completion = dataclasses.replace(
                completion, text=completion.text[:cut], finish_reason='length')
        return completion

    def _inner(self, kind: str) -> Backend:
        if self.inner is None:
            raise ConfigError(f'fault {kind!r} passes through, but no inner backend was given')
        return self.inner

    def _wait(self, seconds: float, cancel: CancelToken) -> None:
        """Wait ``seconds`` unless cancelled first (then raise GenerationCancelled)."""
        self.waiting.set()
        try:
            if cancel.wait(timeout=seconds):
                raise GenerationCancelled('injected fault: generation cancelled while waiting')
        finally:
            self.waiting.clear()

    def health(self) -> Dict[str, Any]:
        """Inner health, plus how many calls were faulted."""
        status: Dict[str, Any] = (dict(self.inner.health()) if self.inner is not None
                                  else {'ok': True, 'detail': 'fault injector'})
        status['injected'] = sum(1 for k in self.applied if k != 'pass')
        return status
