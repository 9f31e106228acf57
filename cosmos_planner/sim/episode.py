"""Closed-loop episodes: sim + controller in this process, the planner node in another.

One ``EpisodeRunner`` owns an rclpy context with three nodes on a multi-threaded
executor (``SimNode``, ``ControllerNode`` and a small ``MonitorNode`` that sends the task,
asks for replans and listens to ``/cosmos_planner/status``), and one ``planner_node``
child process that reaches them only over DDS with ``use_sim_time``, as it would reach
Isaac Sim. Per episode it resets the sim (sim time back to zero, new seed layout), sends
the task once a few frames exist, replans when configured (``replan='idle'``: when the
controller has finished a plan, or a request failed, and the task is not done) and stops
at success (target at rest inside the basket), failure (target off the table) or the
sim-time limit. Every episode is one JSON line; the summary has the success rate.
"""

from dataclasses import asdict, dataclass, field
import json
import math
from pathlib import Path
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, TYPE_CHECKING

import numpy as np
from cosmos_planner.errors import BackendUnavailable, ConfigError
from cosmos_planner.settings import write_params_file
from cosmos_planner.pipeline.publishing import PROGRESS_STATUSES
from cosmos_planner.sim.config import SimConfig
from cosmos_planner.sim.controller_node import ControllerNode
from cosmos_planner.sim.monitor_node import MonitorNode
from cosmos_planner.sim.planner_process import GRIPPER_CLOSED, GRIPPER_OPEN
from cosmos_planner.sim.planner_process import planner_parameters, PlannerProcess
from cosmos_planner.sim.sim_node import SimNode

if TYPE_CHECKING:  # rclpy is imported when the runner starts; recording imports cv2
    from rclpy.context import Context
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter

    from cosmos_planner.sim.recording import EpisodeVideo

#: Statuses that end a planning request (see the planner node's ``~/status``).
FINAL_STATUSES = frozenset({'ok', 'no_frames', 'backend_failed', 'backend_unavailable',
                            'parse_failed', 'cancelled', 'grounding_failed', 'rejected',
                            'stale', 'failed', 'superseded', 'replay_miss'})
REPLAN_MODES = ('idle', 'off')


@dataclass(frozen=True)
class RunnerConfig:
    """How episodes run; ``planner_params`` are extra planner_node parameters (they win)."""

    task: str = 'put the red cube in the basket'
    backend: str = 'expert'
    backend_options: Mapping[str, Any] = field(default_factory=dict)
    preset: str = 'plan'
    episodes: int = 1
    seed: int = 0
    out_dir: Path = Path('runs/sim')
    record_video: bool = False
    record_bag: bool = False
    replan: str = 'idle'
    #: Planning requests per episode (the task counts as the first).
    max_requests: int = 4
    #: Sim seconds after the reset before the task is sent (frames must exist).
    task_delay_s: float = 0.6
    #: Sim seconds the controller must be idle before an idle replan.
    settle_s: float = 1.0
    #: Sim seconds without an answer after which a request is sent again.
    request_timeout_s: float = 20.0
    #: Wall seconds for the planner node to come up (model loading included).
    startup_timeout_s: float = 300.0
    planner_params: Mapping[str, Any] = field(default_factory=dict)
    #: Extra environment of the planner process (ROS_DOMAIN_ID etc. are inherited).
    planner_env: Mapping[str, str] = field(default_factory=dict)
    model_label: str = ''
    is_tiny: bool = False
    #: How the planner grounds pixels: plane (the table) or depth (the depth image).
    grounding: str = 'plane'

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ConfigError(f'episodes must be >= 1, got {self.episodes}')
        if self.seed < 0:
            raise ConfigError(f'seed must be >= 0, got {self.seed}')
        if self.replan not in REPLAN_MODES:
            raise ConfigError(f'replan must be one of {REPLAN_MODES}, got {self.replan!r}')
        if self.max_requests < 1:
            raise ConfigError('max_requests must be >= 1')
        if not self.task.strip():
            raise ConfigError('the task must be a non-empty instruction')
        for name in ('task_delay_s', 'settle_s', 'request_timeout_s', 'startup_timeout_s'):
            if not getattr(self, name) >= 0:
                raise ConfigError(f'{name} must be >= 0')


@dataclass
class EpisodeResult:
    """One episode's record (one JSON line of ``episodes.jsonl``)."""

    episode: int
    seed: int
    task: str
    backend: str
    success: bool
    outcome: str
    sim_time_s: float
    wall_time_s: float
    requests: int
    plans: int
    statuses: Dict[str, int]
    planner_latency_ms: List[float]
    generate_ms: List[float]
    plan_to_motion_s: List[float]
    request_to_motion_s: List[float]
    final_object_error_m: float
    dropped_commands: Dict[str, int]
    #: Why requests failed: status, check and reason of each non-OK answer.
    failures: List[Dict[str, str]]
    layout: Dict[str, Any]
    video: str = ''
    bag: str = ''
    error: str = ''

    def as_dict(self) -> Dict[str, Any]:
        out = asdict(self)
        out['planner_latency_ms_mean'] = _mean(self.planner_latency_ms)
        out['plan_to_motion_s_mean'] = _mean(self.plan_to_motion_s)
        return out


def _mean(values: List[float]) -> Optional[float]:
    return float(np.mean(values)) if values else None


@dataclass
class RequestBook:
    """One episode's planning requests and what the planner said about them."""

    task_id: str
    requests: List[float] = field(default_factory=list)
    pending: bool = False
    last_final_s: float = -math.inf
    statuses: Dict[str, int] = field(default_factory=dict)
    latency_ms: List[float] = field(default_factory=list)
    generate_ms: List[float] = field(default_factory=list)
    failures: List[Dict[str, str]] = field(default_factory=list)

    def sent(self, now: float) -> None:
        """Record a request (task or replan) sent at sim time ``now``."""
        self.requests.append(now)
        self.pending = True

    def absorb(self, events: List[Dict[str, Any]], now: float) -> None:
        """Count this episode's status events (and the reset's clock jump)."""
        for event in events:
            status = str(event.get('status', ''))
            if status in PROGRESS_STATUSES or (event.get('task_id') != self.task_id
                                               and status != 'clock_reset'):
                continue
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status not in FINAL_STATUSES:
                continue
            self.pending = False
            self.last_final_s = now
            timings = event.get('timings_ms') or {}
            if status == 'ok':
                self.latency_ms.append(float(timings.get('total', 0.0)))
                self.generate_ms.append(float(timings.get('generate', 0.0)))
            else:
                self.failures.append({'status': status, 'check': str(event.get('check', '')),
                                      'reason': str(event.get('reason', ''))[:300]})


class EpisodeRunner:
    """Runs episodes of the closed loop; use as a context manager (it owns processes)."""

    def __init__(self, sim_cfg: SimConfig, cfg: RunnerConfig,
                 log: Callable[[str], None] = print) -> None:
        self.sim_cfg = sim_cfg
        self.cfg = cfg
        self.log = log
        self.out_dir = Path(cfg.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.ground_truth_path = self.out_dir / 'ground_truth.json'
        self._ctx: Optional[Context] = None
        self._executor: Optional[MultiThreadedExecutor] = None
        self._spin: Optional[threading.Thread] = None
        self.sim: Optional[SimNode] = None
        self.controller: Optional[ControllerNode] = None
        self.monitor: Optional[MonitorNode] = None
        self.planner: Optional[PlannerProcess] = None
        self._video: Optional[EpisodeVideo] = None
        self._on_frame: Optional[Callable[[int, np.ndarray, np.ndarray], None]] = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> 'EpisodeRunner':
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the ROS side, then the planner process; wait until the planner is active."""
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import MultiThreadedExecutor

        ctx = self._ctx = Context()
        rclpy.init(context=ctx)
        sim = self.sim = SimNode(self.sim_cfg, ground_truth_path=str(self.ground_truth_path),
                                 start=False, context=ctx)
        sim.add_frame_hook(self._frame_hook)
        self.controller = ControllerNode(sim, context=ctx, parameter_overrides=[
            _param('gripper_open_position', GRIPPER_OPEN),
            _param('gripper_closed_position', GRIPPER_CLOSED)])
        monitor = self.monitor = MonitorNode(context=ctx)
        executor = self._executor = MultiThreadedExecutor(num_threads=3, context=ctx)
        for node in (sim, self.controller, monitor):
            executor.add_node(node)
        self._spin = threading.Thread(target=executor.spin, name='sim_executor',
                                      daemon=True)
        self._spin.start()
        with sim.lock:
            pose = sim.sim.optical_pose()
        params = planner_parameters(
            sim.cfg, pose, self.cfg.backend, self.cfg.backend_options, self.cfg.preset,
            ground_truth=str(self.ground_truth_path), extra=self.cfg.planner_params,
            grounding=self.cfg.grounding)
        params_file = write_params_file(self.out_dir / 'planner_params.yaml', params)
        planner = self.planner = PlannerProcess(
            params_file, self.out_dir / 'planner_node.log', env=self.cfg.planner_env,
            ground_truth=str(self.ground_truth_path)).start()
        proc = planner.proc
        self.log(f'planner_node started (pid {proc.pid if proc is not None else "?"}); '
                 f'log: {planner.log_path}')
        deadline = time.monotonic() + self.cfg.startup_timeout_s
        # The sim runs (paused physics would leave the planner without /clock and frames).
        sim.resume()
        while not monitor.planner_ready():
            if not planner.alive():
                raise BackendUnavailable(
                    f'planner_node exited with code {planner.returncode()} before it '
                    f'was ready:\n{planner.tail()}')
            if time.monotonic() > deadline:
                raise BackendUnavailable(
                    f'planner_node not active after {self.cfg.startup_timeout_s:g} s:\n'
                    f'{planner.tail()}')
            time.sleep(0.1)
        sim.pause()
        monitor.take_events()

    def close(self) -> None:
        """Stop the planner process, the executor, the sim thread; shut rclpy down."""
        import rclpy

        if self.planner is not None:
            self.planner.stop()
        if self._executor is not None:
            self._executor.shutdown()
        if self._spin is not None:
            self._spin.join(timeout=10.0)
        if self.sim is not None:
            self.sim.close()
        for node in (self.monitor, self.controller, self.sim):
            if node is not None:
                node.destroy_node()
        if self._ctx is not None:
            rclpy.try_shutdown(context=self._ctx)
        self._executor = self._spin = self._ctx = None
        self.sim = self.controller = self.monitor = self.planner = None

    def _started(self) -> Tuple[SimNode, ControllerNode, MonitorNode, PlannerProcess]:
        """Return the nodes and the planner process, which ``start()`` (``with``) creates."""
        if (self.sim is None or self.controller is None or self.monitor is None
                or self.planner is None):
            raise RuntimeError('EpisodeRunner is not started (use it as a context manager)')
        return self.sim, self.controller, self.monitor, self.planner

    # ------------------------------------------------------------------ episodes
    def run(self) -> Dict[str, Any]:
        """All episodes; writes ``episodes.jsonl`` and ``summary.json`` in ``out_dir``."""
        results = []
        lines_path = self.out_dir / 'episodes.jsonl'
        with open(lines_path, 'w') as lines:
            for index in range(self.cfg.episodes):
                result = self.run_episode(index, self.cfg.seed + index)
                results.append(result)
                lines.write(json.dumps(result.as_dict()) + '\n')
                lines.flush()
                self.log(f'episode {index} seed {result.seed}: {result.outcome} in '
                         f'{result.sim_time_s:.1f} s sim ({result.wall_time_s:.1f} s wall), '
                         f'{result.plans} plan(s), object error '
                         f'{result.final_object_error_m:.3f} m')
        summary = summarize(results, self.cfg)
        (self.out_dir / 'summary.json').write_text(json.dumps(summary, indent=2) + '\n')
        return summary

    def run_episode(self, index: int, seed: int) -> EpisodeResult:
        """Reset with ``seed``, send the task, run until success, failure or the limit."""
        sim, ctrl, monitor, planner = self._started()
        cfg = self.cfg
        sim.pause()
        sim.reset(seed)
        monitor.take_events()
        first_exec = len(ctrl.executions)
        dropped0 = dict(ctrl.dropped)
        stem = f'episode_{index:03d}_seed_{seed}'
        video_path = bag_path = ''
        bag = None
        if cfg.record_video:
            self._start_video(self.out_dir / f'{stem}.mp4', index, seed)
            video_path = str(self.out_dir / f'{stem}.mp4')
        if cfg.record_bag:
            from cosmos_planner.sim.recording import EpisodeBag
            bag_path = str(self.out_dir / stem)
            bag = EpisodeBag(monitor, Path(bag_path), lambda: sim.sim.time_ns)
        book = RequestBook(f'episode-{index}-seed-{seed}')
        outcome, error = 'timeout', ''
        wall0 = time.monotonic()
        sim.resume()
        try:
            while True:
                time.sleep(0.02)
                with sim.lock:
                    state = sim.sim.evaluate()
                    idle = ctrl.is_idle(state.time_s)
                now = state.time_s
                book.absorb(monitor.take_events(), now)
                if state.success or state.fallen:
                    outcome = 'success' if state.success else 'fallen'
                    break
                if now >= self.sim_cfg.time_limit_s:
                    break
                if not planner.alive():
                    outcome, error = 'planner_died', planner.tail()
                    break
                self._maybe_request(book, now, idle, first_exec)
        finally:
            sim.pause()
            if bag is not None:
                bag.close()
            self._stop_video()
        with sim.lock:
            state = sim.sim.evaluate()
            layout = sim.sim.layout.as_dict()
        plans = [e for e in ctrl.executions[first_exec:] if e.get('kind') == 'plan']
        req_to_motion = []
        for e in plans:
            before = [r for r in book.requests if r <= e['started_s'] + 1e-9]
            if before:
                req_to_motion.append(e['started_s'] - before[-1])
        dropped = {k: v - dropped0.get(k, 0) for k, v in ctrl.dropped.items()
                   if v - dropped0.get(k, 0)}
        return EpisodeResult(
            episode=index, seed=seed, task=cfg.task, backend=cfg.backend,
            success=outcome == 'success', outcome=outcome, sim_time_s=state.time_s,
            wall_time_s=time.monotonic() - wall0, requests=len(book.requests),
            plans=len(plans), statuses=book.statuses, planner_latency_ms=book.latency_ms,
            generate_ms=book.generate_ms,
            plan_to_motion_s=[float(e['latency_s']) for e in plans],
            request_to_motion_s=req_to_motion,
            final_object_error_m=state.object_error_m, dropped_commands=dropped,
            failures=book.failures, layout=layout, video=video_path, bag=bag_path,
            error=error[-2000:])

    def _maybe_request(self, book: 'RequestBook', now: float, idle: bool,
                       first_exec: int) -> None:
        """Send the task once frames exist; then replan when idle or a request is lost."""
        cfg = self.cfg
        _, ctrl, monitor, _ = self._started()
        if not book.requests:
            if now >= cfg.task_delay_s:
                monitor.send_task(cfg.task, book.task_id)
                book.sent(now)
            return
        if cfg.replan != 'idle' or len(book.requests) >= cfg.max_requests:
            return
        if book.pending:
            if now - book.requests[-1] > cfg.request_timeout_s:
                monitor.request_replan()
                book.sent(now)
            return
        quiet_since = max(book.last_final_s, _last_end(ctrl, first_exec))
        if idle and now - quiet_since >= cfg.settle_s:
            monitor.request_replan()
            book.sent(now)

    # ------------------------------------------------------------------ video
    def _start_video(self, path: Path, index: int, seed: int) -> None:
        from cosmos_planner.sim.recording import add_annotated_frame, EpisodeVideo

        sim, ctrl, _, _ = self._started()
        video = EpisodeVideo(path, sim.cfg.camera_rate_hz, (sim.cfg.width, sim.cfg.height))
        label = self.cfg.model_label or self.cfg.backend
        if self.cfg.is_tiny:
            label += ' (tiny RANDOM checkpoint)'

        def on_frame(stamp_ns: int, rgb: np.ndarray, depth: np.ndarray) -> None:
            if self._video is video:
                add_annotated_frame(video, sim.sim, ctrl.follower, rgb, [
                    f'ep {index} seed {seed}  t={stamp_ns * 1e-9:5.2f}s', label])

        self._video = video
        self._on_frame = on_frame

    def _frame_hook(self, stamp_ns: int, rgb: np.ndarray, depth: np.ndarray) -> None:
        hook = self._on_frame
        if hook is not None:
            hook(stamp_ns, rgb, depth)

    def _stop_video(self) -> None:
        video, self._video = self._video, None
        self._on_frame = None
        if video is not None:
            video.close()


def _last_end(ctrl: ControllerNode, first: int) -> float:
    """Sim time at which the newest execution of this episode ends (or -inf)."""
    ends = [e['started_s'] + e.get('duration_s', 0.0) for e in ctrl.executions[first:]
            if 'started_s' in e]
    return max(ends) if ends else -math.inf


def _param(name: str, value: Any) -> 'Parameter':
    from rclpy.parameter import Parameter
    return Parameter(name, value=value)


def summarize(results: List[EpisodeResult], cfg: RunnerConfig) -> Dict[str, Any]:
    """Success rate and mean latencies over episodes (the ``summary.json`` content)."""
    n = len(results)
    successes = sum(r.success for r in results)
    outcomes: Dict[str, int] = {}
    for r in results:
        outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
    lat = [v for r in results for v in r.planner_latency_ms]
    p2m = [v for r in results for v in r.plan_to_motion_s]
    return {
        'episodes': n, 'successes': successes, 'success_rate': successes / n if n else 0.0,
        'outcomes': outcomes, 'task': cfg.task, 'backend': cfg.backend,
        'model': cfg.model_label, 'tiny_checkpoint': cfg.is_tiny,
        'oracle': cfg.backend == 'expert',
        'planner_latency_ms_mean': _mean(lat), 'plan_to_motion_s_mean': _mean(p2m),
        'plans': sum(r.plans for r in results),
        'sim_time_s_mean': _mean([r.sim_time_s for r in results]),
        'final_object_error_m_mean': _mean([r.final_object_error_m for r in results]),
        'seeds': [r.seed for r in results],
        'grounding': cfg.grounding, 'replan': cfg.replan,
    }
