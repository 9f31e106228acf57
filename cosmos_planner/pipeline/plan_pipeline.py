"""PlanPipeline: planner -> ground -> time -> gate -> PlanV1, one outcome per request.

What the ROS node, the offline bag replay and the simulator harness all run, so they publish
from the same ``PipelineOutcome``. Stages and their timings (ms, in ``timings_ms`` and in
the published plan): the planner's ``prepare``, ``generate``, ``parse`` (and its total as
``plan``), then ``ground``, ``timing``, ``gate`` and the pipeline's ``total``.

Order of checks, cheapest first, so no generation is spent on a request that cannot succeed:
no frames -> NO_FRAMES; no camera model, or depth mode without a depth image ->
GROUNDING_FAILED; the clip already stale at ``inputs.now_ns`` -> STALE; then the planner
(its non-OK statuses pass through), grounding (GROUNDING_FAILED), the gate (REJECTED, with
the failed check), and last, right before returning, staleness again with ``now_fn()``
(the ROS clock after generation; STALE). Only OK outcomes carry ``plan`` and
``trajectory``; every outcome carries the planner's ``result`` when there was one.

Cancelling: ``run`` takes the job's ``CancelToken`` (``cosmos_planner.model.cancel``) and
passes it to the planner, which passes it to the backend. The pipeline checks it before it
starts, after the planner and before the plan is built, and keeps no cancel state between
runs: a token cancelled before ``run`` starts cancels that run, and only that run.

Ids and stamps: ``plan_id`` comes from ``id_fn`` (uuid4 hex by default; inject a counter for
reproducible replays); ``stamp`` is the newest clip frame's stamp in seconds (ROS time),
``valid_until`` is ``stamp + safety.max_plan_age_s``, ``frame_id`` is the output frame
(``target.frame``, or the camera optical frame when that is empty), ``image_frame_id`` the
camera frame. The plan lists one point per model point (1:1 with the answer) with the gripper
command the lift rule assigned and its lifted position (in bare lists, the first point is the
end-effector position when known); inserted approach waypoints and dwell points appear only in
the ``trajectory`` (and so in ``~/path`` and ``~/trajectory``).
"""

from dataclasses import dataclass, field, replace
import time
from typing import Any, Callable, Dict, Optional, Protocol, Tuple
import uuid

from cosmos_planner.geometry.camera_model import CameraModel
from cosmos_planner.errors import GroundingError, SafetyRejection
from cosmos_planner.frames.types import Clip, DepthFrame
from cosmos_planner.geometry.grounding import GroundedPlan, Grounder
from cosmos_planner.model.cancel import CancelToken, token_or_new
from cosmos_planner.pipeline.config import ParamSpec, PipelineConfig
from cosmos_planner.model.plan_schema import plan_from_answer, PlanV1
from cosmos_planner.model.results import ParsedAnswer, PlanResult, PlanStatus
from cosmos_planner.geometry.safety import SafetyGate
from cosmos_planner.geometry.timing import time_waypoints, TimedTrajectory

__all__ = ['ParamSpec', 'PipelineConfig', 'PipelineInputs', 'PipelineOutcome', 'PlanPipeline']


class PlannerLike(Protocol):
    """What the pipeline needs of ``planner.Planner`` (kept structural: no import cycle)."""

    def plan(self, clip: Optional[Clip], task: str,
             cancel: Optional[CancelToken] = None) -> PlanResult:
        ...


@dataclass(frozen=True)
class PipelineInputs:
    """One planning request.

    ``camera`` is the primary camera's model (from its CameraInfo); ``depth`` the registered
    depth image nearest to the newest frame (or None); ``now_ns`` the ROS time when the
    request was made; ``ee_position`` the current end-effector position in the output frame.
    """

    clip: Optional[Clip]
    task: str
    task_id: str
    camera: Optional[CameraModel]
    depth: Optional[DepthFrame] = None
    now_ns: int = 0
    ee_position: Optional[Tuple[float, float, float]] = None


@dataclass
class PipelineOutcome:
    """What happened to one request; the node and the bag replay publish from this.

    ``check`` names what failed: the safety check (``workspace``, ``stale``, ...) or the
    grounding cause (``no_depth``, ...); ``detail`` is JSON-friendly context.
    """

    status: PlanStatus
    reason: str = ''
    result: Optional[PlanResult] = None
    plan: Optional[PlanV1] = None
    trajectory: Optional[TimedTrajectory] = None
    grounded: Optional[GroundedPlan] = None
    timings_ms: Dict[str, float] = field(default_factory=dict)
    task_id: str = ''
    stamp_ns: int = 0
    check: str = ''
    detail: Dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status is PlanStatus.OK


class PlanPipeline:
    """Run requests through planner, grounding, timing and the safety gate."""

    def __init__(self, planner: PlannerLike, config: Optional[PipelineConfig] = None,
                 id_fn: Optional[Callable[[], str]] = None) -> None:
        self.planner = planner
        self.config = config or PipelineConfig()
        self._id_fn = id_fn or (lambda: uuid.uuid4().hex)
        self._grounder = Grounder(self.config.grounding)
        self._gate = SafetyGate(self.config.safety)

    def run(self, inputs: PipelineInputs, now_fn: Optional[Callable[[], int]] = None,
            cancel: Optional[CancelToken] = None) -> PipelineOutcome:
        """Plan one request; ``now_fn`` returns ROS time in ns (default: ``inputs.now_ns``).

        ``cancel`` is the job's token (None: nobody cancels this run); once it is
        cancelled, from any thread, the run ends CANCELLED and publishes nothing.
        """
        start = time.perf_counter()
        timings: Dict[str, float] = {}
        out = PipelineOutcome(PlanStatus.NO_FRAMES, task_id=inputs.task_id,
                              timings_ms=timings)
        token = token_or_new(cancel)
        try:
            if token.cancelled:
                return _fail(out, PlanStatus.CANCELLED, 'cancelled before it started')
            return self._run(inputs, now_fn, out, timings, start, token)
        finally:
            timings['total'] = (time.perf_counter() - start) * 1000.0

    def _run(self, inputs: PipelineInputs, now_fn: Optional[Callable[[], int]],
             out: PipelineOutcome, timings: Dict[str, float], start: float,
             cancel: CancelToken) -> PipelineOutcome:
        cfg = self.config
        clip = inputs.clip
        if clip is None:
            return _fail(out, PlanStatus.NO_FRAMES, 'no frames to plan from')
        stamp_ns = clip.newest.stamp_ns
        out.stamp_ns = stamp_ns
        if inputs.camera is None:
            return _fail(out, PlanStatus.GROUNDING_FAILED,
                         'no camera model (camera_info) for the primary camera', 'no_camera')
        if cfg.grounding.mode == 'depth' and inputs.depth is None:
            return _fail(out, PlanStatus.GROUNDING_FAILED,
                         'ground.mode is depth but no depth image is available', 'no_depth')
        try:
            self._gate.check_staleness(stamp_ns, inputs.now_ns)
        except SafetyRejection as exc:
            return _fail(out, PlanStatus.STALE, f'before generation: {exc}', exc.check,
                         exc.detail)

        result = self.planner.plan(clip, inputs.task, cancel)
        out.result = result
        for key, value in result.timings_ms.items():
            timings['plan' if key == 'total' else key] = value
        if cancel.cancelled and result.status is not PlanStatus.CANCELLED:
            return _fail(out, PlanStatus.CANCELLED, 'cancelled')
        if not result.ok or result.answer is None:
            return _fail(out, result.status, result.error or result.status.value)
        answer = result.answer

        tick = time.perf_counter()
        try:
            camera = inputs.camera.scaled(*clip.newest.native_size)
            grounded = self._grounder.ground(
                answer.points_px, answer.points_model, answer.gripper, answer.labels, camera,
                inputs.depth, stamp_ns, inputs.ee_position)
        except GroundingError as exc:
            timings['ground'] = _ms(tick)
            return _fail(out, PlanStatus.GROUNDING_FAILED, str(exc), getattr(exc, 'cause', ''),
                         {'index': getattr(exc, 'index', None)})
        timings['ground'] = _ms(tick)
        out.grounded = grounded

        tick = time.perf_counter()
        wps = grounded.waypoints
        try:
            traj = time_waypoints(
                grounded.frame_id, stamp_ns, grounded.positions, grounded.gripper,
                grounded.orientation_xyzw, cfg.timing, cfg.safety.max_velocity_mps,
                roles=[w.role for w in wps], start_position=inputs.ee_position)
        except ValueError as exc:  # e.g. an end effector 1e15 m away: times stop increasing
            return _fail(out, PlanStatus.REJECTED, f'cannot time the waypoints: {exc}', 'timing')
        timings['timing'] = _ms(tick)

        tick = time.perf_counter()
        try:
            self._gate.check(traj)
        except SafetyRejection as exc:
            timings['gate'] = _ms(tick)
            return _fail(out, PlanStatus.REJECTED, str(exc), exc.check, exc.detail)
        timings['gate'] = _ms(tick)

        if cancel.cancelled:
            return _fail(out, PlanStatus.CANCELLED, 'cancelled')
        timings['total'] = _ms(start)  # the published plan's copy; the outcome's is final
        plan = self._build_plan(inputs, answer, result, grounded, camera, stamp_ns, timings)
        now_ns = now_fn() if now_fn is not None else inputs.now_ns
        try:
            self._gate.check_staleness(stamp_ns, now_ns)
        except SafetyRejection as exc:
            return _fail(out, PlanStatus.STALE, str(exc), exc.check, exc.detail)
        out.status, out.reason = PlanStatus.OK, 'planned'
        out.plan, out.trajectory = plan, traj
        return out

    def _build_plan(self, inputs: PipelineInputs, answer: ParsedAnswer, result: PlanResult,
                    grounded: GroundedPlan, camera: CameraModel, stamp_ns: int,
                    timings: Dict[str, float]) -> PlanV1:
        positions: list = [None] * len(answer.points_px)
        gripper: list = list(answer.gripper)
        for w in grounded.waypoints:
            if not w.inserted:
                positions[w.source_index] = w.position
                gripper[w.source_index] = w.gripper
        preset = getattr(getattr(self.planner, 'preset', None), 'name', '')
        completion = result.completion
        return plan_from_answer(
            replace(answer, gripper=tuple(gripper)), task=inputs.task, task_id=inputs.task_id,
            plan_id=self._id_fn(), stamp=stamp_ns * 1e-9, frame_id=grounded.frame_id,
            image_size=camera.size, image_frame_id=camera.frame_id or
            (inputs.clip.newest.frame_id if inputs.clip else ''),
            valid_until=self._gate.valid_until_ns(stamp_ns) * 1e-9, positions=positions,
            model=completion.model if completion else '', preset=str(preset or ''),
            timings_ms=dict(timings))


def _fail(out: PipelineOutcome, status: PlanStatus, reason: str, check: str = '',
          detail: Optional[Dict[str, Any]] = None) -> PipelineOutcome:
    out.status, out.reason, out.check = status, reason, check
    out.detail = dict(detail or {})
    return out


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0
