"""Fixtures shared by the backend wrapper tests: two real requests and their recording."""

import pytest

from planner_helpers import (NVIDIA_STYLE_ANSWER, PLAN_ANSWER, request_for, synthetic_clip,
                             write_recording)


@pytest.fixture(scope='module')
def requests_():
    """Two different real requests (different pixels) for the same task."""
    return (request_for(synthetic_clip(frames=1)),
            request_for(synthetic_clip(frames=3), preset='trajectory'))


@pytest.fixture
def recorded(tmp_path, requests_):
    """Write a recording holding one answer for each request."""
    path = write_recording(tmp_path / 'answers.jsonl',
                           [(requests_[0], PLAN_ANSWER), (requests_[1], NVIDIA_STYLE_ANSWER)])
    return path
