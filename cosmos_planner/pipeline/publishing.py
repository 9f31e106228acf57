"""Publishing one planning outcome, the same way for the node and for the offline replay.

Only an OK outcome is published, and only if its plan is still fresh at publish time (the
last staleness check, against the ROS clock then: bag time in the replay); its messages go
out in ``PUBLISH_ORDER`` (``~/plan`` last). Every outcome, published or not, becomes one
``~/status`` event whose fields are decided here. The caller owns the transport (rclpy
publishers or the output bag) and adds its own timings.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, TYPE_CHECKING

from cosmos_planner.errors import SafetyRejection
from cosmos_planner.geometry.safety import check_staleness
from cosmos_planner.pipeline.outputs import build_output_records, Msg, ordered
from cosmos_planner.pipeline.outputs import plan_stamp_ns

if TYPE_CHECKING:
    from cosmos_planner.frames.types import Frame
    from cosmos_planner.model.plan_schema import PlanV1
    from cosmos_planner.pipeline.node_config import NodeConfig
    from cosmos_planner.pipeline.plan_pipeline import PipelineOutcome

#: Characters of the model's last raw answer echoed on a failure's ``~/status``.
RAW_ECHO_CHARS = 500
#: ``~/status`` events that report progress on a request, not its outcome: a task was taken
#: (``accepted``), the backend started on it (``generating``, once per attempt). Every other
#: event with a task id is the request's one final outcome.
PROGRESS_STATUSES = frozenset({'accepted', 'generating'})


@dataclass
class Publication:
    """What publishing an outcome means: a status event and, when OK, ordered messages."""

    status: str
    reason: str
    #: Further ``~/status`` fields (check, detail, raw answer, plan id, ...).
    fields: Dict[str, Any] = field(default_factory=dict)
    #: ``(topic suffix, record)`` in publication order; empty unless published.
    messages: List[Tuple[str, Msg]] = field(default_factory=list)
    plan: Optional['PlanV1'] = None

    @property
    def published(self) -> bool:
        """Whether the plan goes out (status ``ok``)."""
        return self.status == 'ok'


def publication(outcome: 'PipelineOutcome', now_ns: int, cfg: 'NodeConfig', *,
                debug_frame: Optional['Frame'] = None,
                transform_source: str = 'static') -> Publication:
    """Decide how ``outcome`` is published at ROS time ``now_ns``.

    ``debug_frame`` (the clip's newest frame) adds ``~/debug_image``; it is drawn only when
    the plan is published.
    """
    if not outcome.ok:
        return Publication(outcome.status.value, outcome.reason, dict(
            check=outcome.check, detail=outcome.detail, raw=raw_answer(outcome)))
    plan = outcome.plan
    if plan is None:
        raise ValueError('an OK outcome without a plan')
    try:
        check_staleness(plan_stamp_ns(plan), now_ns, cfg.pipeline.safety.max_plan_age_s)
    except SafetyRejection as exc:
        return Publication('stale', f'at publish time: {exc}', dict(
            check=exc.check, detail=exc.detail, plan_id=plan.plan_id))
    records = build_output_records(plan, outcome.trajectory, debug_frame=debug_frame,
                                   gripper=cfg.gripper, ee_joint=cfg.ee_joint)
    return Publication('ok', 'planned', dict(
        plan_id=plan.plan_id, valid_until=plan.valid_until, frame_id=plan.frame_id,
        points=len(plan.trajectory), transform=transform_source), ordered(records), plan)


def raw_answer(outcome: 'PipelineOutcome') -> Optional[str]:
    """Return the model's last raw answer (cut), so a failure's status shows what it said."""
    result = outcome.result
    if result is None or not result.raw_answers:
        return None
    return result.raw_answers[-1][:RAW_ECHO_CHARS]
