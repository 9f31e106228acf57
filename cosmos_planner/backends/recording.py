"""Record raw model answers as JSONL and replay them deterministically.

Wrappers around the one-method backend interface rather than flags inside each backend, so
any backend (local, server, expert) can be recorded, and a replay runs the same parse path
as a live run. One JSON object per line, keyed by ``GenerationRequest.fingerprint()``:

``{"v": 1, "fingerprint": ..., "preset": ..., "task": ..., "text": ..., "reasoning": ...,
"finish_reason": ..., "model": ..., "backend": ..., "prompt_tokens": ...,
"completion_tokens": ..., "generate_ms": ..., "meta": {...}}`` (``meta`` is the backend's
own detail, e.g. ``tiny_random``; a replayed Completion carries it plus ``replayed: true``)

Crash safety: lines are appended and flushed one at a time (optionally fsynced), so a crash
loses at most the line being written; a torn last line is ignored on read, and a recorder
reopening such a file starts on a fresh line so the torn fragment never merges with the next
answer. A recording that cannot be written (disk full) fails the generation with a
BackendError rather than silently losing answers the user asked to keep. Identical requests
(a retry, the same frame planned twice) are replayed in recorded order.
"""

import collections
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, Deque, Dict, List, Optional, Tuple, Union

from cosmos_planner.model.cancel import CancelToken
from cosmos_planner.model.protocol import Backend, Completion, GenerationRequest
from cosmos_planner.errors import BackendError, ConfigError, ReplayMissError

LOG = logging.getLogger(__name__)
FORMAT_VERSION = 1
_REQUIRED = ('fingerprint', 'text')
PathLike = Union[str, 'os.PathLike[str]']


def read_recordings(path: PathLike) -> Tuple[List[Dict[str, Any]], int]:
    """Read a recording: (entries in file order, number of unreadable lines skipped).

    A line that is not a JSON object with ``fingerprint`` and ``text`` (a torn last line
    after a crash, a hand edit) is skipped, not fatal: the rest of the record is still good.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f'recording {path} does not exist') from None
    except OSError as exc:
        raise ConfigError(f'cannot read recording {path}: {exc}') from None
    entries: List[Dict[str, Any]] = []
    skipped = 0
    lines = data.split(b'\n')
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line.decode('utf-8'))
        except (UnicodeDecodeError, ValueError):
            entry = None
        if (not isinstance(entry, dict) or not all(k in entry for k in _REQUIRED)
                or not isinstance(entry['text'], str)
                or not isinstance(entry['fingerprint'], str)):
            skipped += 1
            if number != len(lines):  # the last line is the expected torn one
                LOG.warning('%s:%d is not a recorded answer; skipped', path, number)
            continue
        entries.append(entry)
    return entries, skipped


class RecordingBackend:
    """Pass requests to ``inner`` and append every answer to a JSONL file."""

    def __init__(self, inner: Backend, path: PathLike, fsync: bool = False) -> None:
        self.inner = inner
        self.name = inner.name
        self.path = Path(path)
        self.fsync = fsync
        self.recorded = 0
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, 'ab')
            if self._file.tell() > 0 and not self._ends_with_newline():
                self._file.write(b'\n')  # seal a torn line left by a crash
                self._file.flush()
        except (OSError, ValueError) as exc:
            raise ConfigError(f'cannot open recording {self.path} for writing: {exc}') from None

    def _ends_with_newline(self) -> bool:
        with open(self.path, 'rb') as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b'\n'

    def generate(self, request: GenerationRequest,
                 cancel: Optional[CancelToken] = None) -> Completion:
        """Generate with ``inner`` (same cancel token) and record the answer.

        Failures, cancelled generations included, are not recorded.
        """
        completion = self.inner.generate(request, cancel)
        entry = {
            'v': FORMAT_VERSION, 'fingerprint': request.fingerprint(),
            'preset': request.preset, 'task': request.task,
            'text': completion.text, 'reasoning': completion.reasoning,
            'finish_reason': completion.finish_reason, 'model': completion.model,
            'backend': completion.backend or self.inner.name,
            'prompt_tokens': completion.prompt_tokens,
            'completion_tokens': completion.completion_tokens,
            'generate_ms': completion.generate_ms,
            'meta': completion.meta,
        }
        line = json.dumps(entry, ensure_ascii=True, default=str).encode('ascii') + b'\n'
        with self._lock:
            if self._file.closed:
                raise ConfigError(f'recording {self.path} is closed')
            try:
                self._file.write(line)
                self._file.flush()
                if self.fsync:
                    os.fsync(self._file.fileno())
            except OSError as exc:  # disk full, file system gone: the record is incomplete
                raise BackendError(f'cannot record the answer to {self.path}: {exc}',
                                   retryable=False) from exc
            self.recorded += 1
        return completion

    def health(self) -> Dict[str, Any]:
        """Report the wrapped backend's health plus where answers are recorded."""
        status = dict(self.inner.health())
        status['recording'] = str(self.path)
        status['recorded'] = self.recorded
        return status

    def close(self) -> None:
        """Close the file (and the wrapped backend if it can be closed)."""
        with self._lock:
            self._file.close()
        closer = getattr(self.inner, 'close', None)
        if callable(closer):
            closer()

    def __enter__(self) -> 'RecordingBackend':
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ReplayBackend:
    """Answer requests from a recording, keyed by request fingerprint.

    ``when_exhausted`` says what happens when a fingerprint is asked for more often than it
    was recorded: ``'miss'`` (default, strict: ReplayMissError) or ``'repeat_last'``.
    """

    name = 'replay'

    def __init__(self, path: PathLike, when_exhausted: str = 'miss') -> None:
        if when_exhausted not in ('miss', 'repeat_last'):
            raise ConfigError(f"when_exhausted must be 'miss' or 'repeat_last', "
                              f'got {when_exhausted!r}')
        self.path = Path(path)
        self.when_exhausted = when_exhausted
        entries, self.skipped_lines = read_recordings(self.path)
        self._answers: Dict[str, Deque[Dict[str, Any]]] = collections.defaultdict(
            collections.deque)
        for entry in entries:
            self._answers[entry['fingerprint']].append(entry)
        self._counts = collections.Counter(e['fingerprint'] for e in entries)
        self._last: Dict[str, Dict[str, Any]] = {}
        self.total = len(entries)
        self.replayed = 0
        self._lock = threading.Lock()

    def generate(self, request: GenerationRequest,
                 cancel: Optional[CancelToken] = None) -> Completion:
        """Return the next recorded answer for this request's fingerprint.

        An answer is returned at once, so ``cancel`` is only checked first: a cancelled job
        does not use up a recorded answer.
        """
        if cancel is not None:
            cancel.raise_if_cancelled()
        fingerprint = request.fingerprint()
        with self._lock:
            queue = self._answers.get(fingerprint)
            if queue:
                entry = queue.popleft()
                self._last[fingerprint] = entry
            elif fingerprint in self._last and self.when_exhausted == 'repeat_last':
                entry = self._last[fingerprint]
            else:
                raise ReplayMissError(self._miss_message(fingerprint, request))
            self.replayed += 1
        return Completion(
            text=entry['text'], reasoning=_opt_str(entry.get('reasoning')),
            finish_reason=str(entry.get('finish_reason') or 'stop'),
            prompt_tokens=_int(entry.get('prompt_tokens')),
            completion_tokens=_int(entry.get('completion_tokens')),
            model=str(entry.get('model') or ''), backend=self.name,
            meta={**(entry['meta'] if isinstance(entry.get('meta'), dict) else {}),
                  'fingerprint': fingerprint, 'replayed': True,
                  'recorded_backend': entry.get('backend'),
                  'recorded_generate_ms': entry.get('generate_ms')})

    def _miss_message(self, fingerprint: str, request: GenerationRequest) -> str:
        if fingerprint in self._last:
            return (f'request {fingerprint} was recorded {self._counts[fingerprint]} time(s) '
                    f'and all were already replayed (recording {self.path})')
        return (f'no recorded answer for request {fingerprint} (preset {request.preset!r}, '
                f'task {request.task!r}) in {self.path}, which holds {self.total} answers '
                f'for {len(self._answers)} requests; the frames, prompt or sampling differ '
                f'from the recorded run')

    def health(self) -> Dict[str, Any]:
        """Report healthy once loaded, and how much of the recording was used."""
        return {'ok': True, 'detail': f'{self.replayed}/{self.total} answers replayed '
                                      f'from {self.path}',
                'skipped_lines': self.skipped_lines}


def _opt_str(value: Any) -> Optional[str]:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
