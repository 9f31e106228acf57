"""Plan v1: what the model answers and what the planner publishes, as pydantic models.

Two models on purpose. ``ModelAnswer`` is what Cosmos Reason 2 is asked to produce (its own
trained ``point_2d`` format, 0-1000 coordinates); its JSON Schema constrains decoding.
``PlanV1`` is what leaves the planner on ``~/plan``: the answer plus ids, stamps, pixels,
3D points and timings. Both are exported as JSON Schema files in ``config/``.
"""

from typing import Dict, List, Literal, Optional, Tuple

from pydantic import BaseModel, ConfigDict, Field, field_validator

PLAN_SCHEMA_ID = 'cosmos_planner/plan/v1'
COORD_MAX = 1000.0
#: Bounds chosen so untrained models cannot run away inside constrained decoding.
MAX_POINTS = 64
MAX_STEPS = 16
MAX_TEXT = 200


class TrajectoryPoint(BaseModel):
    """One gripper waypoint in the model's 0-1000 normalised image coordinates."""

    model_config = ConfigDict(extra='ignore')

    point_2d: Tuple[float, float] = Field(
        description='[x, y], each 0-1000, origin top-left, x right, y down')
    label: str = Field(default='gripper trajectory', max_length=MAX_TEXT)
    gripper: Optional[Literal['open', 'close']] = Field(
        default=None, description='gripper command on reaching this point')

    @field_validator('point_2d')
    @classmethod
    def _in_range(cls, v: Tuple[float, float]) -> Tuple[float, float]:
        for c in v:
            if c != c or c in (float('inf'), float('-inf')):
                raise ValueError('coordinate is not finite')
            if not 0.0 <= c <= COORD_MAX:
                raise ValueError(f'coordinate {c} outside 0-{COORD_MAX:g}')
        return v


class ModelAnswer(BaseModel):
    """The answer the model is asked for; a bare point list parses to this with no action."""

    model_config = ConfigDict(extra='ignore')

    next_action: Optional[str] = Field(default=None, max_length=MAX_TEXT)
    steps: List[str] = Field(default_factory=list, max_length=MAX_STEPS)
    trajectory: List[TrajectoryPoint] = Field(min_length=1, max_length=MAX_POINTS)


class PlannedPoint(BaseModel):
    """A waypoint of a published plan: model coordinates, native pixels and 3D."""

    point_2d: Tuple[float, float]
    pixel: Tuple[float, float]
    position: Optional[Tuple[float, float, float]] = Field(
        default=None, description='metres in frame_id; None when not grounded')
    gripper: Optional[Literal['open', 'close']] = None
    label: str = 'gripper trajectory'


class PlanV1(BaseModel):
    """A validated plan as published on ``~/plan`` (std_msgs/String has no header)."""

    model_config = ConfigDict(extra='forbid')

    schema_id: Literal['cosmos_planner/plan/v1'] = Field(default=PLAN_SCHEMA_ID, alias='schema')
    task_id: str
    plan_id: str
    task: str
    stamp: float = Field(description='seconds, ROS time of the newest primary frame used')
    frame_id: str = Field(description='frame of `position`s (target or camera optical)')
    image_frame_id: str = ''
    image_size: Tuple[int, int] = Field(description='native (width, height) of the pixels')
    valid_until: float = Field(description='seconds, ROS time after which it must not run')
    next_action: Optional[str] = None
    steps: List[str] = Field(default_factory=list)
    trajectory: List[PlannedPoint]
    reasoning: Optional[str] = None
    model: str = ''
    preset: str = ''
    timings_ms: Dict[str, float] = Field(default_factory=dict)

    model_config = ConfigDict(extra='forbid', populate_by_name=True)


def answer_json_schema() -> dict:
    """JSON Schema of ``ModelAnswer`` used for constrained decoding and servers."""
    return ModelAnswer.model_json_schema()


def plan_json_schema() -> dict:
    """JSON Schema of ``PlanV1`` (the published message), with its id."""
    schema = PlanV1.model_json_schema(by_alias=True)
    schema['$id'] = PLAN_SCHEMA_ID
    return schema
