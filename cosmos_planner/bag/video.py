"""The replay's annotated MP4: primary frames with the plan in force drawn on them.

Which plan is drawn on a frame: the newest plan *published* (bag time) at or before the
frame was logged and still valid at the frame's stamp (``valid_until``), i.e. what a
controller listening to the node would be executing when that frame arrived. Frames with no
such plan are written undrawn with a note, so the video keeps the camera's timing.

Frames are written at most ``fps`` (default 5) per second of header time (the camera's own
rate when lower) and at most ``max_width`` (default 640) wide, because decoding and encoding
every 720p frame would dominate an offline replay that otherwise runs many times faster
than real time (see bench/bench_replay.py). Drawing uses
:func:`cosmos_planner.pipeline.annotate.draw_plan`, the same routine as ``~/debug_image``.
"""

from pathlib import Path
from typing import Optional, Tuple, TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # cv2 is imported with the first frame
    import cv2

    from cosmos_planner.model.plan_schema import PlanV1


class AnnotatedVideo:
    """Append frames to an MP4 (``mp4v``); ``close`` finalises it (also on errors)."""

    def __init__(self, path: Path, fps: float = 5.0, max_width: int = 640) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.max_width = int(max_width)
        self.frames = 0
        self._writer: Optional[cv2.VideoWriter] = None
        self._size: Optional[Tuple[int, int]] = None
        self._last_stamp_ns: Optional[int] = None
        self._period_ns = int(1e9 / self.fps) if self.fps > 0 else 0

    def wants(self, stamp_ns: int) -> bool:
        """Whether a frame with this stamp is due (sampling at ``fps`` of header time)."""
        if self._last_stamp_ns is None or stamp_ns < self._last_stamp_ns:
            return True
        # 2 % slack: a 30 fps camera sampled at 10 fps keeps every third frame despite jitter
        return stamp_ns - self._last_stamp_ns >= self._period_ns * 0.98

    def add(self, image_rgb: np.ndarray, stamp_ns: int, plan: Optional['PlanV1'] = None,
            note: str = '') -> None:
        """Draw ``plan`` (a PlanV1, pixels in native size) on the frame and append it."""
        import cv2

        from cosmos_planner.pipeline.annotate import draw_plan

        self._last_stamp_ns = stamp_ns
        h, w = image_rgb.shape[:2]
        if self._size is None:
            scale = min(1.0, self.max_width / float(w))
            # even sizes: many players refuse odd MP4 dimensions
            self._size = (max(2, int(w * scale) // 2 * 2), max(2, int(h * scale) // 2 * 2))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fourcc = cv2.VideoWriter.fourcc(*'mp4v')
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, self._size)
            if not self._writer.isOpened():
                raise RuntimeError(f'OpenCV cannot write {self.path} (no mp4v encoder)')
        out_w, out_h = self._size
        frame = image_rgb
        if (w, h) != (out_w, out_h):
            frame = cv2.resize(image_rgb, (out_w, out_h), interpolation=cv2.INTER_AREA)
        notes = [f't={stamp_ns * 1e-9:.3f}s'] + ([note] if note else [])
        if plan is not None:
            nat_w, nat_h = plan.image_size
            sx, sy = out_w / float(nat_w), out_h / float(nat_h)
            points = [(p.pixel[0] * sx, p.pixel[1] * sy) for p in plan.trajectory]
            frame = draw_plan(frame, points, plan.next_action,
                              gripper=[p.gripper for p in plan.trajectory], notes=notes)
        else:
            frame = draw_plan(frame, [], None, notes=notes)
        assert self._writer is not None  # opened with the first frame, as _size was
        self._writer.write(np.ascontiguousarray(frame[..., ::-1]))
        self.frames += 1

    def close(self) -> None:
        """Finish the file (idempotent)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.release()
