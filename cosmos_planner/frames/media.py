"""Read image and video files into Frames and a Clip, for the command line and the demo.

The ROS path gets frames from camera messages (``frames.ingest``); this module is the
file path to the same ``Frame``/``Clip`` contract. Images become frames stamped ``i / fps``
(files carry no capture time); a video is sampled at the model's fps by frame index and
native frame rate, and its newest ``max_frames`` samples are kept (the plan is made from the
end of the video, where "now" is). Each frame is resized once to the model's pixel budget
(``frames.resize``, the same rule as camera ingest) while ``native_size`` keeps the file's
size, so plan pixels map onto the original image.
"""

import collections
import math
from pathlib import Path
from typing import Deque, List, Sequence, Tuple, Union

import cv2
import numpy as np

from cosmos_planner.errors import ConfigError, ImageDecodeError
from cosmos_planner.frames.types import Clip, Frame
from cosmos_planner.frames.resize import DEFAULT_MAX_PIXELS, fit_size, resize_image

IMAGE_SUFFIXES = frozenset({'.png', '.jpg', '.jpeg', '.bmp', '.webp', '.tif', '.tiff',
                            '.ppm', '.pgm'})
VIDEO_SUFFIXES = frozenset({'.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg',
                            '.mpeg'})
#: Frames read from one video at most, so a corrupt frame count cannot loop for ever.
MAX_VIDEO_FRAMES_READ = 200_000
PathLike = Union[str, Path]


def read_image(path: PathLike) -> np.ndarray:
    """Read an image file as RGB uint8 HxWx3; ImageDecodeError names the file on failure."""
    path = Path(path)
    if not path.is_file():
        raise ImageDecodeError(f'image file {path} does not exist', kind='missing_file')
    data = np.fromfile(str(path), dtype=np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise ImageDecodeError(f'{path} is not a readable image', kind='corrupt')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def frame_from_rgb(image: np.ndarray, camera: str, stamp_ns: int, frame_id: str = '',
                   max_pixels: int = DEFAULT_MAX_PIXELS) -> Frame:
    """Make a Frame from a native-size RGB image: resized to the budget, native size kept."""
    height, width = image.shape[:2]
    resized = resize_image(image, fit_size(width, height, max_pixels))
    resized.setflags(write=False)
    return Frame(camera=camera, stamp_ns=int(stamp_ns), image=resized,
                 native_size=(int(width), int(height)), frame_id=frame_id)


def read_video(path: PathLike, sample_fps: float,
               max_frames: int) -> List[Tuple[int, np.ndarray]]:
    """Sample a video at ``sample_fps``: the newest ``max_frames`` (stamp_ns, RGB) pairs.

    Stamps come from the frame index and the container's frame rate (30 fps assumed when
    the file does not say), counted from the first frame.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageDecodeError(f'video file {path} does not exist', kind='missing_file')
    if sample_fps <= 0 or max_frames < 1:
        raise ConfigError(f'need sample_fps > 0 and max_frames >= 1, got {sample_fps}, '
                          f'{max_frames}')
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise ImageDecodeError(f'{path} is not a readable video', kind='corrupt')
        native_fps = capture.get(cv2.CAP_PROP_FPS)
        if not math.isfinite(native_fps) or native_fps <= 0:
            native_fps = 30.0
        kept: Deque[Tuple[int, np.ndarray]] = collections.deque(maxlen=max_frames)
        next_sample_s = 0.0
        for index in range(MAX_VIDEO_FRAMES_READ):
            if not capture.grab():
                break
            t_s = index / native_fps
            if t_s + 1e-9 < next_sample_s:
                continue
            ok, bgr = capture.retrieve()
            if not ok or bgr is None:
                break
            kept.append((int(round(t_s * 1e9)), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
            next_sample_s += 1.0 / sample_fps
            while next_sample_s <= t_s:
                next_sample_s += 1.0 / sample_fps
    finally:
        capture.release()
    if not kept:
        raise ImageDecodeError(f'{path} has no decodable frames', kind='corrupt')
    return list(kept)


def is_video(path: PathLike) -> bool:
    """Video by file suffix; anything else is treated as an image."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def write_image(path: PathLike, image_rgb: np.ndarray) -> Path:
    """Write an RGB image (format from the suffix); ConfigError when it cannot be written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        ok, data = cv2.imencode(path.suffix or '.png',
                                cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    except cv2.error:
        ok = False
    if not ok:
        raise ConfigError(f'cannot encode an image as {path.suffix!r} for {path}')
    try:
        path.write_bytes(data.tobytes())
    except OSError as exc:
        raise ConfigError(f'cannot write {path}: {exc}') from None
    return path


def clip_from_files(paths: Sequence[PathLike], **options: object) -> Clip:
    """Load a clip from image files or one video file (options: ``load_clip``)."""
    return load_clip(paths, **options)[0]  # type: ignore[arg-type]


def load_clip(paths: Sequence[PathLike], *, camera: str = 'camera', frame_id: str = '',
              image_fps: float = 1.0, model_fps: float = 4.0, max_frames: int = 8,
              max_pixels: int = DEFAULT_MAX_PIXELS) -> Tuple[Clip, np.ndarray]:
    """(clip, newest frame at native size) from image files or from one video file.

    Images are taken in the order given and stamped ``i / image_fps``; a video is sampled
    at ``model_fps``. The native newest frame is what plans are drawn on.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ConfigError('give at least one image or video file')
    videos = [p for p in paths if is_video(p)]
    if videos and len(paths) > 1:
        raise ConfigError('give either image files or a single video, not '
                          + ', '.join(str(p) for p in paths))
    if image_fps <= 0:
        raise ConfigError(f'image fps must be > 0, got {image_fps}')
    if videos:
        samples = read_video(videos[0], model_fps, max_frames)
    else:
        if len(paths) > max_frames:
            raise ConfigError(f'{len(paths)} images but at most {max_frames} frames per clip')
        period_ns = 1e9 / image_fps
        samples = [(int(round(i * period_ns)), read_image(p)) for i, p in enumerate(paths)]
    sizes = {img.shape[:2] for _, img in samples}
    if len(sizes) > 1:
        raise ConfigError(f'all frames of a clip need one size, got {sorted(sizes)}')
    frames = tuple(frame_from_rgb(img, camera, stamp, frame_id, max_pixels)
                   for stamp, img in samples)
    return Clip(camera=camera, frames=frames), samples[-1][1]
