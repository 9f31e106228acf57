"""Typed errors of the planner core.

Every failure a user can cause (bad images, bad model output, missing weights, a dead
server) raises one of these, so callers catch in exactly one place and report a reason.
"""

from typing import Optional


class PlannerError(Exception):
    """Base of every error the planner raises on purpose."""

    #: Short machine-readable reason, used as a diagnostics key and in ``~/status``.
    reason = 'error'


class ConfigError(PlannerError, ValueError):
    """A configuration value or parameter is invalid; the message names it."""

    reason = 'bad_config'


class ImageDecodeError(PlannerError, ValueError):
    """An image message could not be turned into pixels (size, step, encoding, corrupt data)."""

    reason = 'bad_image'

    def __init__(self, message: str, kind: str = 'bad_image') -> None:
        super().__init__(message)
        #: Finer reason used for per-cause counters, e.g. ``unknown_encoding``.
        self.kind = kind


class ParseError(PlannerError, ValueError):
    """The model's answer is not a valid plan; carries the raw text for the record."""

    reason = 'parse_failed'

    def __init__(self, message: str, raw: str) -> None:
        super().__init__(message)
        self.raw = raw


class BackendError(PlannerError, RuntimeError):
    """The backend failed to produce an answer (server error, timeout, OOM, ...)."""

    reason = 'backend_failed'
    #: HTTP status and Retry-After (seconds) of a server's error answer, when there was one.
    status_code: Optional[int] = None
    retry_after: Optional[float] = None

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class BackendUnavailable(BackendError):
    """The backend cannot be reached at all (connection refused, server down)."""

    reason = 'backend_unavailable'

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class GenerationCancelled(PlannerError):
    """A generation was cancelled on request (new task, ``~/cancel``, shutdown)."""

    reason = 'cancelled'


class ModelNotFoundError(PlannerError, FileNotFoundError):
    """The named weights are not present; the message says how to provide them."""

    reason = 'model_not_found'


class ModelTooLargeError(PlannerError, MemoryError):
    """The model cannot fit in the available memory with any supported dtype."""

    reason = 'model_too_large'


class ReplayMissError(BackendError):
    """A replayed request has no recorded answer (fingerprint not found)."""

    reason = 'replay_miss'


class GroundingError(PlannerError):
    """A plan's pixel points could not be turned into 3D points."""

    reason = 'grounding_failed'


class SafetyRejection(PlannerError):
    """The safety gate refused a plan; ``check`` names the failed check."""

    reason = 'rejected'

    def __init__(self, message: str, check: str, detail: Optional[dict] = None) -> None:
        super().__init__(message)
        self.check = check
        self.detail = detail or {}
