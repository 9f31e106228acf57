"""Tabletop simulator speed and the closed loop's plan-to-motion latency.

Run: ``python bench/bench_sim.py`` (options: ``--frames``, ``--episodes``, ``--no-loop``,
``--width``/``--height`` of the loop's camera, ``--delays``).

1. **Simulator throughput** at 640x480 (EGL software rendering, this machine's CPU): frames
   per second for RGB without shadows (the sim's setting), RGB + depth (what the sim node
   publishes per camera frame), and RGB with shadows as the baseline the ratio is taken
   against; plus physics alone as sim seconds per wall second.
2. **Plan-to-motion latency in sim time**: closed-loop episodes with the planner as its own
   ``planner_node`` process over DDS and the scripted expert (TEST ORACLE) answering after
   a configurable delay (an emulated model latency, wall seconds; ``--delays 0,0.5``). The
   latency is the sim time from the camera frame a plan was made from (its header stamp)
   to the controller starting to execute it; ``request -> motion`` is from the task or
   replan request to motion. Ratios are against the zero-delay run of the same session.

Numbers depend on the machine's load (2 shared cores on the development machine).
"""

import argparse
import json
import os
from pathlib import Path
import statistics
import sys
import tempfile
import time
from typing import Dict, List

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cosmos_planner.sim.config import load_sim_config  # noqa: E402
from cosmos_planner.sim.tabletop import TabletopSim  # noqa: E402


def _time_frames(sim: TabletopSim, frames: int, depth: bool) -> float:
    sim.render_rgb()  # warm-up (context, shaders)
    tick = time.perf_counter()
    for _ in range(frames):
        sim.step()
        sim.render_rgb()
        if depth:
            sim.render_depth()
    return frames / (time.perf_counter() - tick)


def bench_render(frames: int) -> List[Dict[str, float]]:
    rows = []
    for label, shadows, depth in (('RGB, shadows on (baseline)', True, False),
                                  ('RGB, shadows off', False, False),
                                  ('RGB + depth, shadows off', False, True)):
        cfg = load_sim_config(width=640, height=480, shadows=shadows)
        with TabletopSim(cfg, seed=0) as sim:
            fps = _time_frames(sim, frames, depth)
            sim.close()
        rows.append({'case': label, 'fps': fps, 'ms': 1000.0 / fps})
    cfg = load_sim_config()
    with TabletopSim(cfg, seed=0, render=False) as sim:
        tick = time.perf_counter()
        sim.step(1000)  # 10 s of sim time
        wall = time.perf_counter() - tick
    rows.append({'case': 'physics only (sim s per wall s)', 'fps': 10.0 / wall, 'ms': 0.0})
    return rows


def bench_loop(episodes: int, delays: List[float], width: int, height: int
               ) -> List[Dict[str, float]]:
    sys.path.insert(0, str(ROOT / 'test'))
    from ros_helpers import claim_domain_id

    from cosmos_planner.sim.episode import EpisodeRunner, RunnerConfig

    os.environ['ROS_DOMAIN_ID'] = str(claim_domain_id())
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    rows = []
    for delay in delays:
        sim_cfg = load_sim_config(width=width, height=height, real_time_factor=1.0,
                                  time_limit_s=25.0)
        out = Path(tempfile.mkdtemp(prefix='bench_sim_'))
        cfg = RunnerConfig(backend='expert', episodes=episodes, seed=0, out_dir=out,
                           planner_env={'COSMOS_PLANNER_EXPERT_DELAY_S': str(delay)})
        with EpisodeRunner(sim_cfg, cfg, log=lambda s: None) as runner:
            summary = runner.run()
        lines = [json.loads(x) for x in (out / 'episodes.jsonl').read_text().splitlines()]
        p2m = [v for x in lines for v in x['plan_to_motion_s']]
        r2m = [v for x in lines for v in x['request_to_motion_s']]
        lat = [v for x in lines for v in x['planner_latency_ms']]
        rows.append({'delay': delay, 'episodes': episodes,
                     'success': summary['success_rate'],
                     'p2m_mean': statistics.fmean(p2m) if p2m else float('nan'),
                     'p2m_max': max(p2m) if p2m else float('nan'),
                     'r2m_mean': statistics.fmean(r2m) if r2m else float('nan'),
                     'planner_ms': statistics.fmean(lat) if lat else float('nan'),
                     'sim_s': summary['sim_time_s_mean'],
                     'wall_s': statistics.fmean(x['wall_time_s'] for x in lines)})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--frames', type=int, default=60, help='frames per render case')
    parser.add_argument('--episodes', type=int, default=3, help='loop episodes per delay')
    parser.add_argument('--delays', default='0,0.5', help='emulated model latencies (s)')
    parser.add_argument('--width', type=int, default=640, help='loop camera width')
    parser.add_argument('--height', type=int, default=480, help='loop camera height')
    parser.add_argument('--no-loop', action='store_true', help='render/physics only')
    args = parser.parse_args()
    print(f'# bench_sim (load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs)\n')
    rows = bench_render(args.frames)
    base = rows[0]['fps']
    print('## Simulator at 640x480 (MuJoCo, EGL software rendering)\n')
    print('| case | frames/s | ms/frame | vs shadows on |')
    print('|---|---:|---:|---:|')
    for r in rows[:3]:
        print(f'| {r["case"]} | {r["fps"]:.1f} | {r["ms"]:.1f} | {r["fps"] / base:.2f}x |')
    print(f'| {rows[3]["case"]} | {rows[3]["fps"]:.0f} | - | - |')
    if args.no_loop:
        return 0
    delays = [float(d) for d in args.delays.split(',') if d.strip()]
    loop = bench_loop(args.episodes, delays, args.width, args.height)
    print(f'\n## Closed loop, planner_node over DDS, expert oracle, {args.width}x'
          f'{args.height} at 5 Hz, real-time factor 1\n')
    print('| model delay (s) | episodes | success | plan->motion mean (sim s) | max | '
          'request->motion mean (sim s) | planner ms | episode sim s | episode wall s '
          '| plan->motion vs delay 0 |')
    print('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    ref = loop[0]['p2m_mean'] if loop else float('nan')
    for r in loop:
        ratio = r['p2m_mean'] / ref if ref and np.isfinite(ref) else float('nan')
        print(f'| {r["delay"]:g} | {r["episodes"]} | {r["success"]:.0%} | '
              f'{r["p2m_mean"]:.3f} | {r["p2m_max"]:.3f} | {r["r2m_mean"]:.3f} | '
              f'{r["planner_ms"]:.0f} | {r["sim_s"]:.1f} | {r["wall_s"]:.1f} | '
              f'{ratio:.2f}x |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
