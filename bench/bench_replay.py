"""Offline replay throughput with recorded answers: frames/s and speed against real time.

Rerun with ``python bench/bench_replay.py`` (``--help`` for sizes). What it does:

1. writes synthetic 30 fps 1280x720 scene bags: JPEG ``CompressedImage`` + camera_info + a
   task; the same plus 16UC1 depth at 30 fps (1.8 MB a frame); and, shorter, raw ``rgb8``
   ``Image`` + 16UC1 depth (4.6 MB a frame);
2. records answers once per bag with the tiny checkpoint (``--model-time zero``, replan
   every second), so the measured runs need no model;
3. replays each bag with the recorded answers and reports frames/s and the ratio of bag
   duration to wall time, for the replay as shipped (lazy decode) and for the baseline that
   decodes every frame like the node's callbacks (``--decode-all``), with and without the
   annotated MP4.

Target (issue 6): at least 20x real time for a 30 fps 720p camera. Prints a markdown table;
"loop s" is the replay loop (read, ingest, plan, write: what scales with the bag), "total s"
adds the one-off start-up (imports, typestore, backend), about 2 s here.
"""

import argparse
from pathlib import Path
import sys
import tempfile
import time
from typing import Dict, List

WIDE = {'ground.mode': 'depth', 'target.frame': '', 'heights.up': [0.0, 0.0, -1.0],
        'safety.workspace_min': [-5.0, -5.0, -5.0], 'safety.workspace_max': [5.0, 5.0, 5.0],
        'safety.max_step_m': 5.0}
#: Without depth, ground on the table plane (0.8 m in front of the top-down camera).
PLANE = dict(WIDE, **{'ground.mode': 'plane', 'ground.plane': [0.0, 0.0, 1.0, -0.8]})
TASK = 'put the red cube in the blue bowl'


def _scene(path: Path, seconds: float, image: str, depth: bool) -> None:
    from cosmos_planner.bag.scenes import SceneSpec, write_scene_bag

    write_scene_bag(path, SceneSpec(width=1280, height=720, fps=30.0, duration_s=seconds,
                                    image=image, depth='16UC1' if depth else None,
                                    tasks=((0.5, TASK),), frame_offset_s=0.01,
                                    latency_s=0.005))


def _replay(bag: Path, out: Path, depth: bool = True, **kw: object) -> Dict[str, float]:
    from cosmos_planner.bag.replay import replay_bag, ReplayOptions

    opts = dict(bag=bag, out=out, replan_period_s=1.0, params=WIDE if depth else PLANE,
                progress=False, force=True, model_time='zero')
    opts.update(kw)
    summary = replay_bag(ReplayOptions(**opts))
    return {'frames': summary.frames, 'wall_s': summary.loop_s, 'total_s': summary.wall_s,
            'fps': summary.frames_per_s, 'x_real_time': summary.realtime_factor,
            'plans': summary.plans, 'requests': summary.requests,
            'decoded': summary.decoded_frames, 'video_frames': summary.video_frames,
            'bag_s': summary.bag_duration_s}


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seconds', type=float, default=10.0, help='JPEG bag length')
    parser.add_argument('--raw-seconds', type=float, default=4.0,
                        help='raw rgb8 bag length (0: skip; 2.7 MB per frame)')
    parser.add_argument('--repeat', type=int, default=2, help='runs per case (best kept)')
    parser.add_argument('--workdir', type=Path, default=None)
    args = parser.parse_args(argv)

    import torch

    from cosmos_planner.backends.local.tiny_checkpoint import ensure_tiny_checkpoint

    torch.set_num_threads(1)
    work = args.workdir or Path(tempfile.mkdtemp(prefix='bench_replay_'))
    checkpoint = ensure_tiny_checkpoint()
    # (name, seconds, image kind, depth, recording): the JPEG bags share pixels, so answers
    bags = [('jpeg', args.seconds, 'compressed', False, 'jpeg'),
            ('jpeg+depth16', args.seconds, 'compressed', True, 'jpeg')]
    if args.raw_seconds > 0:
        bags.append(('rgb8+depth16', args.raw_seconds, 'raw', True, 'raw'))
    rows = []
    for name, seconds, image, depth, recording in bags:
        bag = work / f'{name}_bag'
        if not bag.exists():
            tick = time.perf_counter()
            _scene(bag, seconds, image, depth)
            print(f'wrote {name} bag ({seconds:g} s) in {time.perf_counter() - tick:.1f} s',
                  file=sys.stderr)
        answers = work / f'{recording}_answers.jsonl'
        if not answers.exists():
            rec = _replay(bag, work / f'{name}_record', depth, backend='local',
                          model=str(checkpoint), record=answers, video=False)
            print(f'recorded {rec["requests"]} answers with the tiny checkpoint',
                  file=sys.stderr)
        cases = [('lazy decode, no video', dict(video=False)),
                 ('lazy decode, MP4 (default 5 fps, 640 px)', dict(video=True)),
                 ('decode every frame (node callbacks), no video (baseline)',
                  dict(video=False, decode_all=True))]
        results = {}
        for label, kw in cases:
            best = None
            for i in range(args.repeat):
                res = _replay(bag, work / f'{name}_out', depth, responses=answers, **kw)
                if best is None or res['wall_s'] < best['wall_s']:
                    best = res
            results[label] = best
        base = results[cases[-1][0]]['wall_s']
        for label, res in results.items():
            rows.append((f'{name} 720p30', label, res, base / res['wall_s']))
    print('\n| bag | case | frames | decoded | plans | loop s | frames/s | x real time '
          '| speed-up vs baseline | total s (start-up incl.) |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    for bag_name, label, r, speedup in rows:
        print(f'| {bag_name} | {label} | {r["frames"]} | {r["decoded"]} | {r["plans"]} | '
              f'{r["wall_s"]:.2f} | {r["fps"]:.0f} | {r["x_real_time"]:.1f} | '
              f'{speedup:.2f} | {r["total_s"]:.2f} |')
    print(f'\n(work dir {work}; target: >= 20x real time for 30 fps 720p)')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
