"""Soak: the planner node under four 720p cameras with continuous replanning, for minutes.

Run: ``python bench/bench_soak.py`` (10 minutes; ``--minutes 2`` for a short run).
Options: ``--raw`` (raw rgb8 at 15 fps instead of JPEG at 30 fps), ``--backend instant``
(a fixed valid answer instead of the tiny checkpoint), ``--reliable`` (reliable camera
QoS), ``--shm-profile`` (64 MiB Fast DDS shared-memory segment, for raw 720p), ``--json``.

What runs: the node in its own process, started as a user starts it (``planner_node
--ros-args --params-file ...``), with cameras cam0..cam3 (cam0 primary, the others sent as
context), a clip of up to 4 frames per camera at 2 fps, ``replan_period_s`` 0.5 (the node
replans whenever its worker is free: continuous replanning) and, by default, the real local
backend on the tiny random checkpoint (torch on CPU). This process publishes the cameras
(header stamps taken at publish time, CameraInfo with every frame) and reads ``~/status``
and ``/diagnostics``; it samples the node process's RSS, threads, open fds and CPU time
from ``/proc`` every ``--sample-s`` seconds.

What it reports, per minute (the first ``--warmup-s`` seconds excluded from the baseline):
the machine's load average (the other processes' share of the CPU explains most latency
swings on a shared machine), node RSS, threads, fds and CPU time; frames delivered (the
node's ``frames`` counters) against frames published, per camera; plans made and their
outcomes; plan latency p50/p95 (the node's ``total`` timing); ingest delay p50/p99 (publish
stamp to "in the buffer"). Then the
verdicts, each a ratio against the baseline measured in the same run: RSS growth from the
end of the warm-up to the end (target < 50 MB) and its slope, plan latency and ingest delay
of the last minute against the first full minute (stable: within 1.5x), and frames lost.

Not run in CI (minutes long, machine-dependent); docs/reliability.md records a run.
"""

import argparse
import json
import os
from pathlib import Path
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'test'))
sys.path.insert(0, str(ROOT / 'bench'))

NODE = '/cosmos_planner'
CAMERAS = ['cam0', 'cam1', 'cam2', 'cam3']
INSTANT_ANSWER = json.dumps({'next_action': 'pick up the block', 'steps': ['grasp'],
                             'trajectory': [{'point_2d': [500, 500]},
                                            {'point_2d': [550, 520], 'gripper': 'close'},
                                            {'point_2d': [600, 560], 'gripper': 'open'}]})


def proc_sample(pid: int) -> Dict[str, float]:
    """RSS (MB), threads, open fds and CPU seconds of process ``pid`` from /proc."""
    status = Path(f'/proc/{pid}/status').read_text().splitlines()
    fields = {line.split(':')[0]: line.split(':', 1)[1].strip() for line in status}
    stat = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    ticks = os.sysconf('SC_CLK_TCK')
    return {'rss_mb': int(fields['VmRSS'].split()[0]) / 1024.0,
            'threads': int(fields['Threads']),
            'fds': len(os.listdir(f'/proc/{pid}/fd')),
            'cpu_s': (int(stat[11]) + int(stat[12])) / ticks}


def node_params(args: argparse.Namespace, tmp: Path) -> Dict[str, Any]:
    """Parameters of the soaked node."""
    params: Dict[str, Any] = {
        'cameras.names': CAMERAS, 'planner.max_attempts': 1, 'tf.use_tf': False,
        'buffer.fps': 2.0, 'buffer.max_frames': 4, 'buffer.window_s': 4.0,
        'qos.reliable': args.reliable, 'replan_period_s': 0.5,
        'diagnostics.period_s': 1.0, 'watchdog.timeout_s': 5.0,
        'safety.workspace_min': [-5.0, -5.0, -5.0], 'safety.workspace_max': [5.0, 5.0, 5.0],
        'safety.max_step_m': 5.0, 'target.frame': '', 'heights.up': [0.0, 0.0, -1.0],
        'ground.plane': [0.0, 0.0, 1.0, -1.0],
    }
    for cam in CAMERAS:
        params[f'cameras.{cam}.compressed'] = not args.raw
    if args.backend == 'tiny':
        from cosmos_planner.backends.local.tiny_checkpoint import ensure_tiny_checkpoint
        params.update({'backend.kind': 'local', 'backend.device': 'cpu',
                       'backend.model': str(ensure_tiny_checkpoint()),
                       'prompt.preset': 'trajectory'})
    else:
        params.update({'backend.kind': 'faults',
                       'backend.faults_then': 'garbage:' + INSTANT_ANSWER})
    return params


class Minute:
    """What happened in one minute of the soak."""

    def __init__(self, index: int) -> None:
        """Start empty."""
        self.index = index
        self.samples: List[Dict[str, float]] = []
        self.published: Dict[str, int] = {}
        self.delivered: Dict[str, int] = {}
        self.outcomes: Dict[str, int] = {}
        self.plan_ms: List[float] = []
        self.ingest: Dict[str, tuple] = {}


def _pct(values: List[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float('nan')


def _diag(msg: Any) -> Dict[str, Dict[str, str]]:
    return {s.name: {kv.key: kv.value for kv in s.values} for s in msg.status}


def soak(args: argparse.Namespace) -> Dict[str, Any]:
    """Run the node under load for ``args.minutes``; return per-minute records."""
    from bench_node import NodeRun, Streamer
    from diagnostic_msgs.msg import DiagnosticArray
    from std_msgs.msg import String

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        run = NodeRun('worker', node_params(args, tmp), tmp)
        streamer: Optional[Any] = None
        try:
            run.wait_active()
            pid = run.proc.proc.pid
            diags = run.peer.collect(DiagnosticArray, '/diagnostics', depth=20)
            statuses = run.peer.collect(String, NODE + '/status', depth=1000)
            task = run.peer.publisher(String, NODE + '/task')
            run.peer.wait_for_subscribers(task)
            stream_args = argparse.Namespace(
                fps=15.0 if args.raw else 30.0, width=1280, height=720,
                reliable=args.reliable, encoding='raw' if args.raw else 'jpeg')
            streamer = Streamer(run.peer, CAMERAS, stream_args)
            streamer.start()
            time.sleep(1.0)
            task.publish(String(data=json.dumps({'task': 'put the red block on the plate',
                                                 'task_id': 'soak'})))
            t0 = time.monotonic()
            end = t0 + args.minutes * 60.0
            minutes: List[Minute] = [Minute(0)]
            seen_status = 0
            warm: Optional[Dict[str, float]] = None
            last_pub = {c: 0 for c in CAMERAS}
            last_frames = {c: 0 for c in CAMERAS}
            while time.monotonic() < end:
                time.sleep(min(args.sample_s, max(0.0, end - time.monotonic())))
                elapsed = time.monotonic() - t0
                minute = minutes[-1]
                sample = dict(proc_sample(pid), t=elapsed, load=os.getloadavg()[0])
                minute.samples.append(sample)
                if warm is None and elapsed >= args.warmup_s:
                    warm = sample
                msgs = statuses.messages[seen_status:]
                seen_status += len(msgs)
                for msg in msgs:
                    data = json.loads(msg.data)
                    status = data.get('status')
                    if status in (None, 'accepted', 'active', 'configured'):
                        continue
                    minute.outcomes[status] = minute.outcomes.get(status, 0) + 1
                    total = (data.get('timings_ms') or {}).get('total')
                    if status == 'ok' and total is not None:
                        minute.plan_ms.append(float(total))
                if int(elapsed // 60) > minute.index or time.monotonic() >= end:
                    values = _diag(diags.messages[-1]) if diags.messages else {}
                    for cam in CAMERAS:
                        v = values.get(f'cosmos_planner: camera {cam}', {})
                        frames = int(v.get('frames', 0))
                        minute.delivered[cam] = frames - last_frames[cam]
                        minute.published[cam] = streamer.published[cam] - last_pub[cam]
                        last_frames[cam], last_pub[cam] = frames, streamer.published[cam]
                        minute.ingest[cam] = (float(v.get('ingest_delay_ms_p50', 'nan')),
                                              float(v.get('ingest_delay_ms_p99', 'nan')))
                    if time.monotonic() < end:
                        minutes.append(Minute(minute.index + 1))
                if not run.proc.alive():
                    raise RuntimeError('the node died:\n' + run.proc.output()[-3000:])
            final = proc_sample(pid)
            return {'minutes': minutes, 'warm': warm or final, 'final': final,
                    'bytes_per_frame': streamer.bytes_per_frame}
        finally:
            if streamer is not None:
                streamer.stop()
            run.close()


def report(args: argparse.Namespace, result: Dict[str, Any]) -> Dict[str, Any]:
    """Print the per-minute table and the verdicts; return them as a dict."""
    minutes: List[Minute] = result['minutes']
    mode = 'raw rgb8 720p at 15 fps' if args.raw else 'JPEG 720p at 30 fps'
    print(f'\n### Soak: 4 cameras, {mode}, backend {args.backend}, {args.minutes:g} min '
          f'({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})\n')
    print('| min | machine load | RSS MB | threads | fds | node CPU s | delivered/published '
          '| plans | outcomes | plan ms p50/p95 | ingest ms p50/p99 (cam0) |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    for m in minutes:
        s = m.samples[-1] if m.samples else {}
        pub, got = sum(m.published.values()), sum(m.delivered.values())
        outcomes = ', '.join(f'{k} {v}' for k, v in sorted(m.outcomes.items()))
        p50, p99 = m.ingest.get('cam0', (float('nan'),) * 2)
        load = np.mean([x['load'] for x in m.samples]) if m.samples else float('nan')
        print(f'| {m.index + 1} | {load:.1f} | {s.get("rss_mb", float("nan")):.1f} | '
              f'{s.get("threads", 0):.0f} | {s.get("fds", 0):.0f} | '
              f'{s.get("cpu_s", 0):.0f} | {got}/{pub} | {len(m.plan_ms)} | {outcomes} | '
              f'{_pct(m.plan_ms, 50):.0f}/{_pct(m.plan_ms, 95):.0f} | {p50:.1f}/{p99:.1f} |')
    warm, final = result['warm'], result['final']
    growth = final['rss_mb'] - warm['rss_mb']
    samples = [s for m in minutes for s in m.samples if s['t'] >= args.warmup_s]
    slope = float('nan')
    if len(samples) >= 3:
        t = np.array([s['t'] for s in samples]) / 60.0
        slope = float(np.polyfit(t, [s['rss_mb'] for s in samples], 1)[0])
    full = [m for m in minutes if m.plan_ms]
    base = full[1] if len(full) > 2 else (full[0] if full else None)
    last = full[-1] if full else None
    lat_ratio = (_pct(last.plan_ms, 50) / _pct(base.plan_ms, 50)) if base and last \
        else float('nan')
    ingest_base = base.ingest.get('cam0', (float('nan'),) * 2)[1] if base else float('nan')
    ingest_last = last.ingest.get('cam0', (float('nan'),) * 2)[1] if last else float('nan')
    published = sum(sum(m.published.values()) for m in minutes)
    delivered = sum(sum(m.delivered.values()) for m in minutes)
    verdict = {
        'rss_warm_mb': warm['rss_mb'], 'rss_end_mb': final['rss_mb'], 'rss_growth_mb': growth,
        'rss_slope_mb_per_min': slope, 'threads_warm': warm['threads'],
        'threads_end': final['threads'], 'fds_warm': warm['fds'], 'fds_end': final['fds'],
        'plans': sum(len(m.plan_ms) for m in minutes),
        'plan_p50_ratio_last_vs_base': lat_ratio,
        'ingest_p99_ms_base': ingest_base, 'ingest_p99_ms_last': ingest_last,
        'frames_published': published, 'frames_delivered': delivered,
        'delivered_share': delivered / published if published else float('nan'),
        'bytes_per_frame': result['bytes_per_frame'],
    }
    first = minutes[0].samples[-1]['rss_mb'] if minutes[0].samples else float('nan')
    peak = max((x['rss_mb'] for m in minutes for x in m.samples), default=float('nan'))
    verdict.update(rss_minute1_end_mb=first, rss_peak_mb=peak)
    print(f'\nRSS {warm["rss_mb"]:.1f} MB after the {args.warmup_s:g} s warm-up -> '
          f'{final["rss_mb"]:.1f} MB at the end: growth {growth:+.1f} MB (target < 50 MB: '
          f'{"met" if growth < 50 else "NOT met"}), slope {slope:+.2f} MB/min; threads '
          f'{warm["threads"]} -> {final["threads"]}, fds {warm["fds"]} -> {final["fds"]}')
    print(f'RSS at the end of minute 1 {first:.1f} MB -> end {final["rss_mb"]:.1f} MB '
          f'({final["rss_mb"] - first:+.1f} MB); peak {peak:.1f} MB')
    print(f'plan latency p50, last minute vs baseline minute: {lat_ratio:.2f}x '
          f'({"stable" if lat_ratio < 1.5 else "NOT stable"}); ingest p99 cam0 '
          f'{ingest_base:.1f} -> {ingest_last:.1f} ms')
    print(f'frames delivered {delivered} of {published} published '
          f'({100.0 * verdict["delivered_share"]:.2f} %), {result["bytes_per_frame"]} bytes '
          'per frame')
    return verdict


def main() -> int:
    """Parse options, soak, report."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--minutes', type=float, default=10.0)
    parser.add_argument('--raw', action='store_true', help='raw rgb8 at 15 fps')
    parser.add_argument('--backend', choices=('tiny', 'instant'), default='tiny')
    parser.add_argument('--reliable', action='store_true', help='reliable camera QoS')
    parser.add_argument('--shm-profile', action='store_true',
                        help='Fast DDS profile with a 64 MiB shared-memory segment')
    parser.add_argument('--sample-s', type=float, default=10.0)
    parser.add_argument('--warmup-s', type=float, default=30.0)
    parser.add_argument('--json', type=Path, default=None, help='write the verdicts here')
    args = parser.parse_args()
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    profiles = tempfile.TemporaryDirectory()
    if args.shm_profile:
        from bench_node import write_shm_profile
        os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = str(
            write_shm_profile(Path(profiles.name) / 'shm.xml'))
    result = soak(args)
    verdict = report(args, result)
    if args.json is not None:
        args.json.write_text(json.dumps(verdict, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
