"""Planner node under camera load: ingest delay during inference, and the node's overhead.

Run: ``python bench/bench_node.py`` (options: ``--seconds``, ``--fps``, ``--width``,
``--height``, ``--encoding raw|jpeg``, ``--reliable``, ``--shm-profile``, ``--phases``).
Every node runs in its own process, started as a user starts it; this process publishes two
cameras at ``--fps`` with header stamps taken right before ``publish`` (wall clock, no sim
time) and reads what the node reports.

1. **Camera callbacks during inference.** The node measures, per frame, header stamp ->
   "frame is in the buffer" (DDS transfer, deserialisation, decode, resize, push) and
   reports p50/p99/max in ``/diagnostics``. Measured while a generation runs all the time,
   in the same run and under the same load:
   - ``transport floor``: a bare subscriber doing nothing but reading the clock (what DDS
     itself costs on this machine; no node can be faster);
   - ``worker`` (this package's node): planning on its worker thread; generation = the
     TEST-ONLY ``faults`` backend sleeping 2.5 s per request, a task every 2.5 s;
   - ``single-threaded`` baseline: the same node class with planning run inline in the
     task callback on the executor thread (what a naive node does);
   - ``worker + tiny model``: the real local backend generating with the tiny checkpoint
     (torch on CPU: CPU and GIL contention, not a sleep).
   Also reported: frames buffered / published, the longest gap between consecutive
   buffered frames (a blocked executor shows up here: frames queued beyond the QoS depth
   are dropped, so the delay of the survivors understates the damage), and the callback's
   own time (decode, resize, push). Target: p99 under 10 ms for ``worker`` at 2 x 30 fps
   720p.
2. **Node overhead per plan, model time excluded.** With an instant backend (``faults``
   returning a fixed valid answer), tasks at 4 Hz while both cameras stream: the node's
   ``node_overhead`` (snapshot, prompt, parse, ground, time, gate, build and publish the
   messages, debug image included) from ``~/status``, and the end-to-end time from the task
   message to the ``~/plan`` message in this process minus the generation time. Target:
   p95 under 25 ms.

``--shm-profile`` gives every process a Fast DDS profile with a 64 MiB shared-memory
segment (the default 512 KiB segment makes a 2.7 MB raw 720p image fall back to fragmented
UDP); ``--reliable`` uses reliable QoS (``qos.reliable: true``) instead of sensor-data QoS.
Numbers depend on the machine's load (printed with the tables).
"""

import argparse
import json
import os
from pathlib import Path
import statistics
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from cosmos_planner.pipeline.publishing import PROGRESS_STATUSES

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'test'))

NODE = '/cosmos_planner'
ANSWER = json.dumps({'next_action': 'pick up the block', 'steps': ['grasp', 'place'],
                     'trajectory': [{'point_2d': [500, 500], 'label': 'gripper trajectory'},
                                    {'point_2d': [550, 520], 'label': 'gripper trajectory',
                                     'gripper': 'close'},
                                    {'point_2d': [600, 560], 'label': 'gripper trajectory'},
                                    {'point_2d': [650, 520], 'label': 'gripper trajectory',
                                     'gripper': 'open'}]})


# --- the single-threaded baseline node (served in its own process) -------------------------

class InlineWorker:
    """Baseline: runs each request inside the callback that submitted it (no thread)."""

    def __init__(self, run_job: Any, on_done: Any) -> None:
        """Keep the node's job functions."""
        from itertools import count
        self._run_job, self._on_done, self._seq = run_job, on_done, count(1)

    def submit(self, task_id: str, task: str, trigger: str, **meta: Any) -> Any:
        """Plan now, on the caller's (executor) thread, then publish."""
        from cosmos_planner.pipeline.worker import PlanJob
        job = PlanJob(task_id, task, trigger, next(self._seq), dict(meta))
        self.running = job          # what the node's 'generating' status reads
        try:
            result = self._run_job(job)
        finally:
            self.running = None
        self._on_done(job, result, True)
        return job

    busy = False
    running: Any = None

    def cancel(self) -> None:
        """Nothing can be cancelled: the executor is busy planning."""

    def replaced_by(self, job: Any) -> Optional[str]:
        """Return None: one request at a time, run to completion, is never replaced."""
        return None

    def is_current(self, job: Any) -> bool:
        """Report every job as current (see ``replaced_by``)."""
        return True

    def stop(self, timeout: float = 0.0) -> bool:
        """Nothing to join."""
        return True


def serve_inline() -> int:
    """Run the planner node with planning on the executor thread (the baseline)."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    from cosmos_planner.ros.planner_node import PlannerNode

    rclpy.init(args=sys.argv)
    node = PlannerNode()
    node.autostart()
    node.stop_worker()
    node.worker = InlineWorker(node._run_job, node._on_job_done)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def camera_qos(reliable: bool) -> Any:
    """Sensor-data QoS (the node's default) or reliable keep-last 5 (``qos.reliable``)."""
    from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
    if reliable:
        return QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    return qos_profile_sensor_data


def serve_floor() -> int:
    """Bare subscriber: the transport floor (callback entry - header stamp), no decoding."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from sensor_msgs.msg import CompressedImage, Image

    jpeg = '--jpeg' in sys.argv
    reliable = '--reliable' in sys.argv
    rclpy.init(args=sys.argv)
    node = rclpy.create_node('transport_floor')
    delays: Dict[str, List[float]] = {'cam0': [], 'cam1': []}

    def callback(cam: str) -> Any:
        def record(msg: Any) -> None:
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            delays[cam].append((time.time_ns() - stamp) * 1e-6)
        return record
    for cam in delays:
        node.create_subscription(CompressedImage if jpeg else Image,
                                 f'{cam}/image/compressed' if jpeg else f'{cam}/image',
                                 callback(cam), camera_qos(reliable))
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        print('FLOOR ' + json.dumps(delays), flush=True)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def write_shm_profile(path: Path) -> Path:
    """Write a Fast DDS profile with a 64 MiB shared-memory segment (UDP for discovery)."""
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8" ?>\n'
        '<profiles xmlns="http://www.eprosima.com">\n'
        '  <transport_descriptors>\n'
        '    <transport_descriptor><transport_id>shm_large</transport_id><type>SHM</type>\n'
        '      <segment_size>67108864</segment_size>'
        '<maxMessageSize>16777216</maxMessageSize>\n'
        '    </transport_descriptor>\n'
        '    <transport_descriptor><transport_id>udp</transport_id><type>UDPv4</type>'
        '</transport_descriptor>\n'
        '  </transport_descriptors>\n'
        '  <participant profile_name="large_shm" is_default_profile="true"><rtps>\n'
        '    <userTransports><transport_id>shm_large</transport_id>'
        '<transport_id>udp</transport_id></userTransports>\n'
        '    <useBuiltinTransports>false</useBuiltinTransports>\n'
        '  </rtps></participant>\n'
        '</profiles>\n')
    return path


# --- load generation and measurement ----------------------------------------------------------

class Streamer:
    """Publish raw rgb8 frames on several cameras at a fixed rate, stamped at publish."""

    def __init__(self, peer: Any, cameras: List[str], args: argparse.Namespace) -> None:
        """Prepare a few frames per camera (data converted once) and their publishers."""
        import cv2
        from sensor_msgs.msg import CameraInfo, CompressedImage, Image

        fps, width, height = args.fps, args.width, args.height
        qos = camera_qos(args.reliable)
        self.info = _camera_info(width, height)

        rng = np.random.default_rng(0)
        self.period = 1.0 / fps
        self.published: Dict[str, int] = {c: 0 for c in cameras}
        self._stop = threading.Event()
        self._threads = []
        jpeg = args.encoding == 'jpeg'
        for cam in cameras:
            pub = peer.node.create_publisher(
                CompressedImage if jpeg else Image,
                f'{cam}/image/compressed' if jpeg else f'{cam}/image', qos)
            info_pub = peer.node.create_publisher(CameraInfo, f'{cam}/camera_info', qos)
            frames = []
            for _ in range(4):
                v, u = np.mgrid[0:height, 0:width]
                img = np.stack([u % 256, v % 256, (u + v) % 256], axis=-1).astype(np.uint8)
                img = cv2.add(img, rng.integers(0, 24, img.shape, dtype=np.uint8))
                if jpeg:
                    msg = CompressedImage(format='rgb8; jpeg compressed bgr8')
                    msg.data = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, 85])[1] \
                        .tobytes()
                else:
                    msg = Image(height=height, width=width, encoding='rgb8', is_bigendian=0,
                                step=width * 3)
                    msg.data = img.tobytes()
                msg.header.frame_id = 'cam'
                frames.append(msg)
            self.bytes_per_frame = len(frames[0].data)
            self._threads.append(threading.Thread(
                target=self._run, args=(cam, pub, info_pub, frames), daemon=True))

    def start(self) -> None:
        """Start one publishing thread per camera."""
        for t in self._threads:
            t.start()

    def _run(self, cam: str, pub: Any, info_pub: Any, frames: List[Any]) -> None:
        i = 0
        next_t = time.monotonic()
        while not self._stop.is_set():
            msg = frames[i % len(frames)]
            ns = time.time_ns()
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(ns, 1_000_000_000)
            pub.publish(msg)
            self.info.header.stamp = msg.header.stamp
            info_pub.publish(self.info)
            self.published[cam] += 1
            i += 1
            next_t += self.period
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_t = time.monotonic()

    def stop(self) -> None:
        """Stop publishing."""
        self._stop.set()
        for t in self._threads:
            t.join(2)


def _camera_info(width: int, height: int) -> Any:
    from sensor_msgs.msg import CameraInfo
    info = CameraInfo(width=width, height=height, distortion_model='plumb_bob',
                      d=[0.0] * 5,
                      k=[0.7 * width, 0.0, width / 2, 0.0, 0.7 * width, height / 2, 0, 0, 1])
    info.header.frame_id = 'cam'
    return info


class NodeRun:
    """One node process on its own domain, with this process's peer node."""

    def __init__(self, kind: str, params: Dict[str, Any], tmp: Path) -> None:
        """Start the node (``worker``: the console script; ``inline``: the baseline)."""
        from ros_helpers import claim_domain_id, NodeProcess, node_command, RosPeer
        from ros_helpers import write_params_file

        self.kind = kind
        self.domain = claim_domain_id()
        params_file = write_params_file(tmp / f'{kind}.yaml', 'cosmos_planner', params)
        if kind in ('inline', 'floor'):
            cmd = [sys.executable, str(Path(__file__).resolve()), f'--serve-{kind}']
            cmd += [f for f, on in (('--jpeg', params.get('cameras.cam0.compressed')),
                                    ('--reliable', params.get('qos.reliable'))) if on]
        else:
            cmd = node_command('planner_node', 'cosmos_planner.ros.planner_node')
        cmd += ['--ros-args', '--params-file', str(params_file)]
        self.proc = NodeProcess(cmd, self.domain, tmp / f'{kind}.log').start()
        self.peer = RosPeer(self.domain, 'bench_peer')

    def wait_active(self, timeout: float = 180.0) -> None:
        """Wait for the lifecycle state ``active`` (the floor subscriber: a fixed 2 s)."""
        if self.kind == 'floor':
            time.sleep(2.0)
            return
        state = self.peer.wait_for_lifecycle_state(NODE, 'active', timeout, self.proc.alive)
        if state != 'active':
            raise RuntimeError(f'node did not start:\n{self.proc.output()[-3000:]}')

    def close(self) -> None:
        from ros_helpers import release_domain_id
        try:
            self.peer.close()
        finally:
            self.proc.stop(5)
            release_domain_id(self.domain)


def _diag_values(msg: Any) -> Dict[str, Dict[str, str]]:
    return {s.name: {kv.key: kv.value for kv in s.values} for s in msg.status}


def measure_ingest(kind: str, params: Dict[str, Any], args: argparse.Namespace, tmp: Path,
                   task_period_s: float) -> List[Tuple[str, float, float, float, int, str]]:
    """Stream two cameras while generations run; return per-camera delay statistics."""
    from diagnostic_msgs.msg import DiagnosticArray
    from std_msgs.msg import String

    run = NodeRun(kind, params, tmp)
    streamer = None
    try:
        run.wait_active()
        diag = run.peer.collect(DiagnosticArray, '/diagnostics', depth=50)
        statuses = run.peer.collect(String, NODE + '/status', depth=100)
        task = run.peer.publisher(String, NODE + '/task')
        run.peer.wait_for_subscribers(task)
        streamer = Streamer(run.peer, ['cam0', 'cam1'], args)
        streamer.start()
        time.sleep(1.0)
        end = time.monotonic() + args.seconds
        n = 0
        if kind == 'floor':
            time.sleep(args.seconds)
            streamer.stop()
            run.proc.interrupt()
            run.proc.wait(10)
            line = next((ln for ln in run.proc.output().splitlines()
                         if ln.startswith('FLOOR ')), None)
            if line is None:
                raise RuntimeError('the floor subscriber reported nothing:\n'
                                   + run.proc.output()[-2000:])
            delays = json.loads(line[len('FLOOR '):])
            return [(cam, _pct(d, 50), _pct(d, 99), max(d) if d else float('nan'), len(d),
                     f'{len(d)}/{streamer.published[cam]} received')
                    for cam, d in delays.items()]
        while time.monotonic() < end:
            n += 1
            task.publish(String(data=json.dumps({'task': 'pick up the block',
                                                 'task_id': f'bench-{n}'})))
            time.sleep(min(task_period_s, max(0.0, end - time.monotonic())))
        streamer.stop()
        time.sleep(1.5)
        last = diag.wait_for(lambda m: True, 10, start=diag.count())
        if last is None:
            raise RuntimeError(f'no /diagnostics from the {kind} node (got {diag.count()}):\n'
                               + run.proc.output()[-3000:])
        values = _diag_values(last)
        generating = sum(1 for m in statuses.messages
                         if json.loads(m.data).get('timings_ms', {}).get('generate', 0) > 500)
        rows = []
        for cam in ('cam0', 'cam1'):
            v = values[f'cosmos_planner: camera {cam}']
            rows.append((cam, float(v['ingest_delay_ms_p50']), float(v['ingest_delay_ms_p99']),
                         float(v['ingest_delay_ms_max']), int(v['ingest_delay_samples']),
                         f'{v["frames"]}/{streamer.published[cam]} buffered; longest gap '
                         f'{float(v["frame_gap_ms_max"]):.0f} ms; callback p50 '
                         f'{float(v["callback_ms_p50"]):.1f} / p99 '
                         f'{float(v["callback_ms_p99"]):.1f} ms; {generating} generations'))
        return rows
    finally:
        if streamer is not None:
            streamer.stop()
        run.close()


def measure_overhead(params: Dict[str, Any], args: argparse.Namespace, tmp: Path
                     ) -> Tuple[List[float], List[float], int]:
    """Instant backend, tasks at 4 Hz under camera load: node overhead and end to end."""
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    run = NodeRun('worker', params, tmp)
    streamer = None
    try:
        run.wait_active()
        statuses = run.peer.collect(String, NODE + '/status', depth=200)
        plans = run.peer.collect(String, NODE + '/plan', depth=200)
        run.peer.collect(Image, NODE + '/debug_image', depth=5)   # so the node draws it
        task = run.peer.publisher(String, NODE + '/task')
        run.peer.wait_for_subscribers(task)
        run.peer.wait_for_publishers(NODE + '/plan')
        streamer = Streamer(run.peer, ['cam0', 'cam1'], args)
        streamer.start()
        time.sleep(1.0)
        sent: Dict[str, float] = {}
        for i in range(args.requests):
            task_id = f'over-{i}'
            sent[task_id] = time.monotonic()
            task.publish(String(data=json.dumps({'task': 'pick up the block',
                                                 'task_id': task_id})))
            time.sleep(0.25)
        time.sleep(1.0)
        overhead, e2e = [], []
        arrivals = {json.loads(m.data)['task_id']: t
                    for m, t in zip(plans.messages, plans.arrivals)}
        failed = 0
        for msg in statuses.messages:
            data = json.loads(msg.data)
            if data.get('status') == 'ok':
                overhead.append(data['timings_ms']['node_overhead'])
                if data['task_id'] in arrivals:
                    e2e.append((arrivals[data['task_id']] - sent[data['task_id']]) * 1e3
                               - data['timings_ms'].get('generate', 0.0))
            elif data.get('task_id') in sent and data.get('status') not in PROGRESS_STATUSES:
                failed += 1
        return overhead, e2e, failed
    finally:
        if streamer is not None:
            streamer.stop()
        run.close()


def _pct(values: List[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float('nan')


def main() -> int:
    """Run the phases and print markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seconds', type=float, default=10.0)
    parser.add_argument('--fps', type=float, default=30.0)
    parser.add_argument('--width', type=int, default=1280)
    parser.add_argument('--height', type=int, default=720)
    parser.add_argument('--requests', type=int, default=40)
    parser.add_argument('--skip-tiny', action='store_true')
    parser.add_argument('--transport', default='', help='FASTDDS_BUILTIN_TRANSPORTS for all '
                        'processes (e.g. LARGE_DATA, SHM); default: Fast DDS default')
    parser.add_argument('--encoding', choices=('raw', 'jpeg'), default='raw')
    parser.add_argument('--reliable', action='store_true', help='reliable camera QoS')
    parser.add_argument('--shm-profile', action='store_true',
                        help='Fast DDS profile with a 64 MiB shared-memory segment')
    parser.add_argument('--phases', default='floor,worker,inline,tiny,overhead')
    parser.add_argument('--threads', type=int, default=1,
                        help='executor.threads of the worker node')
    args = parser.parse_args()
    if args.transport:
        os.environ['FASTDDS_BUILTIN_TRANSPORTS'] = args.transport
    profile_dir = tempfile.TemporaryDirectory()
    if args.shm_profile:
        os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = str(
            write_shm_profile(Path(profile_dir.name) / 'shm.xml'))
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    phases = set(args.phases.split(','))
    jpeg = args.encoding == 'jpeg'
    base = {'cameras.names': ['cam0', 'cam1'], 'planner.max_attempts': 1,
            'tf.use_tf': False, 'diagnostics.period_s': 0.5, 'watchdog.timeout_s': 5.0,
            'qos.reliable': args.reliable, 'cameras.cam0.compressed': jpeg,
            'cameras.cam1.compressed': jpeg, 'executor.threads': args.threads}
    empty = Path(profile_dir.name) / 'empty.jsonl'
    empty.write_text('')          # the delayed request then misses the replay: no plan
    slow = dict(base, **{'backend.kind': 'faults', 'backend.faults_then': 'delay:2.5',
                         'backend.replay_path': str(empty)})
    transport = os.environ.get('FASTDDS_BUILTIN_TRANSPORTS', 'Fast DDS default transports')
    if args.shm_profile:
        transport = '64 MiB SHM profile'
    print(f'{args.encoding} {args.width}x{args.height} at {args.fps:g} fps x 2 cameras; '
          f'{"reliable" if args.reliable else "sensor-data"} QoS; {transport}; '
          f'{os.cpu_count()} cores; load before: {os.getloadavg()[0]:.1f}')
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        runs = []
        if 'floor' in phases:
            runs.append(('transport floor', 'none (bare subscriber)', 'floor', base, 0.0))
        if 'worker' in phases:
            runs.append(('worker', 'sleep 2.5 s (faults delay)', 'worker', slow, 2.5))
        if 'inline' in phases:
            runs.append(('single-threaded', 'sleep 2.5 s (faults delay)', 'inline', slow,
                         2.5))
        if 'tiny' in phases:
            from cosmos_planner.backends.local.tiny_checkpoint import ensure_tiny_checkpoint
            tiny = dict(base, **{'backend.kind': 'local', 'backend.device': 'cpu',
                                 'backend.model': str(ensure_tiny_checkpoint()),
                                 'prompt.preset': 'trajectory'})
            runs.append(('worker', 'tiny checkpoint, torch CPU', 'worker', tiny, 1e9))
        rows = []
        for name, generation, kind, params, period in runs:
            for row in measure_ingest(kind, params, args, tmp, period):
                rows.append((name, generation) + row)
        if rows:
            print(f'\n### Publish-to-buffered delay while generating (load '
                  f'{os.getloadavg()[0]:.1f})\n')
            print('| node | generation | camera | p50 ms | p99 ms | max ms | samples | '
                  'notes |')
            print('|---|---|---|---|---|---|---|---|')
            for name, gen, cam, p50, p99, mx, n, notes in rows:
                print(f'| {name} | {gen} | {cam} | {p50:.2f} | {p99:.2f} | {mx:.1f} | {n} | '
                      f'{notes} |')
            worker = [r[4] for r in rows if r[0] == 'worker' and 'delay' in r[1]]
            inline = [r[4] for r in rows if r[0] == 'single-threaded']
            if worker and inline:
                print(f'\nworker p99 {max(worker):.2f} ms vs single-threaded p99 '
                      f'{max(inline):.1f} ms ({max(inline) / max(max(worker), 1e-9):.0f}x); '
                      f'target < 10 ms: {"met" if max(worker) < 10 else "NOT met"}')
        if 'overhead' in phases:
            instant = dict(base, **{'backend.kind': 'faults',
                                    'backend.faults_then': 'garbage:' + ANSWER})
            overhead, e2e, failed = measure_overhead(instant, args, tmp)
            print(f'\n### Node overhead per plan, model time excluded ({len(overhead)} '
                  f'plans, {failed} failed; 2 cameras streaming; load '
                  f'{os.getloadavg()[0]:.1f})\n')
            print('| measure | p50 ms | p95 ms | max ms |')
            print('|---|---|---|---|')
            for label, vals in (('node_overhead (in the node)', overhead),
                                ('task msg -> ~/plan msg, minus generate', e2e)):
                print(f'| {label} | {_pct(vals, 50):.2f} | {_pct(vals, 95):.2f} | '
                      f'{max(vals) if vals else float("nan"):.2f} |')
            if overhead:
                print(f'\nnode_overhead p95 {_pct(overhead, 95):.2f} ms; target < 25 ms: '
                      f'{"met" if _pct(overhead, 95) < 25 else "NOT met"}; mean '
                      f'{statistics.mean(overhead):.2f} ms')
    return 0


if __name__ == '__main__':
    if '--serve-inline' in sys.argv:
        sys.argv.remove('--serve-inline')
        sys.exit(serve_inline())
    if '--serve-floor' in sys.argv:
        sys.exit(serve_floor())
    sys.exit(main())
