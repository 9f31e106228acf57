"""Cost of asking a model server: client-side work per request, and clients one server serves.

Run: ``python bench/bench_remote.py [--url http://host:8000/v1] [--clients 1,2,4,8]``.
Without ``--url`` it starts the vLLM CPU server from ``.venv-vllm`` on the tiny checkpoint
(and stops it at the end); ``--client-only`` skips the server part.

1. Client side, for an 8-frame 448x448 clip: encoding it as one MP4 vs eight JPEGs (time and
   bytes; baseline: the JPEGs), building the whole request body, and parsing an answer.
   These run on the robot's planning worker; the table shows they are small next to the
   server time.
2. Server: mean latency of one request at the client next to the server's own end-to-end
   time (vLLM's ``/metrics``), and requests/s with 1, 2, 4, 8 concurrent planner clients
   (each its own backend, as separate robots would be; baseline: 1 client). On this 2-core
   CPU machine with a random tiny model this measures the serving path, not model speed.
"""

import argparse
import dataclasses
import json
import re
import statistics
import sys
import threading
import time
import urllib.request
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from cosmos_planner.backends.openai import media as media_encode
from cosmos_planner.backends.openai.client import OpenAICompatBackend
from cosmos_planner.backends.openai.config import OpenAICompatConfig
from cosmos_planner.backends.openai.payload import build_payload
from cosmos_planner.model.response_schemas import DecodingLimits, response_schema
from cosmos_planner.frames.types import Clip, Frame
from cosmos_planner.model.parser import parse_answer
from cosmos_planner.model.prompts import build_request

NATIVE = (1280, 720)
ANSWER = json.dumps({'next_action': 'pick up the red cube', 'steps': ['reach', 'grasp'],
                     'trajectory': [{'point_2d': [500 + i * 10, 600 - i * 20],
                                     'label': 'gripper trajectory'} for i in range(8)]})
SHORT_SCHEMA = response_schema('plan', DecodingLimits(
    min_points=2, max_points=3, max_steps=1, max_text_chars=12, allow_gripper=False))


def make_clip(n: int, size: int, fps: float = 4.0) -> Clip:
    """Make a moving scene with gradients and light sensor-like noise (a camera-ish image)."""
    yy, xx = np.mgrid[0:size, 0:size]
    frames = []
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 12, (size, size, 3), dtype=np.uint8)
    for i in range(n):
        image = np.zeros((size, size, 3), np.uint8)
        image[..., 0] = (xx * 255 // size).astype(np.uint8)
        image[..., 1] = (yy * 255 // size).astype(np.uint8)
        image += texture
        x0 = size // 8 + i * size // 32
        image[size // 3:size // 2, x0:x0 + size // 6] = (230, 30, 30)
        frames.append(Frame('cam', int(round(i * 1e9 / fps)), image, NATIVE))
    return Clip('cam', tuple(frames))


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm up (imports, codec init)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def client_side(repeat: int) -> Dict[str, float]:
    clip = make_clip(8, 448)
    request = build_request('plan', clip, 'pick up the red cube')
    video = media_encode.clip_to_video(clip)
    jpegs = media_encode.clip_to_images(clip)
    rows: List[Tuple[str, float, Optional[int]]] = [
        ('encode 8 frames as JPEG (baseline)', median_ms(
            lambda: media_encode.clip_to_images(clip), repeat),
         sum(len(j.payload) for j in jpegs)),
        ('encode 8 frames as one MP4', median_ms(
            lambda: media_encode.clip_to_video(clip), repeat), len(video.payload)),
        ('base64 data URL of the MP4', median_ms(lambda: video.data_url, repeat), None),
        ('build request body, images', median_ms(
            lambda: build_payload(request, OpenAICompatConfig(media='images'), 'm'), repeat),
         None),
        ('build request body, video', median_ms(
            lambda: build_payload(request, OpenAICompatConfig(media='video'), 'm'), repeat),
         None),
        ('parse an 8-point plan answer', median_ms(
            lambda: parse_answer(ANSWER, NATIVE), repeat), None),
    ]
    base = rows[0][1]
    print('\n### Client side per request (8 frames, 448x448; median of '
          f'{repeat})\n')
    print('| step | ms | vs JPEG encode | bytes |')
    print('|---|---:|---:|---:|')
    for name, ms, size in rows:
        print(f'| {name} | {ms:.2f} | {ms / base:.2f}x | {size if size else ""} |')
    return {name: ms for name, ms, _ in rows}


def metric(base_url: str, name: str) -> float:
    root = base_url[:-3] if base_url.endswith('/v1') else base_url
    try:
        with urllib.request.urlopen(f'{root}/metrics', timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return float('nan')
    values = re.findall(rf'^{re.escape(name)}(?:{{[^}}]*}})? ([0-9.e+-]+)$', text, re.M)
    return sum(float(v) for v in values) if values else float('nan')


def bench_request(clip: Clip):
    request = build_request('plan', clip, 'pick up the red cube')
    return dataclasses.replace(request, response_schema=SHORT_SCHEMA, sampling=dataclasses.replace(
        request.sampling, max_tokens=200))


def run_clients(url: str, model: str, n_clients: int, per_client: int, clip: Clip,
                media: str) -> Dict[str, float]:
    request = bench_request(clip)
    backends = [OpenAICompatBackend(url, model, media=media, max_retries=0, timeout_s=600)
                for _ in range(n_clients)]
    latencies: List[float] = []
    client_ms: List[float] = []
    tokens: List[int] = []
    errors: List[str] = []
    lock = threading.Lock()

    def client(backend: OpenAICompatBackend) -> None:
        for _ in range(per_client):
            t0 = time.perf_counter()
            try:
                completion = backend.generate(request)
                parse_t0 = time.perf_counter()
                parse_answer(completion.text, NATIVE, reasoning=completion.reasoning)
                parse_ms = (time.perf_counter() - parse_t0) * 1e3
            except Exception as exc:  # noqa: BLE001 - counted and reported
                with lock:
                    errors.append(f'{type(exc).__name__}: {exc}'[:120])
                continue
            with lock:
                latencies.append((time.perf_counter() - t0) * 1e3)
                client_ms.append(completion.meta['encode_ms'] + parse_ms)
                tokens.append(completion.completion_tokens)

    e2e_sum0 = metric(url, 'vllm:e2e_request_latency_seconds_sum')
    e2e_n0 = metric(url, 'vllm:e2e_request_latency_seconds_count')
    threads = [threading.Thread(target=client, args=(b,)) for b in backends]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    e2e_n = metric(url, 'vllm:e2e_request_latency_seconds_count') - e2e_n0
    e2e_sum = metric(url, 'vllm:e2e_request_latency_seconds_sum') - e2e_sum0
    return {
        'clients': n_clients, 'done': len(latencies), 'errors': len(errors),
        'rps': len(latencies) / wall, 'wall_s': wall,
        'latency_ms': statistics.mean(latencies) if latencies else float('nan'),
        'client_ms': statistics.mean(client_ms) if client_ms else float('nan'),
        'server_ms': e2e_sum / e2e_n * 1e3 if e2e_n else float('nan'),
        'tokens': statistics.mean(tokens) if tokens else float('nan'),
        'first_error': errors[0] if errors else '',
    }


def server_side(url: str, model: str, clients: List[int], per_client: int, frames: int,
                size: int, media: str) -> None:
    clip = make_clip(frames, size)
    print(f'\n### One server, N planner clients ({frames} frames {size}x{size} as {media}, '
          f'plan answer of 2-3 points, {per_client} requests per client)\n')
    print('| clients | requests | errors | req/s | vs 1 client | mean latency ms | '
          'server e2e ms | client-side ms | tokens/answer |')
    print('|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    base = None
    for n in clients:
        r = run_clients(url, model, n, per_client, clip, media)
        base = base or r['rps']
        print(f"| {n} | {r['done']} | {r['errors']} | {r['rps']:.3f} | "
              f"{r['rps'] / base if base else float('nan'):.2f}x | {r['latency_ms']:.0f} | "
              f"{r['server_ms']:.0f} | {r['client_ms']:.1f} | {r['tokens']:.0f} |")
        if r['first_error']:
            print(f"\n(first error: {r['first_error']})\n")
        sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--url', help='OpenAI base URL of a running server')
    parser.add_argument('--model', default=None, help='served model name (default: the only)')
    parser.add_argument('--clients', default='1,2,4,8')
    parser.add_argument('--per-client', type=int, default=2, help='requests per client')
    parser.add_argument('--frames', type=int, default=8)
    parser.add_argument('--size', type=int, default=448)
    parser.add_argument('--media', choices=('video', 'images'), default='video')
    parser.add_argument('--repeat', type=int, default=20, help='client-side repetitions')
    parser.add_argument('--client-only', action='store_true')
    args = parser.parse_args()
    client_side(args.repeat)
    if args.client_only:
        return 0
    clients = [int(c) for c in args.clients.split(',')]
    if args.url:
        backend = OpenAICompatBackend(args.url, args.model)
        server_side(args.url, backend.model, clients, args.per_client, args.frames, args.size,
                    args.media)
        return 0
    from cosmos_planner.backends.local.tiny_checkpoint import ensure_tiny_checkpoint
    from cosmos_planner.backends.openai.vllm_server import (find_vllm_python, VLLMServer,
                                                            VLLMServerConfig)

    if find_vllm_python() is None:
        print('\n(no .venv-vllm: run scripts/setup_vllm.sh, or pass --url)')
        return 0
    cfg = VLLMServerConfig(model=str(ensure_tiny_checkpoint()), served_model_name='tiny',
                           max_num_seqs=max(clients))
    with VLLMServer(cfg) as server:
        print(f'\nvLLM CPU server (tiny checkpoint) started in {server.start_s:.0f} s, '
              f'{server.rss_mib():.0f} MiB RSS (all processes)')
        server_side(server.url, 'tiny', clients, args.per_client, args.frames, args.size,
                    args.media)
        print(f'\nserver RSS after the run: {server.rss_mib():.0f} MiB')
    return 0


if __name__ == '__main__':
    sys.exit(main())
