"""The ``cosmos-planner`` command line, run as a user runs it (a subprocess per command).

Inputs are generated files (a PNG, an MP4); answers come from recordings made for exactly
the requests the CLI builds, plus real runs of the tiny checkpoint (``plan`` and ``demo``,
the README's main job). Runtime: about 5 s for the replay tests; the two tiny-checkpoint
runs take 5-15 s each on 2 cores (loading torch and transformers dominates).
"""

import json
import os
from pathlib import Path
import subprocess
import sys

import cv2
import numpy as np
import pytest

from cosmos_planner.cli.demo import CAMERA, render_scene, SCENE_SIZE
from cosmos_planner.frames.types import Clip
from cosmos_planner.frames.media import frame_from_rgb, load_clip, read_image
from cosmos_planner.model.plan_schema import PlanV1
from planner_helpers import (NVIDIA_STYLE_ANSWER, NVIDIA_STYLE_POINTS, PLAN_ANSWER,
                             request_for, scene_image, TASK, write_recording)

SCRIPT = Path(sys.executable).with_name('cosmos-planner')


def cli(*args, cwd, env=None, timeout=300):
    """Run the console script (``python -m cosmos_planner.cli.main`` if it is not installed)."""
    command = ([str(SCRIPT)] if SCRIPT.exists()
               else [sys.executable, '-m', 'cosmos_planner.cli.main'])
    return subprocess.run(command + [str(a) for a in args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture
def png(tmp_path):
    path = tmp_path / 'frame.png'
    assert cv2.imwrite(str(path), cv2.cvtColor(scene_image(800, 600), cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture
def mp4(tmp_path):
    path = tmp_path / 'clip.mp4'
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), 8.0, (320, 240))
    assert writer.isOpened()
    for i in range(16):  # 2 s at 8 fps: a square moving right
        img = np.full((240, 320, 3), 90, np.uint8)
        img[100:140, 10 + 15 * i:50 + 15 * i] = (0, 0, 230)
        writer.write(img)
    writer.release()
    return path


def _record_for(path, inputs, answer, preset='plan', **load_options):
    """Record ``answer`` for the request the CLI will build from ``inputs`` (its defaults)."""
    clip, _ = load_clip(inputs, camera='camera', frame_id='camera', **load_options)
    write_recording(path, [(request_for(clip, preset=preset), answer)])
    return clip


def test_help_lists_commands_without_importing_torch(tmp_path):
    out = cli('--help', cwd=tmp_path)
    assert out.returncode == 0
    for name in ('plan', 'demo', 'export-schemas', 'make-tiny-checkpoint'):
        assert name in out.stdout
    code = ('import sys, cosmos_planner.cli.main as c, cosmos_planner.cli.plan, '
            'cosmos_planner.cli.demo; print([m for m in ("torch", "transformers", "rclpy") '
            'if m in sys.modules])')
    probe = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                           timeout=60, check=True)
    assert probe.stdout.strip() == '[]'


def test_unknown_command_and_usage_errors(tmp_path):
    out = cli('frobnicate', cwd=tmp_path)
    assert out.returncode == 2 and 'valid: plan' in out.stderr
    out = cli('plan', 'x.png', cwd=tmp_path)  # --task missing
    assert out.returncode == 2 and '--task' in out.stderr


def test_plan_on_a_png_with_replay(tmp_path, png):
    recording = tmp_path / 'answers.jsonl'
    _record_for(recording, [png], PLAN_ANSWER)
    out = cli('plan', '--task', TASK, png, '--backend', 'replay', '--recording', recording,
              '--annotated', tmp_path / 'annotated.png', '--out', tmp_path / 'plan.json',
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    plan = PlanV1.model_validate_json(out.stdout)
    assert plan.task == TASK and plan.image_size == (800, 600)
    assert plan.next_action == 'Move the gripper above the red cube'
    assert [p.pixel for p in plan.trajectory] == [(400.0, 120.0), (256.0, 372.0),
                                                  (560.0, 360.0)]
    assert [p.gripper for p in plan.trajectory] == [None, 'close', 'open']
    assert all(p.position is None for p in plan.trajectory)
    assert json.loads(out.stdout)['schema'] == 'cosmos_planner/plan/v1'
    assert PlanV1.model_validate_json((tmp_path / 'plan.json').read_text()) == plan
    annotated = read_image(tmp_path / 'annotated.png')
    assert annotated.shape == (600, 800, 3)
    assert np.any(annotated != read_image(png))
    assert 'MEANINGLESS' not in out.stderr


def test_plan_on_an_mp4_with_replay(tmp_path, mp4):
    recording = tmp_path / 'answers.jsonl'
    clip = _record_for(recording, [mp4], NVIDIA_STYLE_ANSWER, preset='trajectory',
                       model_fps=4.0)
    assert len(clip.frames) == 8 and clip.fps == pytest.approx(4.0)
    out = cli('plan', '--task', TASK, mp4, '--preset', 'trajectory', '--backend', 'replay',
              '--recording', recording, '--annotated', tmp_path / 'a.png', cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    plan = PlanV1.model_validate_json(out.stdout)
    assert plan.image_size == (320, 240) and plan.next_action is None
    assert plan.stamp == pytest.approx(clip.newest.stamp_s)
    assert [p.point_2d for p in plan.trajectory] == list(NVIDIA_STYLE_POINTS)
    assert plan.trajectory[0].pixel == pytest.approx((593 * 0.32, 292 * 0.24))
    assert read_image(tmp_path / 'a.png').shape == (240, 320, 3)


def test_plan_failures_exit_non_zero_with_a_reason(tmp_path, png):
    recording = tmp_path / 'garbage.jsonl'
    _record_for(recording, [png], 'no idea')
    out = cli('plan', '--task', TASK, png, '--backend', 'replay', '--recording', recording,
              '--max-attempts', '1', '--annotated', tmp_path / 'failed.png', cwd=tmp_path)
    assert out.returncode == 1 and out.stdout == ''
    assert 'parse_failed' in out.stderr and 'Traceback' not in out.stderr
    assert (tmp_path / 'failed.png').is_file()
    # A different task: the recorded answer does not match the request.
    out = cli('plan', '--task', 'Open the drawer', png, '--backend', 'replay',
              '--recording', recording, cwd=tmp_path)
    assert out.returncode == 1 and 'no recorded answer' in out.stderr


@pytest.mark.parametrize('args, message', [
    (['missing.png'], 'does not exist'),
    (['frame.png', '--backend', 'replay'], 'needs --recording'),
    (['frame.png', '--backend', 'openai'], 'needs --base-url'),
    (['frame.png', '--preset', 'poetry', '--backend', 'replay', '--recording', 'r.jsonl'],
     'unknown prompt preset'),
])
def test_bad_inputs_get_one_clear_line(tmp_path, png, args, message):
    (tmp_path / 'r.jsonl').write_text('')
    out = cli('plan', '--task', TASK, *args, cwd=tmp_path)
    assert out.returncode == 1
    assert message in out.stderr and 'Traceback' not in out.stderr


def test_demo_with_replay(tmp_path):
    scene = render_scene()
    clip = Clip(camera=CAMERA, frames=(frame_from_rgb(scene.image, CAMERA, 0, CAMERA),))
    recording = write_recording(tmp_path / 'demo.jsonl', [(request_for(clip), PLAN_ANSWER)])
    out = cli('demo', '--out', tmp_path / 'run', '--backend', 'replay', '--recording',
              recording, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    run = tmp_path / 'run'
    summary = json.loads((run / 'summary.json').read_text())
    assert summary['status'] == 'ok' and summary['backend'] == 'replay'
    assert summary['is_tiny'] is False and summary['points'] == 3
    assert set(summary['timings_ms']) == {'prepare', 'generate', 'parse', 'total'}
    plan = PlanV1.model_validate_json((run / 'plan.json').read_text())
    assert plan.image_size == SCENE_SIZE
    assert read_image(run / 'annotated.png').shape == (720, 1280, 3)
    assert str(run / 'annotated.png') in out.stdout


def test_tiny_checkpoint_plan_record_and_replay(tmp_path, png, tiny_checkpoint):
    recording = tmp_path / 'tiny.jsonl'
    out = cli('plan', '--task', TASK, png, '--backend', 'local', '--model', tiny_checkpoint,
              '--device', 'cpu', '--record', recording, '--annotated', tmp_path / 'a.png',
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert 'MEANINGLESS' in out.stderr
    live = PlanV1.model_validate_json(out.stdout)
    assert live.image_size == (800, 600) and live.trajectory
    again = cli('plan', '--task', TASK, png, '--backend', 'replay', '--recording', recording,
                cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    replayed = PlanV1.model_validate_json(again.stdout)
    assert [p.pixel for p in replayed.trajectory] == [p.pixel for p in live.trajectory]
    assert replayed.next_action == live.next_action
    assert 'MEANINGLESS' in again.stderr  # the recording says the tiny model answered


def test_demo_on_the_embedded_default(tmp_path, tiny_checkpoint):
    # The README's main job; COSMOS_REASON2_MODEL makes resolve_default_model pick the
    # fixture's checkpoint instead of building one in the user cache.
    out = cli('demo', '--out', tmp_path / 'demo', cwd=tmp_path,
              env={'COSMOS_REASON2_MODEL': str(tiny_checkpoint)})
    assert out.returncode == 0, out.stderr
    assert 'MEANINGLESS' in out.stderr and 'meaningless' in out.stdout
    summary = json.loads((tmp_path / 'demo' / 'summary.json').read_text())
    assert summary['is_tiny'] is True and summary['backend'] == 'local'
    assert summary['status'] == 'ok' and summary['model'] == str(tiny_checkpoint)
    assert (tmp_path / 'demo' / 'plan.json').is_file()
    assert read_image(tmp_path / 'demo' / 'annotated.png').shape == (720, 1280, 3)


def test_unwritable_output_is_one_clear_line(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('not a folder')
    out = cli('demo', '--out', blocker / 'run', '--backend', 'replay', '--recording',
              blocker, cwd=tmp_path)
    assert out.returncode == 1 and 'Traceback' not in out.stderr
    assert 'error' in out.stderr and str(blocker) in out.stderr
