"""Cost of the stages after the model: ground, time, gate, against parsing the same answer.

Run: ``python bench/bench_grounding.py [--repeat N]``. Prints a markdown table of the
median time per call and its ratio to ``parse_answer`` on the same answer (the baseline
measured in the same run), for a 16-point labelled answer on a 640x400 distorted camera.
Why: grounding runs on the planning worker between generation and publishing; this shows
what it adds to a plan's latency (about a millisecond here, a few times the parse, against
hundreds of milliseconds for generation), so it needs no cache or vectorised depth lookup.
"""

import argparse
import json
import statistics
import time
from typing import Callable, List, Tuple

import cv2
import numpy as np

from cosmos_planner.geometry.camera_model import CameraModel
from cosmos_planner.frames.types import DepthFrame
from cosmos_planner.geometry.grounding import GroundingConfig, Grounder
from cosmos_planner.model.parser import parse_answer
from cosmos_planner.geometry.safety import SafetyConfig, SafetyGate
from cosmos_planner.geometry.timing import time_waypoints, TimingConfig

W, H = 640, 400
K = np.array([[520.0, 0.0, 300.5], [0.0, 480.0, 215.25], [0.0, 0.0, 1.0]])
D = [-0.28, 0.09, 0.0012, -0.0017, -0.012]
N_POINTS = 16


def _scene() -> Tuple[str, CameraModel, DepthFrame]:
    cam = CameraModel(W, H, K.reshape(-1), D, 'plumb_bob', 'cam')
    rng = np.random.default_rng(0)
    z = rng.uniform(0.8, 1.0, N_POINTS)
    pts = np.column_stack([rng.uniform(-0.3, 0.3, N_POINTS) * z,
                           rng.uniform(-0.2, 0.2, N_POINTS) * z, z])
    px, _ = cv2.projectPoints(pts.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K, np.array(D))
    model = (px.reshape(-1, 2) + 0.5) / [W, H] * 1000.0
    gripper = [None] * N_POINTS
    gripper[3], gripper[12] = 'close', 'open'
    traj = [{'point_2d': [round(x, 2), round(y, 2)], 'label': 'gripper trajectory',
             **({'gripper': g} if g else {})} for (x, y), g in zip(model, gripper)]
    text = json.dumps({'next_action': 'pick', 'steps': ['a', 'b'], 'trajectory': traj})
    depth = DepthFrame('cam', 0, np.full((H, W), 0.9, dtype=np.float32), 'cam')
    return text, cam, depth


def _median_us(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm up
    samples: List[float] = []
    for _ in range(repeat):
        tick = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - tick) * 1e6)
    return statistics.median(samples)


def main() -> None:
    """Measure and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--repeat', type=int, default=200)
    args = ap.parse_args()
    text, cam, depth = _scene()
    answer = parse_answer(text, (W, H))
    plane = Grounder(GroundingConfig(mode='plane', plane=(0, 0, 1, 0)))
    by_depth = Grounder(GroundingConfig(mode='depth', target_frame=''))
    grounded = plane.ground(answer.points_px, answer.points_model, answer.gripper,
                            answer.labels, cam)
    timing, safety = TimingConfig(), SafetyConfig(workspace_min=(-5, -5, -5),
                                                  workspace_max=(5, 5, 5), max_step_m=5.0)
    gate = SafetyGate(safety)

    def timed() -> object:
        return time_waypoints('world', 0, grounded.positions, grounded.gripper,
                              grounded.orientation_xyzw, timing, safety.max_velocity_mps)

    traj = timed()

    def after_model() -> None:
        g = plane.ground(answer.points_px, answer.points_model, answer.gripper,
                         answer.labels, cam)
        t = time_waypoints('world', 0, g.positions, g.gripper, g.orientation_xyzw, timing,
                           safety.max_velocity_mps)
        gate.check(t)

    rows = [
        ('parse_answer (baseline)', lambda: parse_answer(text, (W, H))),
        ('ground, plane', lambda: plane.ground(answer.points_px, answer.points_model,
                                               answer.gripper, answer.labels, cam)),
        ('ground, depth', lambda: by_depth.ground(answer.points_px, answer.points_model,
                                                  answer.gripper, answer.labels, cam,
                                                  depth, 0)),
        ('time_waypoints', timed),
        ('safety gate', lambda: gate.check(traj)),
        ('ground + time + gate', after_model),
    ]
    results = [(name, _median_us(fn, args.repeat)) for name, fn in rows]
    base = results[0][1]
    print(f'{N_POINTS}-point labelled answer, 640x400 plumb_bob camera, '
          f'median of {args.repeat} calls\n')
    print('| stage | median (us) | ratio to parse |')
    print('|---|---:|---:|')
    for name, us in results:
        print(f'| {name} | {us:.0f} | {us / base:.2f} |')


if __name__ == '__main__':
    main()
