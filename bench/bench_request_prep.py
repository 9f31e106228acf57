"""Request preparation cost: an 8-frame clip to Qwen3-VL model inputs (template + processor).

Run: ``python bench/bench_request_prep.py [--model DIR] [--threads N] [--runs N]``. Uses the
tiny checkpoint's processor by default (the same processor classes and settings as
Cosmos-Reason2: preparation does not depend on the weights), or a real checkpoint folder.

Rows (median and 90th percentile over ``--runs``, ratio to the baseline in the same run):

- baseline: raw 1280x720 frames, the processor resizing them to the same pixel budget as
  ingest (``size`` per clip = frames x 448*448);
- ours: frames resized once at ingest (``frames.resize``, 576x320), then the chat template
  and the processor (``backends.local.inputs.prepare_inputs``, real fps, no frame sampling);
- raw 720p with the processor's defaults, for the token count a clip costs without ingest
  resizing;
- the ingest resize of the 8 frames, which in the node happens as frames arrive, not when a
  request is made.

Target: ours under 30 ms on the development machine (2 cores).
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, List, Tuple

import numpy as np

FRAMES = 8
NATIVE = (1280, 720)
BUDGET = 448 * 448
TASK = 'pick up the red cube and put it in the basket'


def _frames(seed: int = 0) -> List[np.ndarray]:
    """Camera-like 720p frames: smooth gradients, a few blocks, mild noise, moving a little."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:NATIVE[1], 0:NATIVE[0]]
    base = np.stack([xs * 255 // NATIVE[0], ys * 255 // NATIVE[1],
                     (xs + ys) * 255 // sum(NATIVE)], axis=-1).astype(np.int16)
    frames = []
    for i in range(FRAMES):
        image = base.copy()
        image[200:400, 300 + 10 * i:500 + 10 * i] = (200, 30, 30)
        image += rng.integers(-6, 7, image.shape, dtype=np.int16)
        frames.append(np.clip(image, 0, 255).astype(np.uint8))
    return frames


def _timed(func: Callable[[], object], runs: int) -> Tuple[float, float, object]:
    result = func()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = func()
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))], result


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model', type=Path, default=None,
                        help='checkpoint folder (default: a freshly built tiny checkpoint)')
    parser.add_argument('--threads', type=int, default=1, help='torch CPU threads')
    parser.add_argument('--runs', type=int, default=30)
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoProcessor

    from cosmos_planner.frames.types import Clip, Frame
    from cosmos_planner.frames.resize import fit_size, resize_image
    from cosmos_planner.backends.local.inputs import prepare_inputs, render_prompt
    from cosmos_planner.model.prompts import build_request
    from cosmos_planner.backends.local.tiny_checkpoint import build_tiny_checkpoint

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or build_tiny_checkpoint(Path(tmp) / 'tiny')
        processor = AutoProcessor.from_pretrained(str(model))
        raw = _frames()
        size = fit_size(*NATIVE, max_pixels=BUDGET)

        def clip_of(images: List[np.ndarray]) -> Clip:
            return Clip('front', tuple(
                Frame(camera='front', stamp_ns=i * 250_000_000, image=img, native_size=NATIVE)
                for i, img in enumerate(images)))

        resized = [resize_image(img, size) for img in raw]
        ours_request = build_request('trajectory', clip_of(resized), TASK)
        raw_request = build_request('trajectory', clip_of(raw), TASK)
        metadata = [{'total_num_frames': FRAMES, 'fps': 4.0,
                     'frames_indices': list(range(FRAMES))}]

        def baseline():
            return processor(text=[render_prompt(processor, raw_request)],
                             videos=[np.stack(raw)], video_metadata=metadata,
                             do_sample_frames=False, cap_pixels_per_frame=True,
                             size={'shortest_edge': 4096, 'longest_edge': FRAMES * BUDGET},
                             return_tensors='pt')

        rows = [
            ('baseline: raw 720p, processor resizes to the budget', baseline),
            ('ours: ingest-resized 576x320, template + processor',
             lambda: prepare_inputs(processor, ours_request)),
            ('raw 720p, processor defaults (no budget)',
             lambda: prepare_inputs(processor, raw_request)),
            ('ingest resize of the 8 frames (at arrival)',
             lambda: [resize_image(img, size) for img in raw]),
        ]
        results = [(name, *_timed(func, args.runs)) for name, func in rows]
    base = results[0][1]
    print(f'{FRAMES} frames of {NATIVE[0]}x{NATIVE[1]}, budget {BUDGET} px/frame, '
          f'torch threads {args.threads}, {args.runs} runs, processor of {model}\n')
    print('| case | input tokens | median ms | p90 ms | vs baseline |')
    print('|---|---:|---:|---:|---:|')
    for name, median, p90, out in results:
        tokens = int(out['input_ids'].shape[1]) if isinstance(out, dict) or hasattr(
            out, 'keys') else '-'
        print(f'| {name} | {tokens} | {median:.1f} | {p90:.1f} | {median / base:.2f}x |')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
