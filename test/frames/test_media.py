"""Image and video files into frames and clips (the CLI's input path). Runtime: < 1 s."""

import cv2
import numpy as np
import pytest

from cosmos_planner.errors import ConfigError, ImageDecodeError
from cosmos_planner.frames.resize import fit_size
from cosmos_planner.frames.media import load_clip, read_image, read_video, write_image
from planner_helpers import scene_image


@pytest.fixture
def images(tmp_path):
    paths = []
    for i in range(3):
        paths.append(write_image(tmp_path / f'f{i}.png', scene_image(1280, 720, seed=i)))
    return paths


def _video(path, frames, fps, size=(160, 120)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        img = np.full((size[1], size[0], 3), 10 * i % 250, np.uint8)
        writer.write(img)
    writer.release()
    return path


def test_images_become_a_clip_stamped_at_fps(images):
    clip, native = load_clip(images, camera='cam', image_fps=2.0, max_pixels=448 * 448)
    assert [f.stamp_ns for f in clip.frames] == [0, 500_000_000, 1_000_000_000]
    assert clip.fps == pytest.approx(2.0)
    assert all(f.native_size == (1280, 720) for f in clip.frames)
    assert clip.newest.image.shape[1::-1] == fit_size(1280, 720, 448 * 448)
    assert native.shape == (720, 1280, 3)
    assert np.array_equal(native, read_image(images[-1]))
    assert not clip.newest.image.flags.writeable


def test_png_round_trip_is_exact(tmp_path):
    image = scene_image(33, 17)
    assert np.array_equal(read_image(write_image(tmp_path / 'x.png', image)), image)


def test_video_is_sampled_at_the_model_fps_newest_kept(tmp_path):
    path = _video(tmp_path / 'v.mp4', frames=30, fps=10.0)  # 3 s
    samples = read_video(path, sample_fps=4.0, max_frames=100)
    stamps = [s for s, _ in samples]
    assert stamps[0] == 0 and len(stamps) == 12  # 0.0, 0.3, 0.5, 0.8, ... (10 fps grid)
    assert all(0.2e9 <= b - a <= 0.3e9 for a, b in zip(stamps, stamps[1:]))
    newest = read_video(path, sample_fps=4.0, max_frames=3)
    assert [s for s, _ in newest] == stamps[-3:]
    clip, native = load_clip([path], model_fps=4.0, max_frames=3)
    assert len(clip.frames) == 3 and native.shape == (120, 160, 3)


@pytest.mark.parametrize('make, error', [
    (lambda d: d / 'missing.png', ImageDecodeError),
    (lambda d: (d / 'bad.png').write_bytes(b'not a png') and d / 'bad.png', ImageDecodeError),
    (lambda d: (d / 'empty.png').write_bytes(b'') or d / 'empty.png', ImageDecodeError),
    (lambda d: (d / 'bad.mp4').write_bytes(b'\x00' * 100) and d / 'bad.mp4', ImageDecodeError),
])
def test_unreadable_files(tmp_path, make, error):
    with pytest.raises(error):
        load_clip([make(tmp_path)])


def test_clip_rules(tmp_path, images):
    video = _video(tmp_path / 'v.mp4', frames=4, fps=4.0)
    with pytest.raises(ConfigError, match='single video'):
        load_clip([images[0], video])
    with pytest.raises(ConfigError, match='at least one'):
        load_clip([])
    with pytest.raises(ConfigError, match='at most 2'):
        load_clip(images, max_frames=2)
    other = write_image(tmp_path / 'small.png', scene_image(64, 48))
    with pytest.raises(ConfigError, match='one size'):
        load_clip([images[0], other])
    with pytest.raises(ConfigError):
        write_image(tmp_path / 'x.unknown_format', scene_image(8, 8))
