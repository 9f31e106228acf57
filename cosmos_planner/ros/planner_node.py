"""The planner node: cameras and a task in, validated plans and timed trajectories out.

Run it as ``ros2 run cosmos_planner planner_node`` (ROS machine) or as the console script
``planner_node --ros-args --params-file config/planner.yaml`` (pip-only machine). It is a
lifecycle node: *configure* builds the backend (loads the model), the planner and the
publishers; *activate* subscribes to the cameras and the task. With ``autostart`` (default)
it does both at start, because pip-only machines have no ``ros2 lifecycle`` to do it.

Threads: subscription callbacks (one executor thread) only decode and buffer
(``SensorInputs``); one ``PlanningWorker`` thread owns the backend and runs the
``PlanPipeline``; at most one request is in flight and a newer one supersedes it (the
running generation is cancelled). ``~/cancel`` cancels and publishes a hold. Timers that
pace the robot (periodic replanning, the camera watchdog) run on the ROS clock, so sim and
bag time work; ``/diagnostics`` is paced by the steady clock so it keeps flowing when a
simulation pauses. A ROS time jump backwards (sim reset, bag loop) clears the buffers and
cancels the plan in flight.

Only OK outcomes reach ``~/plan`` and the trajectory topics, after a last staleness check
against the ROS clock at publish time; everything else goes to ``~/status`` (JSON, one object
per event) and ``/diagnostics`` with its reason.
"""

import itertools
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, TYPE_CHECKING
import uuid

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
import rclpy
from rclpy.clock import Clock, ClockType, JumpThreshold, TimeJump
from rclpy.duration import Duration
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from rcl_interfaces.msg import SetParametersResult
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import String
from std_srvs.srv import Trigger

from cosmos_planner.errors import ConfigError, PlannerError
from cosmos_planner.geometry.transforms import Vector
from cosmos_planner.ros import messages as m
from cosmos_planner.ros.diagnostics import NodeStats
from cosmos_planner.backends.configured import make_configured_backend
from cosmos_planner.pipeline.inputs import SensorInputs
from cosmos_planner.pipeline.outputs import build_hold_records, OUTPUT_TYPES as RECORD_TYPES
from cosmos_planner.pipeline.outputs import status_fields, status_record
from cosmos_planner.pipeline.publishing import publication
from cosmos_planner.pipeline.request import build_request, intake_task, make_buffers
from cosmos_planner.pipeline.node_config import check_paths, node_config_from_values
from cosmos_planner.pipeline.node_config import NodeConfig, plain, validate_changes
from cosmos_planner.ros.params import current_values, declare_node_parameters
from cosmos_planner.ros.tf_source import TransformSource
from cosmos_planner.pipeline.worker import PlanJob, PlanningWorker

if TYPE_CHECKING:  # imported when the node is configured
    from cosmos_planner.frames.types import Clip
    from cosmos_planner.model.cancel import CancelToken
    from cosmos_planner.model.protocol import Backend, Completion, GenerationRequest
    from cosmos_planner.settings import ParamSpec
    from cosmos_planner.pipeline.plan_pipeline import PipelineOutcome
    from cosmos_planner.pipeline.planner import Planner

NODE_NAME = 'cosmos_planner'
#: Output topics (private) and their rclpy message classes.
OUTPUT_TYPES = {name: m.message_class(t) for name, t in RECORD_TYPES.items()}


def _per_camera(handler: Callable[[str, Any], object], camera: str) -> Callable[[Any], None]:
    """Subscription callback handing ``(camera, msg)`` to ``handler`` (its result dropped)."""
    def callback(msg: Any) -> None:
        handler(camera, msg)
    return callback


class JobResult:
    """What the worker hands back: the pipeline outcome plus the node's own timings."""

    def __init__(self, outcome: 'PipelineOutcome', clip: Optional['Clip'],
                 timings_ms: Dict[str, float],
                 transform_source: str) -> None:
        """Bundle the outcome with the clip it was planned from."""
        self.outcome = outcome
        self.clip = clip
        self.timings_ms = timings_ms
        self.transform_source = transform_source


class _AnnouncingBackend:
    """The node's backend as its planner sees it: ``announce()`` before every generation.

    A wrapper rather than a hook in the planner, so the ``generating`` status stays a node
    concern; everything but ``generate`` is the wrapped backend's own.
    """

    def __init__(self, backend: 'Backend', announce: Callable[[], None]) -> None:
        """Wrap ``backend``; ``announce`` must not raise."""
        self._backend = backend
        self._announce = announce

    def generate(self, request: 'GenerationRequest',
                 cancel: Optional['CancelToken'] = None) -> 'Completion':
        """Announce, then generate with the wrapped backend."""
        self._announce()
        return self._backend.generate(request, cancel)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


class PlannerNode(LifecycleNode):
    """Lifecycle node wiring ROS topics to the planning core (see module docstring)."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        """Declare and validate parameters, create status/diagnostics/services.

        Raises ``ConfigError`` (or rclpy's InvalidParameterValueException) naming the bad
        parameter; ``main`` turns that into an error message and exit code 2.
        """
        super().__init__(node_name, **kwargs)
        self._specs: Dict[str, ParamSpec] = {}
        self._values: Dict[str, Any] = {}
        self._lock = threading.RLock()
        self._publish_lock = threading.Lock()
        self._use_sim_time = bool(self.get_parameter('use_sim_time').value)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._specs = declare_node_parameters(self)
        self._values = current_values(self, self._specs)
        self.config: NodeConfig = node_config_from_values(self._values)
        check_paths(self.config)
        self.stats = NodeStats([c.name for c in self.config.cameras], self.get_name())
        self._task: Optional[PlanJob] = None
        self._task_counter = itertools.count(1)
        self._configured = False
        self._active = False
        self._subs: List[Any] = []
        self._ros_timers: List[Any] = []
        self._out: Dict[str, Any] = {}
        self.worker: Optional[PlanningWorker] = None
        self.inputs: Optional[SensorInputs] = None
        self.backend: Optional[Backend] = None
        self.planner: Optional[Planner] = None
        self._tf: Optional[TransformSource] = None
        self.status_pub = self.create_publisher(String, '~/status', QoSProfile(depth=50))
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_service(Trigger, '~/replan', self._on_replan)
        self.create_service(Trigger, '~/cancel', self._on_cancel)
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._diag_timer = self.create_timer(self.config.diagnostics_period_s,
                                             self._publish_diagnostics, clock=self._steady)
        self._jump_handle = self.get_clock().create_jump_callback(
            JumpThreshold(min_forward=None, min_backward=Duration(nanoseconds=-1),
                          on_clock_change=False),
            post_callback=self._on_time_jump)

    # -- time ---------------------------------------------------------------------------------
    def now_ns(self) -> int:
        """ROS time now (sim or bag time under use_sim_time)."""
        return self.get_clock().now().nanoseconds

    def _sim_time(self) -> bool:
        """Whether ROS time is sim time (cached: read on every frame by the ingest)."""
        return self._use_sim_time

    # -- lifecycle ---------------------------------------------------------------------------
    def autostart(self) -> bool:
        """Configure and activate (``autostart`` parameter); True when active."""
        self.trigger_configure()
        if not self._configured:
            return False
        self.trigger_activate()
        return self._active

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the backend and build the planning stack; failure leaves it unconfigured."""
        try:
            self._configure()
        except Exception as exc:  # noqa: BLE001 - any failure here is reported, not raised
            reason = getattr(exc, 'reason', 'configure_failed')
            self.get_logger().error(f'configure failed: {exc}')
            self.stats.backend_health = {'ok': False, 'detail': str(exc)[:200]}
            self._status('configure_failed', reason=f'{reason}: {exc}')
            self._teardown()
            return TransitionCallbackReturn.FAILURE
        self._configured = True
        self.stats.state = 'inactive'
        name = self.backend.name if self.backend is not None else ''  # set by _configure
        self.get_logger().info(f'configured: backend {name}, preset '
                               f'{self.config.preset}, primary camera {self.config.primary}')
        self._status('configured', reason=f'backend {name}')
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        from cosmos_planner.frames.ingest import FrameIngest
        from cosmos_planner.pipeline.planner import Planner

        cfg = node_config_from_values(current_values(self, self._specs))
        self.config = cfg
        ingest = FrameIngest(max_pixels=cfg.max_pixels)
        buffers = make_buffers(cfg)
        self.inputs = SensorInputs(ingest, buffers, self.stats, cfg.primary,
                                   on_time_reset=self._on_stamps_backwards,
                                   measure_delay=lambda: not self._sim_time(),
                                   ros_now_ns=self.now_ns)
        self.backend = make_configured_backend(
            cfg.backend_kind, cfg.backend_options, cfg.faults, cfg.faults_then)
        self.stats.backend_health = dict(self.backend.health())
        self.planner = Planner(_AnnouncingBackend(self.backend, self._on_generating),
                               cfg.preset, reasoning=cfg.reasoning,
                               max_attempts=cfg.max_attempts)
        self._tf = TransformSource(self, cfg.use_tf, cfg.tf_timeout_s)
        reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self._out = {name: self.create_publisher(t, '~/' + name, reliable)
                     for name, t in OUTPUT_TYPES.items()}
        self.worker = PlanningWorker(self._run_job, self._on_job_done, self._on_job_error)
        self.worker.start()

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to cameras, depth, camera_info, end-effector pose and the task."""
        cfg = self.config
        cam_qos = (QoSProfile(depth=cfg.qos_depth, reliability=ReliabilityPolicy.RELIABLE)
                   if cfg.qos_reliable else qos_profile_sensor_data)
        info_qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE) \
            if cfg.qos_reliable else qos_profile_sensor_data
        inputs = self.inputs
        assert inputs is not None  # made in on_configure
        for cam in cfg.cameras:
            name = cam.name
            # One group per camera: with executor.threads > 1 cameras decode in parallel,
            # while each camera's frames stay in order.
            group = MutuallyExclusiveCallbackGroup()
            if cam.compressed:
                self._subs.append(self.create_subscription(
                    CompressedImage, cam.image_topic,
                    _per_camera(inputs.compressed, name), cam_qos,
                    callback_group=group))
            else:
                self._subs.append(self.create_subscription(
                    Image, cam.image_topic, _per_camera(inputs.image, name), cam_qos,
                    callback_group=group))
            self._subs.append(self.create_subscription(
                CameraInfo, cam.info_topic, lambda msg, n=name: inputs.camera_info(n, msg),
                info_qos))
            if cam.depth_topic:
                self._subs.append(self.create_subscription(
                    CompressedImage if cam.depth_compressed else Image, cam.depth_topic,
                    _per_camera(inputs.depth, name), cam_qos, callback_group=group))
        if cfg.ee_pose_enabled:
            self._subs.append(self.create_subscription(
                PoseStamped, cfg.ee_pose_topic, inputs.ee_pose, 10))
        self._subs.append(self.create_subscription(String, '~/task', self._on_task,
                                                   QoSProfile(depth=10)))
        self._restart_ros_timers()
        self._active = True
        self.stats.state = 'active'
        topics = ', '.join(self.resolve_topic_name(c.image_topic) for c in cfg.cameras)
        self.get_logger().info(f'active: cameras {topics}; tasks on '
                               f'{self.resolve_topic_name("~/task")}')
        self._status('active', reason='subscribed to ' + topics)
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe, cancel the plan in flight and publish a hold."""
        self._active = False
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs.clear()
        self._stop_ros_timers()
        self._cancel_and_hold('deactivated')
        self.stats.state = 'inactive'
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release the backend and the publishers."""
        self._teardown()
        self.stats.state = 'unconfigured'
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop planning and release everything."""
        self._active = False
        self._teardown()
        self.stats.state = 'finalized'
        return TransitionCallbackReturn.SUCCESS

    def stop_worker(self, timeout: float = 1.5) -> None:
        """Cancel the generation in flight and join the worker (used on SIGINT)."""
        if self.worker is not None:
            self.worker.stop(timeout)

    def _teardown(self) -> None:
        self._configured = False
        self.stop_worker()
        self.worker = None
        closer = getattr(self.backend, 'close', None)
        if callable(closer):
            try:
                closer()
            except Exception as exc:  # noqa: BLE001 - best effort at shutdown
                self.get_logger().warning(f'closing the backend failed: {exc}')
        self.backend = None
        self.planner = None
        for pub in self._out.values():
            self.destroy_publisher(pub)
        self._out = {}

    # -- timers ------------------------------------------------------------------------------
    def _restart_ros_timers(self) -> None:
        self._stop_ros_timers()
        cfg = self.config
        if cfg.replan_period_s > 0:
            self._ros_timers.append(self.create_timer(cfg.replan_period_s, self._on_periodic))
        self._ros_timers.append(self.create_timer(
            max(0.05, cfg.watchdog_timeout_s / 2.0), self._on_watchdog))

    def _stop_ros_timers(self) -> None:
        for timer in self._ros_timers:
            self.destroy_timer(timer)
        self._ros_timers.clear()

    def _on_periodic(self) -> None:
        with self._lock:
            task = self._task
        if task is not None and self.worker is not None and not self.worker.busy:
            self.worker.submit(task.task_id, task.task, 'periodic')

    def _on_watchdog(self) -> None:
        timeout_ns = int(self.config.watchdog_timeout_s * 1e9)
        for cam in self.stats.silent_cameras(self.now_ns(), timeout_ns):
            self.get_logger().warning(f'camera {cam} went silent')
            self._status('camera_silent', reason=f'no frame from camera {cam} for '
                         f'{self.config.watchdog_timeout_s:g} s', camera=cam)

    def _publish_diagnostics(self) -> None:
        if self.backend is not None:
            try:
                self.stats.backend_health = dict(self.backend.health())
            except Exception as exc:  # noqa: BLE001 - health must not kill diagnostics
                self.stats.backend_health = {'ok': False, 'detail': f'health failed: {exc}'}
        self.diag_pub.publish(self.stats.to_array(
            self.now_ns(), int(self.config.watchdog_timeout_s * 1e9)))

    # -- requests ----------------------------------------------------------------------------
    def _on_task(self, msg: String) -> None:
        intake = intake_task(msg.data, self._new_task_id)
        if intake.refusal is not None:
            self._status('bad_task', **intake.refusal)
            return
        text, task_id = intake.text, intake.task_id
        if self.worker is None:
            self._status('not_active', reason='the node is not configured', task_id=task_id)
            return
        job = self.worker.submit(task_id, text, 'task')
        with self._lock:
            self._task = job
        self._status('accepted', task_id=task_id, task=text, trigger='task')

    def _on_replan(self, request: Trigger.Request,
                   response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            task = self._task
        if not self._active or self.worker is None:
            response.success, response.message = False, 'the node is not active'
        elif task is None:
            response.success = False
            response.message = 'no task to replan; publish one on ~/task'
        else:
            self.worker.submit(task.task_id, task.task, 'replan')
            response.success, response.message = True, f'replanning task {task.task_id}'
        return response

    def _on_cancel(self, request: Trigger.Request,
                   response: Trigger.Response) -> Trigger.Response:
        job = self._cancel_and_hold('cancel requested')
        with self._lock:
            self._task = None
        response.success = True
        response.message = ('cancelled task ' + job.task_id) if job else 'nothing was running'
        return response

    def _cancel_and_hold(self, reason: str) -> Optional[PlanJob]:
        """Cancel the plan in flight, then publish a hold so a controller stops."""
        if self.worker is None:
            return None
        with self._publish_lock:
            job = self.worker.cancel()
            self._publish_hold()
        self._status('cancelled', reason=reason, task_id=job.task_id if job else '',
                     hold=True)
        return job

    def _publish_hold(self) -> None:
        if not self._out or not self.context.ok():
            return
        cfg = self.config
        frame = cfg.pipeline.grounding.target_frame
        hold_pos = None
        hold_ori: Vector = cfg.pipeline.grounding.tool_orientation_xyzw
        ee = self.inputs.ee_pose_latest() if self.inputs else None
        if ee is not None:
            _, ee_frame, pos, ori = ee
            if not frame or ee_frame == frame:
                frame, hold_pos, hold_ori = ee_frame, pos, ori
        if not frame and self.inputs is not None:
            latest = self.inputs.latest_frame(cfg.primary)
            frame = latest.frame_id if latest is not None else ''
        records = build_hold_records(self.now_ns(), frame, hold_position=hold_pos,
                                     hold_orientation=hold_ori, ee_joint=cfg.ee_joint)
        for name, record in records.items():
            self._out[name].publish(m.to_ros(record))

    def _on_time_jump(self, jump: TimeJump) -> None:
        """ROS clock went backwards (sim reset, bag loop with /clock): start over."""
        if jump.delta.nanoseconds < 0:
            if self.inputs is not None:
                # The new time lets the buffers drop old-timeline frames still in flight.
                self.inputs.reset(self.now_ns())
            else:
                self.stats.clock_reset()
            self._time_reset(f'ROS time jumped back {-jump.delta.nanoseconds * 1e-9:.3f} s; '
                             'buffers cleared')

    def _on_stamps_backwards(self, reason: str) -> None:
        """Cancel work after the buffers saw stamps go back (they cleared themselves)."""
        self._time_reset(reason)

    def _time_reset(self, reason: str) -> None:
        """Time reset: cancel (and never publish) what was planned on the old timeline."""
        job = None
        if self.worker is not None:
            with self._publish_lock:
                job = self.worker.cancel()
        self.get_logger().warning(f'clock reset: {reason}')
        self._status('clock_reset', reason=reason, task_id=job.task_id if job else '')

    # -- the worker side ---------------------------------------------------------------------
    def _run_job(self, job: PlanJob) -> JobResult:
        from cosmos_planner.pipeline.plan_pipeline import PlanPipeline

        assert self.inputs is not None and self.planner is not None  # made in on_configure
        tick = time.perf_counter()
        request = build_request(self.config, self.inputs, job.task, job.task_id, self.now_ns(),
                                transform=self._pipeline_config,
                                on_ee_ignored=self._ee_pose_ignored)
        snapshot_ms = (time.perf_counter() - tick) * 1e3
        # The worker cancels job.cancel (supersede, ~/cancel, a clock reset, shutdown).
        outcome = PlanPipeline(self.planner, request.config).run(
            request.inputs, now_fn=self.now_ns, cancel=job.cancel)
        return JobResult(outcome, request.clip, {'snapshot': snapshot_ms},
                         request.transform_source)

    def _pipeline_config(self, camera: Any, clip: Any) -> Any:
        """Return this request's pipeline config, with the TF transform when there is one."""
        cfg = self.config.pipeline
        target = cfg.grounding.target_frame
        source_frame = (camera.frame_id if camera is not None and camera.frame_id
                        else clip.newest.frame_id if clip is not None else '')
        if self._tf is None or clip is None:
            return cfg, 'static'
        transform, how = self._tf.lookup(target, source_frame, clip.newest.stamp_ns)
        if transform is None:
            return cfg, how
        return cfg.with_changes({'target.translation': list(transform.translation),
                                 'target.rotation_xyzw': list(transform.quaternion_xyzw)}), how

    def _ee_pose_ignored(self, why: str) -> None:
        self.get_logger().warning(why, throttle_duration_sec=10.0)

    def _on_generating(self) -> None:
        """Say on ``~/status`` that the backend started generating for the running job.

        Called on the worker thread, after the pre-generation checks passed, once per
        backend call (a retry is announced again). Without it nobody outside can tell a
        request still queued or being checked from one the model is working on.
        """
        job = self.worker.running if self.worker is not None else None
        if job is not None:
            self._status('generating', task_id=job.task_id, trigger=job.trigger)

    def _on_job_done(self, job: PlanJob, result: JobResult, current: bool) -> None:
        if not self.context.ok():
            return          # shutting down (SIGINT): nothing can be published any more
        tick = time.perf_counter()
        outcome = result.outcome
        timings = dict(outcome.timings_ms)
        timings.update(result.timings_ms)
        status = outcome.status.value
        base = dict(task_id=job.task_id, task=job.task, trigger=job.trigger,
                    stamp=outcome.stamp_ns * 1e-9 if outcome.stamp_ns else None)
        assert self.worker is not None  # the worker calls this
        with self._publish_lock:
            replaced = self.worker.replaced_by(job) or (None if current else 'superseded')
            if replaced is not None:
                why = ('cancelled (~/cancel, deactivation or a clock reset)'
                       if replaced == 'cancelled' else 'a newer request replaced it')
                self._report(job, replaced, f'{why}; the {status} result was dropped',
                             timings, base)
                return
            debug_frame = None
            pub = self._out.get('debug_image')
            if (outcome.ok and self.config.debug_image and pub is not None
                    and pub.get_subscription_count() and result.clip is not None):
                debug_frame = result.clip.newest
            out = publication(outcome, self.now_ns(), self.config, debug_frame=debug_frame,
                              transform_source=result.transform_source)
            if not out.published:
                self._report(job, out.status, out.reason, timings, base, **out.fields)
                return
            for name, record in out.messages:
                self._out[name].publish(m.to_ros(record))
        timings['publish'] = (time.perf_counter() - tick) * 1e3
        timings['node_overhead'] = (timings.get('total', 0.0) + timings['snapshot']
                                    + timings['publish'] - timings.get('generate', 0.0))
        self._report(job, out.status, out.reason, timings, base, **out.fields)

    def _on_job_error(self, job: PlanJob, exc: BaseException) -> None:
        reason = getattr(exc, 'reason', 'internal_error')
        self.get_logger().error(f'planning task {job.task_id} failed: {exc!r}')
        self._report(job, 'failed', f'{reason}: {exc}', {}, dict(
            task_id=job.task_id, task=job.task, trigger=job.trigger))

    def _report(self, job: PlanJob, status: str, reason: str, timings: Dict[str, float],
                base: Dict[str, Any], **extra: Any) -> None:
        self.stats.outcome(status, reason, timings)
        self._status(status, reason=reason, timings_ms=timings, **base, **extra)

    def _status(self, status: str, **fields: Any) -> None:
        fields = status_fields(status, self.get_fully_qualified_name(), self.now_ns(),
                               **fields)
        try:
            self.status_pub.publish(m.to_ros(status_record(fields)))
        except Exception as exc:  # noqa: BLE001 - e.g. context shut down during SIGINT
            self.get_logger().debug(f'status not published: {exc}')

    def _new_task_id(self) -> str:
        return f'task-{next(self._task_counter)}-{uuid.uuid4().hex[:8]}'

    # -- parameters --------------------------------------------------------------------------
    def _on_set_parameters(self, params: List[Any]) -> SetParametersResult:
        changes = [(p.name, plain(p.value)) for p in params]
        problem = validate_changes(self._specs, self._values, changes)
        if problem:
            return SetParametersResult(successful=False, reason=problem)
        for name, value in changes:
            if name == 'use_sim_time':
                self._use_sim_time = bool(value)
        if self._values and set(self._specs) <= set(self._values):
            merged = dict(self._values)
            merged.update({n: v for n, v in changes if n in self._specs})
            try:
                cfg = node_config_from_values(merged)
            except ConfigError as exc:
                return SetParametersResult(successful=False, reason=str(exc))
            self._values = merged
            old = self.config
            self.config = cfg
            if self._active and (cfg.replan_period_s != old.replan_period_s
                                 or cfg.watchdog_timeout_s != old.watchdog_timeout_s):
                self._restart_ros_timers()
            if cfg.diagnostics_period_s != old.diagnostics_period_s:
                self.destroy_timer(self._diag_timer)
                self._diag_timer = self.create_timer(
                    cfg.diagnostics_period_s, self._publish_diagnostics, clock=self._steady)
        return SetParametersResult(successful=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Console script ``planner_node``: run the node until SIGINT; exit 2 on bad config."""
    from rclpy.exceptions import InvalidParameterValueException, ParameterException

    args = list(sys.argv if argv is None else argv)
    rclpy.init(args=args)
    try:
        node = PlannerNode()
    except (ConfigError, InvalidParameterValueException, ParameterException) as exc:
        print(f'planner_node: invalid configuration: {exc}', file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    threads = node.config.executor_threads
    executor = (MultiThreadedExecutor(num_threads=threads) if threads > 1
                else SingleThreadedExecutor())
    executor.add_node(node)
    code = 0
    try:
        if node.config.autostart and not node.autostart():
            print('planner_node: autostart failed (see the error above and ~/status); '
                  'set autostart:=false to keep the node up for lifecycle transitions',
                  file=sys.stderr)
            return 1
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except PlannerError as exc:
        print(f'planner_node: {exc}', file=sys.stderr)
        code = 1
    finally:
        node.stop_worker(timeout=1.5)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == '__main__':
    sys.exit(main())
