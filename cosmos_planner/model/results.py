"""Planner results: a status enum plus context, never a bare None."""

import enum
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from cosmos_planner.model.protocol import Completion


class PlanStatus(str, enum.Enum):
    """What happened to one planning request; published on ``~/status``."""

    OK = 'ok'
    NO_FRAMES = 'no_frames'
    BACKEND_FAILED = 'backend_failed'
    PARSE_FAILED = 'parse_failed'
    CANCELLED = 'cancelled'
    GROUNDING_FAILED = 'grounding_failed'
    REJECTED = 'rejected'
    STALE = 'stale'


@dataclass(frozen=True)
class ParsedAnswer:
    """A validated model answer with its points in native image pixels."""

    next_action: Optional[str]
    steps: Tuple[str, ...]
    points_model: Tuple[Tuple[float, float], ...]
    points_px: Tuple[Tuple[float, float], ...]
    gripper: Tuple[Optional[str], ...]
    labels: Tuple[str, ...]
    reasoning: Optional[str]
    raw: str


@dataclass
class PlanResult:
    """Outcome of ``Planner.plan``: status, the parsed answer when OK, timings per stage."""

    status: PlanStatus
    answer: Optional[ParsedAnswer] = None
    completion: Optional[Completion] = None
    error: str = ''
    attempts: int = 0
    timings_ms: Dict[str, float] = field(default_factory=dict)
    raw_answers: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status is PlanStatus.OK
