"""Offline replay throughput with recorded answers: frames/s and speed against real time.

Rerun with ``python bench/bench_replay.py`` (``--help`` for sizes). What it does:

1. writes synthetic 30 fps 1280x720 scene bags: JPEG ``CompressedImage`` + camera_info + a
   task; the same plus 16UC1 depth at 30 fps (1.8 MB a frame); and, shorter, raw ``rgb8``
   ``Image`` + 16UC1 depth (4.6 MB a frame), once per storage (MCAP and sqlite3);
2. records answers once per bag with the tiny checkpoint (``--model-time zero``, replan
   every second), so the measured runs need no model;
3. replays each bag with the recorded answers and reports frames/s and the ratio of bag
   duration to wall time, for the replay as shipped (lazy decode) and for the baseline that
   decodes every frame like the node's callbacks (``--decode-all``), with and without the
   annotated MP4; raw bags also with ``--full-read`` (every payload read by ``rosbags``, the
   reading before issue 16);
4. for each raw bag, measures the disk in the same run: the bag's files are flushed and
   dropped from the page cache (``posix_fadvise(DONTNEED)``), then read sequentially in
   16 MiB blocks ("cold"), then again ("cached"); the replay's bytes read (``read_bytes`` of
   its summary) at the cold rate give the physical floor its loop time is compared with,
   and one replay runs right after a cache drop ("cold replay"); and reads every payload
   of the bag in log-time order, as ``cosmos-planner play`` does, with ``rosbags`` and
   through the index (cached, best of ``--repeat``).

Target (issue 6): at least 20x real time for a 30 fps 720p camera; issue 16: the same for raw
rgb8 + 16UC1 bags in both storages, or within 1.5x of the time to read the bytes the replay
must read at the measured disk rate. Prints markdown tables; "loop s" is the replay loop
(read, ingest, plan, write: what scales with the bag), "total s" adds the one-off start-up
(imports, typestore, backend), about 2 s here.
"""

import argparse
import os
from pathlib import Path
import sys
import tempfile
import time
from typing import Dict, List, Tuple

WIDE = {'ground.mode': 'depth', 'target.frame': '', 'heights.up': [0.0, 0.0, -1.0],
        'safety.workspace_min': [-5.0, -5.0, -5.0], 'safety.workspace_max': [5.0, 5.0, 5.0],
        'safety.max_step_m': 5.0}
#: Without depth, ground on the table plane (0.8 m in front of the top-down camera).
PLANE = dict(WIDE, **{'ground.mode': 'plane', 'ground.plane': [0.0, 0.0, 1.0, -0.8]})
TASK = 'put the red cube in the blue bowl'


def _scene(path: Path, seconds: float, image: str, depth: bool, storage: str) -> None:
    from cosmos_planner.bag.scenes import SceneSpec, write_scene_bag

    write_scene_bag(path, SceneSpec(width=1280, height=720, fps=30.0, duration_s=seconds,
                                    image=image, depth='16UC1' if depth else None,
                                    tasks=((0.5, TASK),), frame_offset_s=0.01,
                                    latency_s=0.005, storage=storage))


def _storage_files(bag: Path) -> List[Path]:
    return sorted(p for p in bag.iterdir() if p.suffix in ('.mcap', '.db3'))


def _drop_cache(bag: Path) -> None:
    """Flush the bag's files and drop them from the page cache (no root needed)."""
    for path in _storage_files(bag):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _sequential_read(bag: Path) -> Tuple[int, float]:
    """Read the bag's files in 16 MiB blocks: (bytes, seconds)."""
    block = bytearray(16 << 20)
    total, tick = 0, time.perf_counter()
    for path in _storage_files(bag):
        with open(path, 'rb', buffering=0) as f:
            while True:
                n = f.readinto(block)
                if not n:
                    break
                total += n
    return total, time.perf_counter() - tick


def _read_all(bag: Path, indexed: bool, repeat: int) -> float:
    """Seconds to read every payload in log-time order (the player's read path), best run."""
    from cosmos_planner.bag.reader import BagReader

    best = float('inf')
    for _ in range(repeat):
        tick = time.perf_counter()
        with BagReader(bag, indexed=indexed) as reader:
            for msg in reader.messages():
                msg.raw
        best = min(best, time.perf_counter() - tick)
    return best


def _disk(bag: Path) -> Dict[str, float]:
    """Sequential read rate of the bag's files, cold (after a cache drop) and cached."""
    _drop_cache(bag)
    size, cold_s = _sequential_read(bag)
    _, cached_s = _sequential_read(bag)
    return {'bytes': size, 'cold': size / cold_s, 'cached': size / cached_s}


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
            'bag_s': summary.bag_duration_s, 'read_bytes': summary.read_bytes}


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seconds', type=float, default=10.0, help='JPEG bag length')
    parser.add_argument('--raw-seconds', type=float, default=4.0,
                        help='raw rgb8 bag length (0: skip; 4.6 MB per frame with depth)')
    parser.add_argument('--raw-storages', default='mcap,sqlite3',
                        help='storages of the raw bags, comma-separated')
    parser.add_argument('--repeat', type=int, default=2, help='runs per case (best kept)')
    parser.add_argument('--workdir', type=Path, default=None)
    args = parser.parse_args(argv)

    import torch

    from cosmos_planner.backends.local.tiny_checkpoint import ensure_tiny_checkpoint

    torch.set_num_threads(1)
    work = args.workdir or Path(tempfile.mkdtemp(prefix='bench_replay_'))
    checkpoint = ensure_tiny_checkpoint()
    # (name, seconds, image kind, depth, recording): the JPEG bags share pixels, so answers
    bags = [('jpeg', args.seconds, 'compressed', False, 'jpeg', 'mcap'),
            ('jpeg+depth16', args.seconds, 'compressed', True, 'jpeg', 'mcap')]
    if args.raw_seconds > 0:
        bags += [(f'rgb8+depth16 {storage}', args.raw_seconds, 'raw', True, 'raw', storage)
                 for storage in args.raw_storages.split(',') if storage]
    rows = []
    disks = []
    for name, seconds, image, depth, recording, storage in bags:
        bag = work / f'{name.replace(" ", "_")}_bag'
        if not bag.exists():
            tick = time.perf_counter()
            _scene(bag, seconds, image, depth, storage)
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
        if image == 'raw':
            cases.insert(2, ('lazy decode, no video, --full-read (rosbags reads every '
                             'payload: before issue 16)', dict(video=False, full_read=True)))
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
        if image == 'raw':
            disk = _disk(bag)
            _drop_cache(bag)
            cold = _replay(bag, work / f'{name}_out', depth, responses=answers, video=False)
            play = (_read_all(bag, False, args.repeat), _read_all(bag, True, args.repeat))
            disks.append((name, disk, results[cases[0][0]], cold, play))
    print('\n| bag | case | frames | decoded | plans | loop s | frames/s | x real time '
          '| speed-up vs baseline | total s (start-up incl.) |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    for bag_name, label, r, speedup in rows:
        print(f'| {bag_name} | {label} | {r["frames"]} | {r["decoded"]} | {r["plans"]} | '
              f'{r["wall_s"]:.2f} | {r["fps"]:.0f} | {r["x_real_time"]:.1f} | '
              f'{speedup:.2f} | {r["total_s"]:.2f} |')
    if disks:
        print('\n| raw bag | bag MB | disk sequential read, cold / cached (MB/s) | replay '
              'reads MB | those at the cold rate (s) | loop s, cached / cold replay | ratio '
              'cached / cold | x real time, cached / cold |')
        print('|---|---|---|---|---|---|---|---|')
        for name, disk, warm, cold, _ in disks:
            floor = warm['read_bytes'] / disk['cold']
            print(f'| {name} 720p30 | {disk["bytes"] / 1e6:.0f} | {disk["cold"] / 1e6:.0f} / '
                  f'{disk["cached"] / 1e6:.0f} | {warm["read_bytes"] / 1e6:.1f} | {floor:.3f} '
                  f'| {warm["wall_s"]:.3f} / {cold["wall_s"]:.3f} | '
                  f'{warm["wall_s"] / floor:.1f} / {cold["wall_s"] / floor:.1f} | '
                  f'{warm["x_real_time"]:.1f} / {cold["x_real_time"]:.1f} |')
    if disks:
        print('\n| raw bag | read every payload in order (play): rosbags / index (s) | '
              'MB/s | speed-up |')
        print('|---|---|---|---|')
        for name, disk, _, _, (full, fast) in disks:
            print(f'| {name} 720p30 | {full:.3f} / {fast:.3f} | {disk["bytes"] / full / 1e6:.0f}'
                  f' / {disk["bytes"] / fast / 1e6:.0f} | {full / fast:.1f} |')
    print(f'\n(work dir {work}; target: >= 20x real time for 30 fps 720p)')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
