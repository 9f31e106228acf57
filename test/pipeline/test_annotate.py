"""Plan drawing: what is drawn where, and that bad images are refused. Runtime: < 1 s."""

import numpy as np
import pytest

from cosmos_planner.pipeline.annotate import CLOSE_RGB, draw_answer, draw_plan, OPEN_RGB, PATH_RGB
from cosmos_planner.errors import ImageDecodeError
from cosmos_planner.model.parser import parse_answer
from planner_helpers import PLAN_ANSWER


def _grey(width=640, height=360):
    return np.full((height, width, 3), 60, np.uint8)


def _near(image, x, y, colour, r=12):
    patch = image[max(0, y - r):y + r, max(0, x - r):x + r].reshape(-1, 3)
    return bool(np.any(np.all(np.abs(patch.astype(int) - colour) <= 20, axis=1)))


def test_path_points_and_gripper_marks_are_drawn_where_the_plan_says():
    image = _grey()
    points = [(100.0, 300.0), (320.0, 180.0), (540.0, 60.0)]
    out = draw_plan(image, points, None, [None, 'close', 'open'])
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.all(image == 60)  # the input is never modified
    assert _near(out, 210, 240, PATH_RGB, r=4)  # on the first segment
    assert _near(out, 320, 180, CLOSE_RGB, r=20)
    assert _near(out, 540, 60, OPEN_RGB, r=20)
    assert not _near(out, 600, 330, PATH_RGB)  # far from the path: untouched
    assert np.all(out[330:, 600:] == 60)


def test_next_action_and_notes_boxes():
    out = draw_plan(_grey(), [], 'Move the gripper above the red cube', None,
                    ['tiny random checkpoint: this plan is meaningless'])
    assert out[:20].mean() < 60 < out[:20].max()  # darkened box with white text on top
    assert out[-20:].mean() < 60 < out[-20:].max()
    assert np.all(out[150:200] == 60)


def test_draw_answer_uses_native_pixels():
    answer = parse_answer(PLAN_ANSWER, (1280, 720))
    out = draw_answer(np.zeros((720, 1280, 3), np.uint8), answer)
    for u, v in answer.points_px:  # a white waypoint disc at each native pixel
        assert _near(out, int(u), int(v), (255, 255, 255), r=6)
    assert not _near(out, 100, 600, (255, 255, 255), r=6)


@pytest.mark.parametrize('points', [[(1e12, -1e12), (5.0, 5.0)], [(float('nan'), 1.0)],
                                    [(10.0, 10.0)], []])
def test_far_off_or_odd_points_do_not_break_drawing(points):
    out = draw_plan(_grey(64, 48), points, 'x' * 300, ['close'])
    assert out.shape == (48, 64, 3)


@pytest.mark.parametrize('image', [np.zeros((10, 10), np.uint8),
                                   np.zeros((10, 10, 4), np.uint8),
                                   np.zeros((10, 10, 3), np.float32),
                                   np.zeros((0, 10, 3), np.uint8), 'image.png'])
def test_bad_images_are_refused(image):
    with pytest.raises(ImageDecodeError):
        draw_plan(image, [(1.0, 1.0)])
