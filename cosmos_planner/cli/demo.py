"""``cosmos-planner demo --out DIR``: one plan on a synthetic tabletop, end to end.

The smallest complete run of the product on any machine: a 1280x720 tabletop scene (a
table, a red cube, a basket, the gripper above them) drawn with OpenCV, the embedded default
backend (``backends.local.resolve.resolve_default_model()``: real Cosmos Reason 2 weights
if they are present offline, else the tiny random checkpoint, and then it says so plainly),
the planner with its parser and retries, and the outputs a user inspects:

- ``DIR/scene.png``: the input image;
- ``DIR/plan.json``: the validated ``PlanV1`` (only when the status is ok; never a failed one);
- ``DIR/annotated.png``: the scene with the trajectory, waypoints and next action drawn;
- ``DIR/summary.json``: backend, model, ``is_tiny``, status, error, attempts, stage timings.

The exit code is 0 when a valid plan came out, 1 otherwise (the summary says why).
"""

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Tuple

import cv2
import numpy as np

SCENE_SIZE = (1280, 720)
DEFAULT_TASK = 'Put the red cube in the basket'
CAMERA = 'demo_camera'


@dataclass(frozen=True)
class Scene:
    """The rendered image and where its objects are, in pixels (for checks and overlays)."""

    image: np.ndarray
    cube_px: Tuple[int, int]
    basket_px: Tuple[int, int]
    gripper_px: Tuple[int, int]


def render_scene(width: int = SCENE_SIZE[0], height: int = SCENE_SIZE[1]) -> Scene:
    """Draw the tabletop (RGB uint8, deterministic) as a camera looking down at a table."""
    img = np.zeros((height, width, 3), np.uint8)
    horizon = int(0.42 * height)
    # Wall: a soft vertical gradient, so the image is not flat colour.
    ramp = np.linspace(0.0, 1.0, horizon, dtype=np.float32)[:, None, None]
    img[:horizon] = (np.array([205, 212, 222]) * (1.0 - 0.25 * ramp)).astype(np.uint8)
    # Table top in perspective, with wood grain.
    table = np.array([[int(0.08 * width), horizon], [int(0.92 * width), horizon],
                      [width, height], [0, height]], np.int32)
    img[horizon:] = (70, 60, 55)
    wood = np.zeros_like(img)
    wood[:] = (168, 118, 70)
    for k in range(1, 12):
        y = horizon + int((height - horizon) * (k / 12.0) ** 1.3)
        cv2.line(wood, (0, y), (width, y), (152, 106, 62), 1 + k // 5, cv2.LINE_AA)
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [table], 255, cv2.LINE_AA)
    img[mask > 0] = wood[mask > 0]
    cv2.line(img, tuple(table[0]), tuple(table[1]), (120, 84, 50), 3, cv2.LINE_AA)
    cube = (int(0.32 * width), int(0.66 * height))
    basket = (int(0.70 * width), int(0.64 * height))
    gripper = (int(0.50 * width), int(0.24 * height))
    _draw_cube(img, cube, int(0.055 * width))
    _draw_basket(img, basket, int(0.11 * width), int(0.075 * height))
    _draw_gripper(img, gripper, int(0.03 * width))
    return Scene(image=img, cube_px=cube, basket_px=basket, gripper_px=gripper)


def _draw_cube(img: np.ndarray, centre: Tuple[int, int], size: int) -> None:
    x, y = centre
    half = size // 2
    depth = size // 3
    cv2.ellipse(img, (x + depth // 2, y + half + 4), (size, size // 5), 0, 0, 360,
                (120, 84, 52), -1, cv2.LINE_AA)
    front = np.array([[x - half, y - half], [x + half, y - half], [x + half, y + half],
                      [x - half, y + half]], np.int32)
    top = np.array([[x - half, y - half], [x - half + depth, y - half - depth],
                    [x + half + depth, y - half - depth], [x + half, y - half]], np.int32)
    side = np.array([[x + half, y - half], [x + half + depth, y - half - depth],
                     [x + half + depth, y + half - depth], [x + half, y + half]], np.int32)
    cv2.fillPoly(img, [front], (205, 32, 32), cv2.LINE_AA)
    cv2.fillPoly(img, [top], (240, 90, 85), cv2.LINE_AA)
    cv2.fillPoly(img, [side], (150, 20, 22), cv2.LINE_AA)
    for poly in (front, top, side):
        cv2.polylines(img, [poly], True, (90, 10, 10), 2, cv2.LINE_AA)


def _draw_basket(img: np.ndarray, centre: Tuple[int, int], rx: int, ry: int) -> None:
    x, y = centre
    body_h = int(1.6 * ry)
    cv2.ellipse(img, (x, y + body_h), (rx + 10, ry // 2), 0, 0, 360, (120, 84, 52), -1,
                cv2.LINE_AA)
    body = np.array([[x - rx, y], [x + rx, y], [x + int(0.8 * rx), y + body_h],
                     [x - int(0.8 * rx), y + body_h]], np.int32)
    cv2.fillPoly(img, [body], (176, 128, 62), cv2.LINE_AA)
    cv2.ellipse(img, (x, y + body_h), (int(0.8 * rx), ry // 2), 0, 0, 180, (176, 128, 62),
                -1, cv2.LINE_AA)
    for k in range(1, 5):  # weave
        yy = y + body_h * k // 5
        cv2.line(img, (x - rx + k * 4, yy), (x + rx - k * 4, yy), (130, 88, 40), 2,
                 cv2.LINE_AA)
    for k in range(-4, 5):
        cv2.line(img, (x + k * rx // 5, y), (x + int(0.8 * k * rx / 5), y + body_h),
                 (140, 96, 44), 2, cv2.LINE_AA)
    cv2.ellipse(img, (x, y), (rx, ry), 0, 0, 360, (92, 60, 30), -1, cv2.LINE_AA)
    cv2.ellipse(img, (x, y), (rx, ry), 0, 0, 360, (200, 150, 80), 6, cv2.LINE_AA)


def _draw_gripper(img: np.ndarray, tip: Tuple[int, int], width: int) -> None:
    x, y = tip
    cv2.rectangle(img, (x - width // 3, 0), (x + width // 3, y - width), (95, 98, 105), -1)
    cv2.rectangle(img, (x - width, y - width), (x + width, y - width // 2), (70, 72, 80), -1)
    for dx in (-width, width - width // 3):
        cv2.rectangle(img, (x + dx, y - width // 2), (x + dx + width // 3, y + width // 2),
                      (60, 62, 70), -1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cosmos-planner demo``."""
    from cosmos_planner.cli.plan import add_backend_arguments
    parser.add_argument('--out', type=Path, default=Path('runs/demo'),
                        help='output directory (default runs/demo)')
    parser.add_argument('--task', default=DEFAULT_TASK, help=f'default: "{DEFAULT_TASK}"')
    add_backend_arguments(parser, default_preset='plan')


def run(args: argparse.Namespace) -> int:
    """Render, plan, write the outputs, print where they are."""
    from cosmos_planner.pipeline.annotate import draw_answer, draw_plan
    from cosmos_planner.frames.types import Clip
    from cosmos_planner.frames.media import frame_from_rgb, write_image
    from cosmos_planner.cli.plan import failure_line, plan_to_v1, plan_with_args
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    scene = render_scene()
    scene_file = write_image(out / 'scene.png', scene.image)
    clip = Clip(camera=CAMERA, frames=(frame_from_rgb(scene.image, CAMERA, 0, CAMERA),))
    opened, result, tiny = plan_with_args(args, clip)
    notes = ['tiny random checkpoint: this plan is meaningless'] if tiny else []
    plan_file = out / 'plan.json'
    if plan_file.exists():
        plan_file.unlink()  # never leave an older run's plan beside a failed one
    if result.ok and result.answer is not None:
        plan = plan_to_v1(result, clip, args.task, task_id='demo', model=opened.model,
                          preset=args.preset)
        plan_file.write_text(plan.to_json(indent=2) + '\n', encoding='utf-8')
        annotated = draw_answer(scene.image, result.answer, notes)
    else:
        annotated = draw_plan(scene.image, [], None, None, notes + [failure_line(result)])
    annotated_file = write_image(out / 'annotated.png', annotated)
    summary: Dict[str, Any] = {
        'backend': opened.kind, 'model': opened.model, 'is_tiny': tiny,
        'status': result.status.value, 'error': result.error, 'attempts': result.attempts,
        'timings_ms': {k: round(v, 3) for k, v in result.timings_ms.items()},
        'task': args.task, 'preset': args.preset, 'reasoning': args.reasoning,
        'image_size': list(SCENE_SIZE),
        'next_action': result.answer.next_action if result.answer else None,
        'points': len(result.answer.points_px) if result.answer else 0,
        'files': {'scene': scene_file.name, 'annotated': annotated_file.name,
                  'plan': plan_file.name if result.ok else None},
    }
    if tiny:
        summary['note'] = ('made with the tiny random test checkpoint: the pipeline is real, '
                           'the plan is meaningless')
    summary_file = out / 'summary.json'
    summary_file.write_text(json.dumps(summary, indent=2) + '\n', encoding='utf-8')
    status = result.status.value + (' (tiny random checkpoint: meaningless plan)' if tiny
                                    else '')
    print(f'status:    {status}')
    if result.ok:
        print(f'plan:      {plan_file}')
    else:
        print(f'           {failure_line(result)}', file=sys.stderr)
    print(f'annotated: {annotated_file}')
    print(f'summary:   {summary_file}')
    return 0 if result.ok else 1
