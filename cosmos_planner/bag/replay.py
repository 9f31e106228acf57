"""``cosmos-planner replay BAG``: run a recorded bag through the planner offline, in bag time.

The replay is the planner node without ROS: it builds the node's configuration from the
same parameters (``node_config_from_values``: ``--params-file`` plus ``-p`` overrides plus
the bag's camera topics), the same buffers, backend, planner and pipeline, feeds the same
``SensorInputs`` callbacks with the recorded messages, builds each request and publishes
each outcome through the node's own code (:mod:`cosmos_planner.pipeline.request`,
:mod:`cosmos_planner.pipeline.publishing`: the last staleness check, ``PUBLISH_ORDER``, the
status events), and writes the message records the node would publish into an MCAP bag
with ``rosbags`` instead of onto topics. Neither rclpy nor any ROS message package is
needed.

Time: bag time is the recorded log time, which is what ``/clock`` carries when a bag is
played with ``--clock``; buffers and staleness use header stamps exactly as the node does.
The planning schedule is the node's (see :mod:`cosmos_planner.bag.schedule`): a request
when a task arrives, then on every ``replan_period_s`` tick of bag time (multiples of the
period, as the node's ROS-clock timer created at start-up under sim time) when nothing is in
flight. Tasks come from the bag's task topic (``~/task``: plain text or JSON with ``task`` and
``task_id``, as the node parses it) and/or from ``--task``, which arrives ``--task-at``
seconds after the bag start or, by default, with the first primary frame (a task before any
frame could only fail with ``no_frames``). Model time (``--model-time``) decides when a result
is published: ``recorded`` (default: the backend's generation time, as recorded for replayed
answers, which keeps regression replays deterministic), ``zero`` or ``measured`` (wall time
of the whole pipeline in this run).

The end-effector pose (``ee_pose.enabled``) is read from the bag's ``ee_pose.topic`` when
recorded. Differences from the node, on purpose: no TF lookup (the static ``target.*``
transform of the parameters is used, as on pip-only machines); no ``/diagnostics``; a
generation is never interrupted (a superseded request's result is dropped instead, which
publishes the same messages); frames the buffer would not take are not decoded
(:mod:`cosmos_planner.bag.lazy_ingest`; ``--decode-all`` decodes them all), and their
payloads are not even read from the bag: image and depth messages arrive with their header
bytes only and read the rest when something uses it (a kept or video frame, a plan's depth
image, a copied input), through the storage index (:mod:`cosmos_planner.bag.indexed`;
``--full-read`` reads every payload with ``rosbags``, as before). Stamps, message order,
camera rates and bad-input counts are the same either way.

Outputs, ids and stamps: see :mod:`cosmos_planner.bag.outputs`. Ids are deterministic
(``task-N``, ``plan-N``) so two replays of one bag differ only where decisions differ.
Regression runs: ``--record FILE`` records raw answers of any backend; ``--responses FILE``
replays them (backend ``replay``) and re-runs parse, grounding and the gate without a model.
``OUT/params.yaml`` holds the node parameters used, so the live node can be started with
the same configuration (``planner_node --ros-args --params-file OUT/params.yaml -p
use_sim_time:=true``) and fed by ``cosmos-planner play BAG --clock``.
"""

import argparse
from collections import Counter, defaultdict, deque
from dataclasses import asdict, dataclass, field
import itertools
from pathlib import Path
import sys
import time
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple

import numpy as np

from cosmos_planner.bag.errors import BagError
from cosmos_planner.bag.generation_clock import GenerationClock
from cosmos_planner.bag.lazy_ingest import LazyIngest, LazyMessage
from cosmos_planner.bag.node_params import load_params_file
from cosmos_planner.bag.outputs import RunWriter
from cosmos_planner.bag.reader import BagMessage, BagReader
from cosmos_planner.bag.scenes import TASK_TOPIC
from cosmos_planner.bag.schedule import PlanSchedule
from cosmos_planner.bag.summary import ReplaySummary
from cosmos_planner.bag.topics import CameraTopics, resolve_cameras, task_topic_of
from cosmos_planner.errors import ConfigError, PlannerError
from cosmos_planner.pipeline.outputs import status_fields, status_record
from cosmos_planner.settings import parse_assignments, write_params_file

NAMESPACE = '/cosmos_planner'
MODEL_TIMES = ('recorded', 'zero', 'measured')
COPY_INPUTS = ('used', 'all', 'none')


@dataclass
class ReplayOptions:
    """Everything ``replay`` needs; mirrors the command-line flags."""

    bag: Path
    out: Path
    task: Optional[str] = None
    #: When ``task`` arrives, seconds after the bag start (None: with the first primary frame).
    task_at_s: Optional[float] = None
    cameras: Sequence[str] = ()
    depth: Sequence[str] = ()
    camera_info: Sequence[str] = ()
    task_topic: str = TASK_TOPIC
    force: bool = False
    backend: Optional[str] = None
    model: Optional[str] = None
    responses: Optional[Path] = None
    record: Optional[Path] = None
    params_file: Optional[Path] = None
    params: Dict[str, Any] = field(default_factory=dict)
    replan_period_s: Optional[float] = None
    model_time: str = 'recorded'
    video: bool = True
    video_fps: float = 5.0
    video_max_width: int = 640
    copy_inputs: str = 'used'
    debug_image: bool = False
    decode_all: bool = False
    #: Read every payload with ``rosbags`` instead of through the storage index.
    full_read: bool = False
    typestore: Optional[str] = None
    progress: Optional[bool] = None

    def __post_init__(self) -> None:
        if self.model_time not in MODEL_TIMES:
            raise ConfigError(f'--model-time must be one of {", ".join(MODEL_TIMES)}')
        if self.copy_inputs not in COPY_INPUTS:
            raise ConfigError(f'--copy-inputs must be one of {", ".join(COPY_INPUTS)}')
        if self.replan_period_s is not None and self.replan_period_s < 0:
            raise ConfigError('--replan-period must be >= 0')
        if self.video_fps <= 0:
            raise ConfigError('--video-fps must be positive')


def node_values(options: ReplayOptions, cameras: List[CameraTopics]) -> Dict[str, Any]:
    """Flat node parameters of this replay: file, then -p, then topics and CLI flags."""
    values: Dict[str, Any] = {}
    if options.params_file:
        values.update(load_params_file(options.params_file))
    values.update(options.params)
    for key in [k for k in values if k.startswith('cameras.')]:
        del values[key]  # cameras come from the bag's topics
    values['cameras.names'] = [c.name for c in cameras]
    values['cameras.primary'] = cameras[0].name
    for cam in cameras:
        p = f'cameras.{cam.name}.'
        values[p + 'image_topic'] = cam.image_topic
        values[p + 'compressed'] = cam.compressed
        if cam.info_topic:
            values[p + 'info_topic'] = cam.info_topic
        values[p + 'depth_topic'] = cam.depth_topic or ''
        values[p + 'depth_compressed'] = cam.depth_compressed
    if options.responses:
        values['backend.kind'] = 'replay'
        values['backend.replay_path'] = str(options.responses)
    if options.backend:
        values['backend.kind'] = options.backend
    if options.model:
        values['backend.model'] = options.model
    if options.record:
        values['backend.record_path'] = str(options.record)
    if options.replan_period_s is not None:
        values['replan_period_s'] = float(options.replan_period_s)
    return values


# -- the session -----------------------------------------------------------------------------
@dataclass
class Pending:
    """A request that ran and waits for its publication time."""

    seq: int
    trigger: str
    task_id: str
    task: str
    request_ns: int
    publish_ns: int
    outcome: Any
    clip: Any
    model_ms: float


class PayloadLost(Exception):
    """A lazy payload could not be read: carries the BagError past the input callbacks.

    ``SensorInputs`` counts a PlannerError from a decoder as bad input and goes on, which
    is right for a malformed message but not for a bag that cannot be read any more (the
    full read would have stopped there); the run re-raises ``error``.
    """

    def __init__(self, error: BagError) -> None:
        super().__init__(str(error))
        self.error = error


class Replay:
    """One offline replay run; ``run()`` returns its summary (outputs are always closed)."""

    def __init__(self, options: ReplayOptions) -> None:
        self.options = options
        self.now_ns = 0
        self._seq = itertools.count(1)
        self._task_ids = itertools.count(1)
        self._plan_ids = itertools.count(1)
        self._stage: Dict[str, List[float]] = defaultdict(list)
        self._statuses: Counter = Counter()
        self._failures: Counter = Counter()
        self._pending: Optional[Pending] = None
        self._plan_in_force: Any = None
        self._raw_frames: Dict[str, Deque[Tuple[int, BagMessage]]] = defaultdict(deque)
        self._raw_depth: Dict[str, Deque[Tuple[int, BagMessage]]] = defaultdict(deque)
        self._raw_info: Dict[str, BagMessage] = {}
        self._raw_ee: Optional[BagMessage] = None
        self.clock: Optional[GenerationClock] = None
        self.lazy: Optional[LazyIngest] = None
        self.summary = ReplaySummary(bag=str(options.bag), out=str(options.out))
        self._cli_task_ns: Optional[int] = None
        self._cli_task_done = False
        self._t0 = time.perf_counter()
        self._t0_set = False

    # -- setup ---------------------------------------------------------------------------------
    def _configure(self, reader: BagReader) -> None:
        """Topics and the node configuration: cheap, and checked before anything is written."""
        from cosmos_planner.pipeline.node_config import node_config_from_values

        opts = self.options
        self.cameras = resolve_cameras(reader, opts.cameras, opts.depth, opts.camera_info)
        self.task_topic = task_topic_of(reader, opts.task_topic)
        if not opts.task and self.task_topic is None:
            raise BagError(f'no task: pass --task, or record tasks on {opts.task_topic} '
                           '(std_msgs/String) in the bag', kind='missing_topic')
        self.values = node_values(opts, self.cameras)
        self.cfg = node_config_from_values(self.values)
        self.by_topic: Dict[str, Tuple[str, CameraTopics]] = {}
        for cam in self.cameras:
            self.by_topic[cam.image_topic] = ('image', cam)
            if cam.info_topic:
                self.by_topic[cam.info_topic] = ('info', cam)
            if cam.depth_topic:
                self.by_topic[cam.depth_topic] = ('depth', cam)
        if self.task_topic:
            self.by_topic[self.task_topic] = ('task', self.cameras[0])
        if self.cfg.ee_pose_enabled:
            topic = self.cfg.ee_pose_topic
            topic = topic if topic.startswith('/') else '/' + topic
            if topic in reader.topics:
                reader.require(topic, ('geometry_msgs/msg/PoseStamped',))
                self.by_topic[topic] = ('ee', self.cameras[0])

    def _build(self) -> None:
        """Build the node's core objects: ingest, buffers, backend (may load a model), planner."""
        from cosmos_planner.backends.configured import make_configured_backend
        from cosmos_planner.frames.ingest import FrameIngest
        from cosmos_planner.pipeline.inputs import SensorInputs
        from cosmos_planner.pipeline.planner import Planner
        from cosmos_planner.pipeline.request import make_buffers
        from cosmos_planner.pipeline.stats import PlanningStats

        cfg = self.cfg
        self.stats = PlanningStats([c.name for c in cfg.cameras], 'cosmos_planner')
        self.buffers = make_buffers(cfg)
        self.ingest = FrameIngest(max_pixels=cfg.max_pixels)
        self.lazy = LazyIngest(self.ingest, make_buffers(cfg), self.buffers)
        self.lazy.eager = self.options.decode_all
        self.inputs = SensorInputs(self.lazy, self.buffers, self.stats, cfg.primary,
                                   on_time_reset=self._on_time_reset,
                                   measure_delay=lambda: False, ros_now_ns=lambda: self.now_ns)
        self.clock = GenerationClock(make_configured_backend(
            cfg.backend_kind, cfg.backend_options, cfg.faults, cfg.faults_then))
        self.planner = Planner(self.clock, cfg.preset, reasoning=cfg.reasoning,
                               max_attempts=cfg.max_attempts)

    # -- time events ---------------------------------------------------------------------------
    def _advance(self, until_ns: Optional[int], inclusive: bool = False) -> None:
        """Run every publication and request due before ``until_ns`` (bag time)."""
        while True:
            event = self.schedule.pop(until_ns, inclusive)
            if event is None:
                return
            self.now_ns = max(self.now_ns, event.time_ns)
            if event.kind == 'publish':
                pending, self._pending = self._pending, None
                if pending is not None:
                    self._publish(pending)
            else:
                self._request(event.time_ns, event.trigger)

    # -- message delivery ----------------------------------------------------------------------
    def _deliver(self, reader: BagReader, msg: BagMessage) -> None:
        kind, cam = self.by_topic[msg.topic]
        if kind in ('image', 'depth'):
            # header only: most frames are never needed in full (see lazy_ingest)
            decoded = LazyMessage(msg.head, lambda: _decode_payload(reader, msg))
        else:
            decoded = reader.decode(msg)
        if kind == 'task':
            if self.options.copy_inputs == 'used':
                self._copy(reader, msg)  # every task is used: it starts a request
            self._on_task(decoded.data, msg.log_time_ns)
        elif kind == 'info':
            self.inputs.camera_info(cam.name, decoded)
            self._raw_info[cam.name] = msg
        elif kind == 'ee':
            self.inputs.ee_pose(decoded)
            self._raw_ee = msg
        elif kind == 'depth':
            depth = self.inputs.depth(cam.name, decoded)
            if depth is not None:
                self._keep(self._raw_depth[cam.name], depth.stamp_ns, msg)
                assert self.lazy is not None  # made with the inputs, before any message
                self.lazy.prune(cam.name, depth.stamp_ns - int(self._window_ns()))
        else:
            self.summary.frames += 1
            if cam.compressed:
                frame = self.inputs.compressed(cam.name, decoded)
            else:
                frame = self.inputs.image(cam.name, decoded)
            if frame is None:
                return
            self._keep(self._raw_frames[cam.name], frame.stamp_ns, msg)
            if cam.name == self.cfg.primary:
                self._video(decoded, frame, msg.log_time_ns)
        if self.options.copy_inputs == 'all':
            self._copy(reader, msg)

    def _lazy_topics(self) -> List[str]:
        """Topics whose payloads are read on use: images and depth, unless all are copied."""
        if self.options.copy_inputs == 'all':
            return []
        return [t for t, (kind, _) in self.by_topic.items() if kind in ('image', 'depth')]

    def _window_ns(self) -> float:
        return max(self.cfg.buffer_window_s, 2.0) * 1e9 + 1e9

    def _keep(self, store: Deque[Tuple[int, BagMessage]], stamp_ns: int,
              msg: BagMessage) -> None:
        """Remember raw inputs of the buffer's time window, to copy the ones a plan used."""
        if self.options.copy_inputs != 'used':
            return
        store.append((stamp_ns, msg))
        while store and store[0][0] < stamp_ns - self._window_ns():
            store.popleft()

    def _on_task(self, data: str, time_ns: int) -> None:
        from cosmos_planner.pipeline.request import intake_task

        intake = intake_task(data, lambda: f'task-{next(self._task_ids)}')
        if intake.refusal is not None:
            self._status(time_ns, 'bad_task', **intake.refusal)
            return
        text, task_id = intake.text, intake.task_id
        self.schedule.set_task(time_ns, text, task_id)
        if self._pending is not None:
            dropped, self._pending = self._pending, None
            self._finish_record(dropped, 'superseded', 'a newer request replaced this one',
                                published=False, at_ns=time_ns)
        self._status(time_ns, 'accepted', task_id=task_id, task=text, trigger='task')

    def _on_time_reset(self, reason: str) -> None:
        self.schedule.drop_in_flight()
        if self._pending is not None:
            dropped, self._pending = self._pending, None
            self._finish_record(dropped, 'cancelled', reason, published=False,
                                at_ns=self.now_ns)
        self._status(self.now_ns, 'clock_reset', reason=reason)

    # -- requests ------------------------------------------------------------------------------
    def _request(self, at_ns: int, trigger: str) -> None:
        from cosmos_planner.pipeline.plan_pipeline import PlanPipeline
        from cosmos_planner.pipeline.request import build_request

        cfg = self.cfg
        lazy, clock = self.lazy, self.clock
        assert lazy is not None and clock is not None  # made before any message
        self.now_ns = max(self.now_ns, at_ns)
        for cam in cfg.cameras:
            lazy.check(cam.name)
        request = build_request(cfg, self.inputs, self.schedule.task or '',
                                self.schedule.task_id or '', at_ns,
                                resolve_depth=lazy.real_depth)
        if (request.inputs.ee_position is not None and self._raw_ee is not None
                and self.options.copy_inputs == 'used'):
            self._copy(self._reader, self._raw_ee)
        pipeline = PlanPipeline(self.planner, request.config,
                                id_fn=lambda: f'plan-{next(self._plan_ids)}')
        clock.ms = 0.0
        tick = time.perf_counter()
        mode = self.options.model_time

        def now_fn() -> int:
            if mode == 'zero':
                return at_ns
            if mode == 'recorded':
                return at_ns + int(clock.ms * 1e6)
            return at_ns + int((time.perf_counter() - tick) * 1e9)

        outcome = pipeline.run(request.inputs, now_fn=now_fn)
        model_ms = {'zero': 0.0, 'recorded': clock.ms,
                    'measured': (time.perf_counter() - tick) * 1e3}[mode]
        publish_ns = at_ns + int(round(model_ms * 1e6))
        self.summary.requests += 1
        clip = request.clip
        self._pending = Pending(next(self._seq), trigger, self.schedule.task_id,
                                self.schedule.task or '', at_ns, publish_ns, outcome, clip,
                                model_ms)
        self.schedule.started(publish_ns)
        if self.options.copy_inputs == 'used' and clip is not None:
            self._copy_used(clip, request.inputs.depth)

    def _copy_used(self, clip: Any, depth: Any) -> None:
        wanted = {(c.camera, f.stamp_ns) for c in (clip, *clip.context) for f in c.frames}
        for camera, store in self._raw_frames.items():
            for stamp, msg in store:
                if (camera, stamp) in wanted:
                    self._copy(self._reader, msg)
        if depth is not None:
            for stamp, msg in self._raw_depth.get(depth.camera, ()):
                if stamp == depth.stamp_ns:
                    self._copy(self._reader, msg)
        for c in (clip, *clip.context):
            info = self._raw_info.get(c.camera)
            if info is not None:
                self._copy(self._reader, info)

    def _copy(self, reader: BagReader, msg: BagMessage) -> None:
        self.writer.copy_input(msg.topic, msg.msgtype, msg.log_time_ns, msg.raw,
                               reader.definition(msg.connection))

    # -- publication ---------------------------------------------------------------------------
    def _publish(self, p: Pending) -> None:
        """Publish ``p`` at its bag time exactly as the node publishes an outcome."""
        from cosmos_planner.pipeline.publishing import publication

        debug_frame = None
        if self.options.debug_image and p.clip is not None:
            debug_frame = p.clip.newest
        pub = publication(p.outcome, p.publish_ns, self.cfg, debug_frame=debug_frame)
        for name, record in pub.messages:
            self.writer.publish(f'{NAMESPACE}/{name}', p.publish_ns, record)
        if pub.published:
            self._plan_in_force = pub.plan
        # The raw answer is in plans.jsonl; the replay's status has never repeated it.
        fields = {k: v for k, v in pub.fields.items() if k != 'raw'}
        self._finish_record(p, pub.status, pub.reason, published=pub.published, **fields)

    def _finish_record(self, p: Pending, status: str, reason: str, published: bool,
                       at_ns: Optional[int] = None, timings: Optional[Dict] = None,
                       **extra: Any) -> None:
        outcome = p.outcome
        timings = dict(timings if timings is not None else outcome.timings_ms)
        when = p.publish_ns if at_ns is None else at_ns
        self._statuses[status] += 1
        if status != 'ok':
            self._failures[f'{status}:{extra.get("check") or outcome.check or "-"}'] += 1
        for stage, ms in timings.items():
            self._stage[stage].append(float(ms))
        if published:
            self.summary.plans += 1
        stamp = outcome.stamp_ns or None
        self._status(when, status, reason=reason, task_id=p.task_id, task=p.task,
                     trigger=p.trigger, stamp=stamp * 1e-9 if stamp else None,
                     timings_ms=timings, **{k: v for k, v in extra.items() if k != 'detail'},
                     detail=extra.get('detail') or None)
        plan = outcome.plan if published else None
        self.writer.record({
            'seq': p.seq, 'trigger': p.trigger, 'task_id': p.task_id, 'task': p.task,
            'request_ns': p.request_ns, 'publish_ns': when, 'model_ms': p.model_ms,
            'source_stamp_ns': stamp, 'status': status, 'reason': reason,
            'check': extra.get('check') or outcome.check or '',
            'published': published,
            'clip_stamps_ns': list(p.clip.stamps_ns) if p.clip is not None else [],
            'plan': plan.model_dump(by_alias=True, mode='json') if plan is not None else None,
            'raw_answers': list(outcome.result.raw_answers) if outcome.result else [],
            'timings_ms': timings})

    def _status(self, when_ns: int, status: str, **fields: Any) -> None:
        self.writer.publish(f'{NAMESPACE}/status', when_ns,
                            status_record(status_fields(status, NAMESPACE, when_ns, **fields)))

    # -- video ---------------------------------------------------------------------------------
    def _video(self, decoded: Any, frame: Any, log_ns: int) -> None:
        video = self.writer.video
        if video is None or not video.wants(frame.stamp_ns):
            return
        from cosmos_planner.bag.lazy_ingest import is_stand_in

        image = frame.image
        if is_stand_in(frame):
            try:
                decode = self.ingest.compressed if self.cameras[0].compressed \
                    else self.ingest.image
                real = decode(
                    decoded, frame.camera, frame.stamp_ns, frame.frame_id)
                image = real.image
            except PlannerError:
                return
        plan = self._plan_in_force
        note = ''
        if plan is not None and plan.valid_until * 1e9 < frame.stamp_ns:
            plan, note = None, 'plan expired'
        elif plan is None:
            note = 'no plan yet'
        video.add(np.asarray(image), frame.stamp_ns, plan, note)

    # -- main loop -----------------------------------------------------------------------------
    def run(self) -> ReplaySummary:
        """Replay the bag; outputs are closed whatever happens (errors are re-raised)."""
        opts = self.options
        wall0 = time.perf_counter()
        with BagReader(opts.bag, opts.typestore, indexed=not opts.full_read) as reader:
            self._reader = reader
            self._configure(reader)
            options = {k: (str(v) if isinstance(v, Path) else v)
                       for k, v in asdict(opts).items()}
            self.writer = RunWriter(opts.out, {'options': options, 'params': self.values},
                                    force=opts.force, video_fps=opts.video_fps,
                                    video_max_width=opts.video_max_width, video=opts.video)
            write_params_file(opts.out / 'params.yaml', self.values)
            topics = list(self.by_topic)
            total = sum(reader.topics[t].count for t in topics)
            start_ns, end_ns = reader.start_ns, reader.end_ns
            self.summary.bag_duration_s = max(0.0, (end_ns - start_ns) * 1e-9)
            self.schedule = PlanSchedule(self.cfg.replan_period_s, start_ns)
            self._cli_task_ns = (None if opts.task_at_s is None
                                 else start_ns + int(round(opts.task_at_s * 1e9)))
            bar = _progress(total, opts.progress)
            try:
                with self.writer:
                    try:
                        self._build()
                        self._loop(reader, topics, bar)
                        self._cli_task(None)
                        self._advance(end_ns, inclusive=True)
                        if self._pending is not None:  # the node publishes after the bag ends
                            self._advance(self._pending.publish_ns, inclusive=True)
                    except KeyboardInterrupt:
                        self.summary.interrupted = True
                        raise
                    except PayloadLost as lost:
                        self.summary.error = f'{type(lost.error).__name__}: {lost.error}'
                        raise lost.error from None
                    except Exception as exc:
                        self.summary.error = f'{type(exc).__name__}: {exc}'
                        raise
                    finally:
                        self._summarise(wall0)
                        self.writer.write_summary(asdict(self.summary))
            finally:
                bar.close()
                if self.clock is not None:
                    self.clock.close()
        return self.summary

    def _cli_task(self, before_ns: Optional[int]) -> None:
        """Deliver ``--task`` when its time has come (``--task-at``; else first frame)."""
        if not self.options.task or self._cli_task_done:
            return
        when = self._cli_task_ns
        if when is None or (before_ns is not None and when >= before_ns):
            return
        self._cli_task_done = True
        self._advance(when, inclusive=True)
        self.now_ns = max(self.now_ns, when)
        self._on_task(self.options.task, when)

    def _loop(self, reader: BagReader, topics: List[str], bar: Any) -> None:
        last_update, pending_updates = time.perf_counter(), 0
        self._t0, self._t0_set = last_update, True
        for msg in reader.messages(topics, lazy=self._lazy_topics()):
            self._cli_task(msg.log_time_ns)
            self._advance(msg.log_time_ns)
            self.now_ns = msg.log_time_ns
            self._deliver(reader, msg)
            if (self._cli_task_ns is None and self.options.task
                    and self.by_topic[msg.topic] == ('image', self.cameras[0])):
                self._cli_task_ns = msg.log_time_ns  # default: the first primary frame
                self._cli_task(None)
            self.summary.messages += 1
            pending_updates += 1
            now = time.perf_counter()
            if now - last_update > 0.25:
                bar.update(pending_updates)
                pending_updates, last_update = 0, now
                bar.set_postfix(plans=self.summary.plans,
                                fps=f'{self.summary.frames / max(1e-9, now - self._t0):.0f}',
                                refresh=False)
        bar.update(pending_updates)

    def _summarise(self, wall0: float) -> None:
        s = self.summary
        s.wall_s = time.perf_counter() - wall0
        s.statuses = dict(self._statuses)
        s.failures = dict(self._failures)
        s.skipped_ticks += self.schedule.skipped_ticks
        s.loop_s = (time.perf_counter() - self._t0) if self._t0_set else 0.0
        s.frames_per_s = s.frames / s.loop_s if s.loop_s > 0 else 0.0
        s.realtime_factor = s.bag_duration_s / s.loop_s if s.loop_s > 0 else 0.0
        s.decoded_frames = self.lazy.decoded if self.lazy is not None else 0
        reader = getattr(self, '_reader', None)
        s.read_bytes = reader.read_bytes if reader is not None else 0
        s.video_frames = self.writer.video.frames if self.writer.video else 0
        s.published = dict(self.writer.published)
        bad: Counter = Counter()
        stats = getattr(self, 'stats', None)
        for cam, cam_stats in (stats.cameras.items() if stats is not None else ()):
            for kind, count in cam_stats.bad.items():
                bad[f'{cam}:{kind}'] += count
        if self.lazy is not None and self.lazy.bad_depth:
            bad['depth_undecodable'] += self.lazy.bad_depth
        s.bad_inputs = dict(bad)
        s.stage_ms = {stage: {'mean': float(np.mean(v)), 'p50': float(np.percentile(v, 50)),
                              'p95': float(np.percentile(v, 95)), 'max': float(np.max(v)),
                              'n': len(v)}
                      for stage, v in self._stage.items() if v}


def _decode_payload(reader: BagReader, msg: BagMessage) -> Any:
    """Deserialize a lazy message; a payload that cannot be read stops the run."""
    try:
        msg.raw
    except BagError as exc:
        raise PayloadLost(exc) from None
    return reader.decode(msg)


def _progress(total: int, enabled: Optional[bool]) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit='msg', desc='replay', disable=None if enabled is None
                else not enabled, dynamic_ncols=True, leave=False)


# -- command line ----------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``cosmos-planner replay``."""
    parser.add_argument('bag', help='rosbag2 directory, .mcap or .db3 file (any ROS 2 distro)')
    parser.add_argument('--task', help='instruction planned from the bag start (tasks recorded '
                        'on --task-topic take over when they arrive)')
    parser.add_argument('--task-at', type=float, default=None, metavar='S',
                        help='--task arrives S seconds after the bag start (default: with '
                        'the first primary frame)')
    parser.add_argument('--camera', nargs='+', default=(), metavar='TOPIC',
                        help='image topics (Image or CompressedImage), primary first '
                        '(default: the only colour image topic of the bag)')
    parser.add_argument('--depth', nargs='+', default=(), metavar='TOPIC',
                        help="registered depth topic per camera ('' for none; default: the "
                        "camera's only depth topic)")
    parser.add_argument('--camera-info', nargs='+', default=(), metavar='TOPIC',
                        help='CameraInfo topic per camera (default: beside the image topic)')
    parser.add_argument('--task-topic', default=TASK_TOPIC,
                        help='std_msgs/String topic of tasks recorded in the bag')
    parser.add_argument('--out', type=Path, default=None,
                        help='run directory (default: runs/replay-<bag name>)')
    parser.add_argument('--force', action='store_true', help='replace an existing run dir')
    parser.add_argument('--backend', default=None,
                        help='backend kind (local, openai, replay, expert; default: params '
                        'file or local)')
    parser.add_argument('--model', default=None, help='model path or served model name')
    parser.add_argument('--responses', type=Path, default=None, metavar='JSONL',
                        help='replay recorded answers (no model): regression runs')
    parser.add_argument('--record', type=Path, default=None, metavar='JSONL',
                        help='record every raw model answer to this file')
    parser.add_argument('--params-file', type=Path, default=None,
                        help="the node's ROS parameters YAML (e.g. config/planner.yaml)")
    parser.add_argument('-p', '--param', action='append', default=[], metavar='NAME:=VALUE',
                        help='node parameter override, as with --ros-args -p')
    parser.add_argument('--replan-period', type=float, default=None, metavar='S',
                        help='replan every S seconds of bag time (node: replan_period_s)')
    parser.add_argument('--model-time', choices=MODEL_TIMES, default='recorded',
                        help='bag time a request takes before its result is published')
    parser.add_argument('--no-video', action='store_true', help='skip the annotated MP4')
    parser.add_argument('--video-fps', type=float, default=5.0,
                        help='MP4 frame rate cap (each frame costs a decode and an encode)')
    parser.add_argument('--video-max-width', type=int, default=640,
                        help='MP4 width cap, pixels')
    parser.add_argument('--copy-inputs', choices=COPY_INPUTS, default='used',
                        help='inputs copied to the output bag: those a plan used, all, none')
    parser.add_argument('--debug-image', action='store_true',
                        help='also write ~/debug_image (the annotated source frame)')
    parser.add_argument('--decode-all', action='store_true',
                        help='decode every frame like the node (slower; see lazy_ingest)')
    parser.add_argument('--full-read', action='store_true',
                        help='read every payload with rosbags instead of through the storage '
                        'index (slower on raw images; same outputs)')
    parser.add_argument('--typestore', default=None,
                        help='distro of types the bag does not define (humble, jazzy, ...)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')


def options_from_args(args: argparse.Namespace) -> ReplayOptions:
    """Build ReplayOptions from parsed flags."""
    out = args.out or Path('runs') / f'replay-{Path(args.bag).resolve().name}'
    params = parse_assignments(args.param, '-p')
    return ReplayOptions(
        bag=Path(args.bag), out=Path(out), task=args.task, task_at_s=args.task_at,
        cameras=tuple(args.camera),
        depth=tuple(args.depth), camera_info=tuple(args.camera_info),
        task_topic=args.task_topic, force=args.force, backend=args.backend, model=args.model,
        responses=args.responses, record=args.record, params_file=args.params_file,
        params=params, replan_period_s=args.replan_period, model_time=args.model_time,
        video=not args.no_video, video_fps=args.video_fps,
        video_max_width=args.video_max_width, copy_inputs=args.copy_inputs,
        debug_image=args.debug_image, decode_all=args.decode_all,
        full_read=args.full_read, typestore=args.typestore,
        progress=False if args.no_progress else None)


def replay_bag(options: ReplayOptions) -> ReplaySummary:
    """Run one replay (the API behind the command)."""
    return Replay(options).run()


def run(args: argparse.Namespace) -> int:
    """Entry point of ``cosmos-planner replay``: 0 done, 1 error, 130 interrupted."""
    try:
        options = options_from_args(args)
    except ConfigError as exc:
        print(f'cosmos-planner replay: {exc}', file=sys.stderr)
        return 2
    replay = Replay(options)
    try:
        summary = replay.run()
    except KeyboardInterrupt:
        print(replay.summary.text(), file=sys.stderr)
        return 130
    except PlannerError as exc:
        if replay.summary.wall_s:
            print(replay.summary.text(), file=sys.stderr)
        print(f'cosmos-planner replay: {exc}', file=sys.stderr)
        return 1
    print(summary.text())
    return 0
