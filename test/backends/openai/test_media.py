"""Tests of backends/openai/media.py: MP4 and JPEG encoding round trips and bad frames."""

import numpy as np
import pytest

from cosmos_planner.backends.openai import media as media_encode
from cosmos_planner.errors import ImageDecodeError
from planner_helpers import make_clip


def test_mp4_round_trip_keeps_frames_fps_and_pixels():
    clip = make_clip(n=8, size=128, fps=3.0)
    video = media_encode.clip_to_video(clip)
    frames, fps = media_encode.decode_mp4(video.payload)
    assert len(frames) == 8
    assert fps == pytest.approx(3.0, rel=0.01)
    for original, decoded in zip(clip.frames, frames):
        err = np.mean((original.image.astype(float) - decoded.astype(float)) ** 2)
        assert 10 * np.log10(255 ** 2 / err) > 25  # PSNR in dB: the content survives


def test_mp4_odd_size_is_rounded_to_even():
    frames = [np.full((51, 77, 3), 100, np.uint8)] * 2
    decoded, _ = media_encode.decode_mp4(media_encode.encode_mp4(frames, 2.0))
    assert decoded[0].shape == (52, 78, 3)


@pytest.mark.parametrize('frames,match', [
    ([], 'zero frames'),
    ([np.zeros((8, 8), np.uint8)], 'HxWx3'),
    ([np.zeros((8, 8, 3), np.float32)], 'uint8'),
    ([np.zeros((8, 8, 3), np.uint8), np.zeros((10, 8, 3), np.uint8)], 'one size'),
])
def test_bad_frames_are_typed_errors(frames, match):
    with pytest.raises(ImageDecodeError, match=match):
        media_encode.encode_mp4(frames, 2.0)


def test_jpeg_round_trip():
    import cv2

    image = make_clip(n=1, size=64).newest.image
    decoded = cv2.cvtColor(cv2.imdecode(np.frombuffer(media_encode.encode_jpeg(image), np.uint8),
                                        cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert decoded.shape == image.shape
    assert np.abs(decoded.astype(int) - image).mean() < 8
