"""Draw a plan onto its camera image: trajectory, numbered waypoints, gripper, next action.

One drawing routine for the CLI's annotated PNG, the node's ``~/debug_image`` and the replay
MP4, so a plan looks the same wherever it is inspected. Drawing happens at the native image
size, where the plan's pixels live. The input image is never modified.

Legend: the path is a yellow polyline with an arrow on its last segment; waypoints are
numbered from 1 (the first is where the gripper is now, per NVIDIA's trajectory format); a
green ring marks "open", a filled red square marks "close"; the next action is written in a
box at the top; ``notes`` (e.g. "tiny checkpoint: meaningless plan") go at the bottom.
"""

from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from cosmos_planner.errors import ImageDecodeError
from cosmos_planner.model.results import ParsedAnswer

PATH_RGB = (255, 210, 0)
POINT_RGB = (255, 255, 255)
TEXT_RGB = (255, 255, 255)
OPEN_RGB = (40, 220, 60)
CLOSE_RGB = (235, 40, 40)
_SHIFT = 4  # sub-pixel drawing: cv2 takes fixed-point coordinates with this many bits
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def draw_plan(image_rgb: np.ndarray, points_px: Sequence[Tuple[float, float]],
              next_action: Optional[str] = None,
              gripper: Optional[Sequence[Optional[str]]] = None,
              notes: Sequence[str] = ()) -> np.ndarray:
    """Return a copy of ``image_rgb`` (HxWx3 uint8) with the plan drawn on it."""
    if (not isinstance(image_rgb, np.ndarray) or image_rgb.dtype != np.uint8
            or image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.size == 0):
        raise ImageDecodeError(
            'draw_plan needs an HxWx3 uint8 RGB image, got '
            + (f'{image_rgb.dtype} {image_rgb.shape}' if isinstance(image_rgb, np.ndarray)
               else type(image_rgb).__name__), kind='bad_shape')
    canvas = np.ascontiguousarray(image_rgb).copy()
    height, width = canvas.shape[:2]
    scale = max(0.5, min(width, height) / 480.0)
    thick = max(1, int(round(2 * scale)))
    # Text first, so that waypoints under the boxes stay visible.
    if next_action:
        _text_box(canvas, _wrap(f'Next: {next_action}', width, scale), top=True, scale=scale)
    if notes:
        lines: List[str] = []
        for note in notes:
            lines.extend(_wrap(note, width, scale))
        _text_box(canvas, lines, top=False, scale=scale)
    pts = _fixed_points(points_px, width, height)
    if len(pts) >= 2:
        cv2.polylines(canvas, [np.array(pts, np.int32)], False, PATH_RGB, thick,
                      cv2.LINE_AA, _SHIFT)
        cv2.arrowedLine(canvas, pts[-2], pts[-1], PATH_RGB, thick, cv2.LINE_AA, _SHIFT,
                        tipLength=min(0.5, 18 * scale / max(1.0, _length(pts[-2], pts[-1]))))
    commands = list(gripper or [])
    radius = int(round(7 * scale))
    for index, point in enumerate(pts):
        command = commands[index] if index < len(commands) else None
        _draw_point(canvas, point, index + 1, command, radius, scale)
    return canvas


def draw_answer(image_rgb: np.ndarray, answer: ParsedAnswer,
                notes: Sequence[str] = ()) -> np.ndarray:
    """``draw_plan`` for a parsed answer (its native-pixel points)."""
    return draw_plan(image_rgb, answer.points_px, answer.next_action, answer.gripper, notes)


def _fixed_points(points_px: Sequence[Tuple[float, float]], width: int,
                  height: int) -> List[Tuple[int, int]]:
    """Finite points as cv2 fixed-point ints, clamped so far-off points cannot overflow."""
    out = []
    for point in points_px:
        x, y = float(point[0]), float(point[1])
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        x = min(max(x, -4.0 * width), 5.0 * width)
        y = min(max(y, -4.0 * height), 5.0 * height)
        out.append((int(round(x * (1 << _SHIFT))), int(round(y * (1 << _SHIFT)))))
    return out


def _length(a: Tuple[int, int], b: Tuple[int, int]) -> float:
    return float(np.hypot(a[0] - b[0], a[1] - b[1])) / (1 << _SHIFT)


def _draw_point(canvas: np.ndarray, point: Tuple[int, int], number: int,
                command: Optional[str], radius: int, scale: float) -> None:
    centre = (point[0] >> _SHIFT, point[1] >> _SHIFT)
    if command == 'close':
        half = radius + int(round(4 * scale))
        corners = ((centre[0] - half, centre[1] - half), (centre[0] + half, centre[1] + half))
        cv2.rectangle(canvas, *corners, CLOSE_RGB, -1, cv2.LINE_AA)
        cv2.rectangle(canvas, *corners, POINT_RGB, max(1, int(round(scale))), cv2.LINE_AA)
    elif command == 'open':
        cv2.circle(canvas, centre, radius + int(round(5 * scale)), OPEN_RGB,
                   max(2, int(round(3 * scale))), cv2.LINE_AA)
    cv2.circle(canvas, centre, radius, POINT_RGB, -1, cv2.LINE_AA)
    cv2.circle(canvas, centre, radius, (0, 0, 0), 1, cv2.LINE_AA)
    label = str(number)
    font_scale = 0.4 * scale
    (tw, th), _ = cv2.getTextSize(label, _FONT, font_scale, 1)
    cv2.putText(canvas, label, (centre[0] - tw // 2, centre[1] + th // 2), _FONT,
                font_scale, (0, 0, 0), 1, cv2.LINE_AA)
    if command in ('open', 'close'):
        origin = (centre[0] + radius + int(round(8 * scale)), centre[1] - radius)
        weight = max(1, int(round(scale)))
        cv2.putText(canvas, command, origin, _FONT, 0.45 * scale, (0, 0, 0), weight + 2,
                    cv2.LINE_AA)
        cv2.putText(canvas, command, origin, _FONT, 0.45 * scale,
                    OPEN_RGB if command == 'open' else CLOSE_RGB, weight, cv2.LINE_AA)


def _ascii(text: str) -> str:
    """cv2's Hershey fonts draw ASCII only; anything else becomes '?'."""
    return ''.join(c if 32 <= ord(c) < 127 else '?' for c in ' '.join(text.split()))


def _wrap(text: str, width: int, scale: float, max_lines: int = 3) -> List[str]:
    """Break ``text`` into lines that fit ``width`` (words first, then characters)."""
    limit = width - 24 * scale

    def fits(candidate: str) -> bool:
        return cv2.getTextSize(candidate, _FONT, 0.6 * scale, _weight(scale))[0][0] <= limit

    lines: List[str] = []
    current = ''
    for word in _ascii(text).split(' '):
        trial = f'{current} {word}'.strip()
        if fits(trial):
            current = trial
            continue
        if current:
            lines.append(current)
        current = ''
        for char in word:  # a word wider than the image: break it anywhere
            if current and not fits(current + char):
                lines.append(current)
                current = ''
            current += char
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][:max(0, len(lines[-1]) - 3)] + '...'
    return lines


def _text_box(canvas: np.ndarray, lines: List[str], top: bool, scale: float) -> None:
    if not lines:
        return
    height = canvas.shape[0]
    font_scale = 0.6 * scale
    line_h = int(round(26 * scale))
    pad = int(round(8 * scale))
    box_h = line_h * len(lines) + pad
    y0 = 0 if top else max(0, height - box_h)
    region = canvas[y0:y0 + box_h, :]
    region[:] = (region.astype(np.float32) * 0.35).astype(np.uint8)
    for i, line in enumerate(lines):
        baseline = y0 + pad // 2 + line_h * (i + 1) - int(round(7 * scale))
        cv2.putText(canvas, line, (pad, baseline), _FONT, font_scale, TEXT_RGB, _weight(scale),
                    cv2.LINE_AA)


def _weight(scale: float) -> int:
    return max(1, int(round(scale)))
