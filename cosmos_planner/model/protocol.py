"""The backend interface every model server, wrapper and test oracle implements.

Two policies every backend follows, so that no layer above repeats them:

- Cancellation: ``generate`` takes the job's ``CancelToken`` (``cosmos_planner.model.cancel``)
  and stops at its next check once the token is cancelled, raising ``GenerationCancelled``;
  wrappers pass the same token to the backend they wrap. There is no ``cancel()`` method: a
  backend cancels a job's generation, never "whatever is in flight".
- Retries: transport failures (a server answering 5xx, a timeout, a dropped connection) are
  retried inside ``generate`` and only there, bounded by the backend's own retry count and
  request deadline; the error that escapes is final. The planner retries only answers that
  do not parse.
"""

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Optional, Protocol, runtime_checkable

from cosmos_planner.frames.types import Clip
from cosmos_planner.model.cancel import CancelToken


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters; presets carry NVIDIA's recommended values."""

    temperature: float = 0.7
    top_p: float = 0.8
    top_k: int = 20
    presence_penalty: float = 0.0
    repetition_penalty: float = 1.0
    max_tokens: int = 1024
    seed: Optional[int] = None


@dataclass(frozen=True)
class GenerationRequest:
    """Everything a backend needs for one answer.

    ``messages`` is the chat in transformers/OpenAI content-list form, media first; media
    items reference the clip (``{'type': 'video'}`` / ``{'type': 'image'}``) and each backend
    encodes the clip's pixels its own way. ``response_schema`` is the JSON Schema that
    decoding is constrained to (None: unconstrained); ``reasoning`` says whether a
    ``<think>`` block may precede the JSON.
    """

    clip: Clip
    messages: tuple
    sampling: Sampling = field(default_factory=Sampling)
    response_schema: Optional[Dict[str, Any]] = None
    reasoning: bool = False
    preset: str = ''
    task: str = ''

    def fingerprint(self) -> str:
        """Stable hash of what determines the answer: prompt, pixels, stamps, sampling.

        Used to record and replay answers; equal requests get equal fingerprints across
        processes and machines (no object ids, no wall-clock time).
        """
        h = hashlib.sha256()
        h.update(json.dumps(
            {'messages': self.messages, 'sampling': asdict(self.sampling),
             'schema': self.response_schema, 'reasoning': self.reasoning,
             'preset': self.preset, 'task': self.task},
            sort_keys=True, default=str).encode())
        for clip in (self.clip, *self.clip.context):
            h.update(clip.camera.encode())
            for frame in clip.frames:
                h.update(frame.stamp_ns.to_bytes(8, 'little', signed=True))
                h.update(str(frame.image.shape).encode())
                h.update(hashlib.blake2b(frame.image.tobytes(), digest_size=16).digest())
        return h.hexdigest()[:32]


@dataclass(frozen=True)
class Completion:
    """A backend's raw answer. ``text`` is what the parser sees (reasoning may be inline)."""

    text: str
    reasoning: Optional[str] = None
    finish_reason: str = 'stop'
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ''
    backend: str = ''
    generate_ms: float = 0.0
    meta: Dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """One-method interface; wrappers (recording, replay, faults) compose around it."""

    name: str

    def generate(self, request: GenerationRequest,
                 cancel: Optional[CancelToken] = None) -> Completion:
        """Return one answer, or raise BackendError / GenerationCancelled.

        ``cancel`` is the job's token (None: nobody cancels this call); once it is cancelled,
        from any thread, ``generate`` raises GenerationCancelled, also when that happened
        before it started. A BackendError that escapes was already retried as far as the
        backend's retry policy allows.
        """
        ...

    def health(self) -> Dict[str, Any]:
        """Cheap status for diagnostics: at least ``{'ok': bool, 'detail': str}``."""
        ...
