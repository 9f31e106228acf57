"""Model time of the offline replay: how long each request's generation took.

Bag time does not advance while the replay computes, so the replay decides when a result
would have been published: request time plus the generation time a backend reports (as
recorded for replayed answers, as measured by live backends), summed over retries.
"""

import time
from typing import Any, Dict, Optional

from cosmos_planner.model.cancel import CancelToken
from cosmos_planner.model.protocol import Backend, Completion, GenerationRequest


class GenerationClock:
    """Backend wrapper summing each request's generation time (as recorded or measured)."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name
        self.ms = 0.0

    def generate(self, request: GenerationRequest,
                 cancel: Optional[CancelToken] = None) -> Completion:
        tick = time.perf_counter()
        try:
            completion = self.inner.generate(request, cancel)
        except Exception:
            self.ms += (time.perf_counter() - tick) * 1e3
            raise
        recorded = (completion.meta or {}).get('recorded_generate_ms')
        if isinstance(recorded, (int, float)) and not isinstance(recorded, bool):
            self.ms += float(recorded)
        elif completion.generate_ms:
            self.ms += float(completion.generate_ms)
        else:
            self.ms += (time.perf_counter() - tick) * 1e3
        return completion

    def health(self) -> Dict[str, Any]:
        return self.inner.health()

    def close(self) -> None:
        closer = getattr(self.inner, 'close', None)
        if callable(closer):
            closer()
