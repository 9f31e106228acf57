"""Cost of camera ingest (decode + resize + buffer push) against bare OpenCV calls.

Run: ``python bench/bench_ingest.py [--repeat N] [--threads N]``. Prints a markdown table of
median and p95 milliseconds per message and the ratio of medians to the baseline measured
in the same run:

- 1280x720 ``rgb8`` Image (an rclpy message, ``data`` an ``array.array`` as subscriptions
  deliver it) through ``FrameIngest.image`` + ``FrameBuffer.push``, against
  ``np.frombuffer`` + ``cv2.resize(INTER_AREA)`` to the same 576x320;
- a 720p JPEG CompressedImage through ``FrameIngest.compressed`` + push, against
  ``cv2.imdecode`` + ``cv2.resize(INTER_AREA)``;
- for reference, ``bgr8`` with row padding, ``exact_area=True``, and depth (16UC1 Image,
  32FC1 compressedDepth) into ``DepthFrame``.

Why: camera callbacks run ingest on the executor for every message (30 Hz per camera), so
it must stay far below a frame period; the target is under 2 ms median for 720p rgb8.
"""

import argparse
import statistics
import struct
import time
from typing import Any, Callable, List, Tuple

import cv2
import numpy as np

from cosmos_planner.frames.buffer import FrameBuffer
from cosmos_planner.frames.ingest import FrameIngest

WIDTH, HEIGHT = 1280, 720
TARGET = (576, 320)


def _scene() -> np.ndarray:
    rng = np.random.default_rng(0)
    noise = (rng.random((HEIGHT, WIDTH, 3)) * 255).astype(np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 3)


def _messages(rgb: np.ndarray) -> Tuple[Any, Any, Any, Any, Any]:
    """Build the rclpy messages (as subscriptions deliver them) for every input."""
    from sensor_msgs.msg import CompressedImage, Image
    raw = Image(height=HEIGHT, width=WIDTH, encoding='rgb8', step=WIDTH * 3)
    raw.data = rgb.tobytes()
    padded_step = WIDTH * 3 + 64
    padded = np.zeros((HEIGHT, padded_step), np.uint8)
    padded[:, :WIDTH * 3] = rgb[:, :, ::-1].reshape(HEIGHT, -1)
    bgr = Image(height=HEIGHT, width=WIDTH, encoding='bgr8', step=padded_step)
    bgr.data = padded.tobytes()
    ok, jpeg_bytes = cv2.imencode('.jpg', rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    jpeg = CompressedImage(format='rgb8; jpeg compressed bgr8')
    jpeg.data = jpeg_bytes.tobytes()
    mm = np.random.default_rng(1).integers(300, 4000, (HEIGHT, WIDTH)).astype(np.uint16)
    depth = Image(height=HEIGHT, width=WIDTH, encoding='16UC1', step=WIDTH * 2)
    depth.data = mm.tobytes()
    metres = cv2.GaussianBlur(mm.astype(np.float32) / 1000.0, (0, 0), 5)
    quant_a = np.float32(100.0 * 101.0)
    quant_b = np.float32(1.0 - quant_a / 10.0)
    inverse = (quant_a / metres + quant_b).astype(np.uint16)
    ok, png = cv2.imencode('.png', inverse)
    packed = CompressedImage(format='32FC1; compressedDepth png')
    packed.data = struct.pack('<iff', 0, quant_a, quant_b) + png.tobytes()
    return raw, bgr, jpeg, depth, packed


def _times_ms(fn: Callable[[], object], repeat: int) -> List[float]:
    for _ in range(max(5, repeat // 20)):
        fn()
    samples = []
    for _ in range(repeat):
        tick = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - tick) * 1e3)
    return samples


def _p95(samples: List[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=200, help='timed calls per row')
    parser.add_argument('--threads', type=int, default=0,
                        help='cv2.setNumThreads value (0: leave OpenCV default)')
    args = parser.parse_args()
    if args.threads:
        cv2.setNumThreads(args.threads)
    raw, bgr, jpeg, depth, packed = _messages(_scene())
    ingest = FrameIngest()
    exact = FrameIngest(exact_area=True)
    buffer = FrameBuffer(max_frames=8, window_s=4.0, fps=0)   # fps 0: every push adds
    clock = iter(range(1, 10 ** 9))

    def push(make: Callable[[int], Any]) -> Callable[[], object]:
        return lambda: buffer.push(make(next(clock) * 1_000_000))

    def bare_raw() -> object:
        pixels = np.frombuffer(raw.data, np.uint8).reshape(HEIGHT, WIDTH, 3)
        return cv2.resize(pixels, TARGET, interpolation=cv2.INTER_AREA)

    def bare_jpeg() -> object:
        pixels = cv2.imdecode(np.frombuffer(jpeg.data, np.uint8), cv2.IMREAD_COLOR)
        return cv2.resize(pixels, TARGET, interpolation=cv2.INTER_AREA)

    rows = [
        ('720p rgb8: np.frombuffer + cv2.resize AREA', bare_raw, None),
        ('720p rgb8: FrameIngest.image + push', push(lambda s: ingest.image(raw, 'c', s)),
         'raw'),
        ('720p rgb8: exact_area=True + push',
         push(lambda s: exact.image(raw, 'c', s)), 'raw'),
        ('720p bgr8 padded step: FrameIngest.image + push',
         push(lambda s: ingest.image(bgr, 'c', s)), 'raw'),
        ('720p JPEG: cv2.imdecode + cv2.resize AREA', bare_jpeg, None),
        ('720p JPEG: FrameIngest.compressed + push',
         push(lambda s: ingest.compressed(jpeg, 'c', s)), 'jpeg'),
        ('720p JPEG: exact_area=True + push',
         push(lambda s: exact.compressed(jpeg, 'c', s)), 'jpeg'),
        ('720p 16UC1 depth Image: FrameIngest.depth', lambda: ingest.depth(depth, 'c', 0),
         None),
        ('720p 32FC1 compressedDepth: FrameIngest.depth',
         lambda: ingest.depth(packed, 'c', 0), None),
    ]
    baselines = {'raw': rows[0][0], 'jpeg': rows[4][0]}
    medians = {}
    print(f'cv2 {cv2.__version__}, threads {cv2.getNumThreads()}, numpy {np.__version__}, '
          f'{args.repeat} calls per row; JPEG {len(jpeg.data)} bytes\n')
    print('| case | median ms | p95 ms | ratio to baseline |')
    print('|---|---:|---:|---:|')
    for name, fn, base in rows:
        samples = _times_ms(fn, args.repeat)
        medians[name] = statistics.median(samples)
        ratio = f'{medians[name] / medians[baselines[base]]:.2f}' if base else '(baseline)'
        if base is None and name not in baselines.values():
            ratio = '-'
        print(f'| {name} | {medians[name]:.3f} | {_p95(samples):.3f} | {ratio} |')


if __name__ == '__main__':
    main()
