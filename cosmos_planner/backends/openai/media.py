"""Encode clips for HTTP model servers: MP4 video or JPEG images, as base64 data URLs.

OpenAI-compatible servers (vLLM, NIM) take media inline as data URLs. Two forms, chosen by
the caller:

- Video: one MP4 (MPEG-4 Part 2, ``mp4v``) written at the clip's *real* frame rate, so the
  server's video loader keeps every frame and the processor's ``<t seconds>`` timestamps
  match the stamps the frames were taken at. H.264 is not used because the OpenCV wheels
  carry no H.264 encoder; every FFmpeg-based decoder (vLLM's OpenCV and torchcodec loaders)
  reads MPEG-4 Part 2. An 8-frame 448 px clip is a few tens of kB instead of ~100 kB of JPEGs.
- Images: one JPEG per frame; works on servers without video decoding and with any
  OpenAI-compatible API, but the model loses the timing between frames.

Frames are RGB uint8 (``Frame.image``); OpenCV wants BGR, converted here once. Frames are
already resized to the model's pixel budget at ingest; an odd width or height is rounded
up to even for MP4 (4:2:0 chroma needs even sizes; coordinates are normalised 0-1000, so
the one-pixel stretch does not move any point).
"""

import base64
import os
import tempfile
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from cosmos_planner.errors import ImageDecodeError
from cosmos_planner.frames.types import Clip

MP4_FOURCC = 'mp4v'
MP4_MIME = 'video/mp4'
JPEG_MIME = 'image/jpeg'
#: Frame rate used when a clip's stamps give none (equal stamps): Qwen3-VL's default.
DEFAULT_FPS = 2.0
#: vLLM's Qwen3-VL video loader samples at most 30 fps; faster clips would lose frames.
MAX_VIDEO_FPS = 30.0


@dataclass(frozen=True)
class EncodedMedia:
    """One encoded media item, ready to go into an OpenAI content part."""

    kind: str
    mime: str
    payload: bytes
    n_frames: int
    size: Tuple[int, int]
    fps: Optional[float] = None

    @property
    def data_url(self) -> str:
        """``data:<mime>;base64,...``: what ``image_url`` / ``video_url`` carry."""
        return data_url(self.payload, self.mime)


def data_url(payload: bytes, mime: str) -> str:
    """Wrap bytes in a base64 data URL."""
    return f'data:{mime};base64,' + base64.b64encode(payload).decode('ascii')


def _check_rgb(image: np.ndarray, what: str) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, 'shape', None)
        raise ImageDecodeError(f'{what}: expected an HxWx3 RGB array, got shape {shape}',
                               kind='bad_frame')
    if image.dtype != np.uint8:
        raise ImageDecodeError(f'{what}: expected uint8 pixels, got {image.dtype}',
                               kind='bad_frame')
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise ImageDecodeError(f'{what}: image of {image.shape[1]}x{image.shape[0]} pixels '
                               'is too small to encode', kind='bad_frame')
    return image


def encode_jpeg(image_rgb: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of an RGB uint8 image."""
    import cv2

    _check_rgb(image_rgb, 'JPEG frame')
    if not 1 <= int(quality) <= 100:
        raise ImageDecodeError(f'JPEG quality must be 1-100, got {quality}', kind='bad_quality')
    bgr = cv2.cvtColor(np.ascontiguousarray(image_rgb), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode('.jpg', bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ImageDecodeError('OpenCV could not encode the frame as JPEG', kind='encode_failed')
    return buf.tobytes()


def encode_mp4(frames_rgb: Sequence[np.ndarray], fps: float) -> bytes:
    """MP4 bytes of RGB uint8 frames (all the same size) played at ``fps``.

    OpenCV writes only to files, so the video goes through a temporary file (in /dev/shm
    when it exists, to stay off the disk).
    """
    import cv2

    if not frames_rgb:
        raise ImageDecodeError('cannot encode a video of zero frames', kind='bad_frame')
    if not (fps > 0 and np.isfinite(fps)):
        raise ImageDecodeError(f'video fps must be positive and finite, got {fps}',
                               kind='bad_fps')
    first = _check_rgb(frames_rgb[0], 'video frame 0')
    h, w = first.shape[:2]
    for i, frame in enumerate(frames_rgb):
        _check_rgb(frame, f'video frame {i}')
        if frame.shape[:2] != (h, w):
            raise ImageDecodeError(
                f'video frame {i} is {frame.shape[1]}x{frame.shape[0]}, frame 0 is {w}x{h}: '
                'all frames of a clip must have one size', kind='bad_frame')
    out_w, out_h = w + (w % 2), h + (h % 2)
    tmp_root = '/dev/shm' if os.path.isdir('/dev/shm') else None
    with tempfile.TemporaryDirectory(prefix='cosmos_mp4_', dir=tmp_root) as tmp:
        path = os.path.join(tmp, 'clip.mp4')
        writer = cv2.VideoWriter(path, cv2.CAP_FFMPEG, cv2.VideoWriter.fourcc(*MP4_FOURCC),
                                 float(fps), (out_w, out_h))
        try:
            if not writer.isOpened():
                raise ImageDecodeError('OpenCV cannot open an MP4 writer (FFmpeg backend '
                                       'missing?)', kind='encode_failed')
            for frame in frames_rgb:
                bgr = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR)
                if (out_w, out_h) != (w, h):
                    bgr = cv2.resize(bgr, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
                writer.write(bgr)
        finally:
            writer.release()
        with open(path, 'rb') as f:
            payload = f.read()
    if not payload:
        raise ImageDecodeError('OpenCV wrote an empty MP4', kind='encode_failed')
    return payload


def decode_mp4(payload: bytes) -> Tuple[List[np.ndarray], float]:
    """Decode MP4 bytes back to RGB frames and the stored fps (for checks and tests)."""
    import cv2

    tmp_root = '/dev/shm' if os.path.isdir('/dev/shm') else None
    with tempfile.TemporaryDirectory(prefix='cosmos_mp4_', dir=tmp_root) as tmp:
        path = os.path.join(tmp, 'clip.mp4')
        with open(path, 'wb') as f:
            f.write(payload)
        cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
        try:
            if not cap.isOpened():
                raise ImageDecodeError('not a readable MP4', kind='corrupt')
            fps = float(cap.get(cv2.CAP_PROP_FPS))
            frames = []
            while True:
                ok, bgr = cap.read()
                if not ok:
                    break
                frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        finally:
            cap.release()
    return frames, fps


def clip_fps(clip: Clip, default: float = DEFAULT_FPS) -> float:
    """Return the clip's real frame rate from its stamps, ``default`` when they give none."""
    fps = clip.fps
    return float(fps) if fps else float(default)


def clip_to_video(clip: Clip, default_fps: float = DEFAULT_FPS) -> EncodedMedia:
    """Encode the whole clip as one MP4 at its real frame rate."""
    fps = clip_fps(clip, default_fps)
    if fps > MAX_VIDEO_FPS:
        raise ImageDecodeError(
            f'clip of {clip.camera!r} runs at {fps:.1f} fps; servers sample video at most '
            f'{MAX_VIDEO_FPS:g} fps: sample the frame buffer at the model fps', kind='bad_fps')
    payload = encode_mp4([f.image for f in clip.frames], fps)
    h, w = clip.frames[0].image.shape[:2]
    return EncodedMedia('video', MP4_MIME, payload, len(clip.frames), (w, h), fps)


def frame_to_image(image_rgb: np.ndarray, quality: int = 90) -> EncodedMedia:
    """One frame as a JPEG."""
    payload = encode_jpeg(image_rgb, quality)
    h, w = image_rgb.shape[:2]
    return EncodedMedia('image', JPEG_MIME, payload, 1, (w, h))


def clip_to_images(clip: Clip, quality: int = 90) -> List[EncodedMedia]:
    """Every frame of the clip as a JPEG, oldest first."""
    return [frame_to_image(f.image, quality) for f in clip.frames]
