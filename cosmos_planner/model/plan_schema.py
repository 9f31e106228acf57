"""Plan v1: what the model answers and what the planner publishes, as pydantic models.

Two models on purpose. ``ModelAnswer`` is what Cosmos Reason 2 is asked to produce (its own
trained ``point_2d`` format, 0-1000 coordinates); its JSON Schema constrains decoding, so the
coordinate range and string bounds are part of the schema (an untrained model cannot emit a
coordinate of 123456 under constrained decoding). ``PlanV1`` is what leaves the planner on
``~/plan``: the answer plus ids, stamps, pixels, 3D points and timings. Both are exported as
JSON Schema files in ``config/`` (``cosmos-planner export-schemas``; a test fails when the
committed files are out of date).

Coordinates are strict numbers: the strings ``"12"`` and booleans are refused rather than
coerced, because a model that answers with them is not following the format and its numbers
should not be trusted.
"""

from typing import Annotated, cast, Dict, Final, List, Literal, Optional, Sequence, Tuple

from pydantic import BaseModel, ConfigDict, Field, Strict

from cosmos_planner.errors import ConfigError
from cosmos_planner.model.results import ParsedAnswer

PLAN_SCHEMA_ID: Final = 'cosmos_planner/plan/v1'
COORD_MAX = 1000.0
#: Bounds chosen so untrained models cannot run away inside constrained decoding.
MAX_POINTS = 64
MAX_STEPS = 16
MAX_TEXT = 200

#: One normalised image coordinate: a finite number in 0-1000 (ints accepted, not strings).
Coord = Annotated[float, Strict(), Field(ge=0.0, le=COORD_MAX, allow_inf_nan=False)]
ShortText = Annotated[str, Strict(), Field(max_length=MAX_TEXT)]
GripperCommand = Literal['open', 'close']


class TrajectoryPoint(BaseModel):
    """One gripper waypoint in the model's 0-1000 normalised image coordinates."""

    model_config = ConfigDict(extra='ignore')

    point_2d: Tuple[Coord, Coord] = Field(
        description='[x, y], each 0-1000, origin top-left, x right, y down')
    label: ShortText = Field(default='gripper trajectory')
    gripper: Optional[GripperCommand] = Field(
        default=None, description='gripper command on reaching this point')


class ModelAnswer(BaseModel):
    """The answer the model is asked for; a bare point list parses to this with no action."""

    model_config = ConfigDict(extra='ignore')

    next_action: Optional[ShortText] = None
    steps: List[ShortText] = Field(default_factory=list, max_length=MAX_STEPS)
    trajectory: List[TrajectoryPoint] = Field(min_length=1, max_length=MAX_POINTS)


class PlannedPoint(BaseModel):
    """A waypoint of a published plan: model coordinates, native pixels and 3D."""

    model_config = ConfigDict(extra='forbid')

    point_2d: Tuple[float, float] = Field(description='model coordinates, 0-1000 per axis')
    pixel: Tuple[float, float] = Field(
        description='(u, v) in pixels of the native image; continuous, 0 at the left/top edge')
    position: Optional[Tuple[float, float, float]] = Field(
        default=None, description='metres in frame_id; None when not grounded')
    gripper: Optional[GripperCommand] = None
    label: str = 'gripper trajectory'


class PlanV1(BaseModel):
    """A validated plan as published on ``~/plan`` (std_msgs/String has no header)."""

    model_config = ConfigDict(extra='forbid', populate_by_name=True)

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

    def to_json(self, indent: Optional[int] = None) -> str:
        """Serialise with the ``schema`` key, as published (the alias is the wire name)."""
        return self.model_dump_json(by_alias=True, indent=indent)


def plan_from_answer(
        answer: ParsedAnswer, *, task: str, task_id: str, plan_id: str, stamp: float,
        frame_id: str, image_size: Tuple[int, int], valid_until: float,
        image_frame_id: str = '',
        positions: Optional[Sequence[Optional[Tuple[float, float, float]]]] = None,
        model: str = '', preset: str = '',
        timings_ms: Optional[Dict[str, float]] = None) -> PlanV1:
    """Build the published plan from a parsed answer (and 3D points once grounded).

    One place that zips model points, pixels, gripper commands and labels, so the CLI, the
    node and the bag replay publish the same shape. ``positions`` is one entry per point.
    """
    n = len(answer.points_model)
    if positions is not None and len(positions) != n:
        raise ConfigError(f'{len(positions)} positions for {n} trajectory points')
    points = [
        PlannedPoint(
            point_2d=answer.points_model[i], pixel=answer.points_px[i],
            position=None if positions is None else positions[i],
            # the parser admits only GRIPPER_COMMANDS
            gripper=cast(Optional[GripperCommand], answer.gripper[i]), label=answer.labels[i])
        for i in range(n)]
    return PlanV1(
        task_id=task_id, plan_id=plan_id, task=task, stamp=stamp, frame_id=frame_id,
        image_frame_id=image_frame_id, image_size=image_size, valid_until=valid_until,
        next_action=answer.next_action, steps=list(answer.steps), trajectory=points,
        reasoning=answer.reasoning, model=model, preset=preset,
        timings_ms=dict(timings_ms or {}))


def answer_json_schema() -> dict:
    """JSON Schema of ``ModelAnswer`` used for constrained decoding and servers."""
    return ModelAnswer.model_json_schema()


def plan_json_schema() -> dict:
    """JSON Schema of ``PlanV1`` (the published message), with its id."""
    schema = PlanV1.model_json_schema(by_alias=True)
    schema['$id'] = PLAN_SCHEMA_ID
    return schema
