"""``replay``, ``diff`` and ``plan`` work where no ROS package can be imported.

A data engineer replays bags with ``rosbags`` (pure Python) and no ROS install. Each command
runs in a subprocess whose first meta-path finder refuses rclpy, the rcl/rmw/rosidl
libraries and every ROS interface package (``*_msgs``, ``*_srvs``, ``builtin_interfaces``,
...), and must give the outputs of a run in this process, where ROS is importable.

Runtime: about 40 s on 2 cores (a tiny-model replay recording answers, a tiny-model plan,
replays of the recorded answers).
"""

import json
import os
from pathlib import Path
import subprocess
import sys
from typing import Any, Dict, List

import cv2
import numpy as np
import pytest

from cosmos_planner.bag.reader import BagReader
from cosmos_planner.bag.replay import replay_bag, ReplayOptions
from cosmos_planner.bag.scenes import SceneSpec, write_scene_bag

TASK = 'put the red cube in the blue bowl'
WIDE = {'ground.mode': 'depth', 'target.frame': '', 'heights.up': [0.0, 0.0, -1.0],
        'safety.workspace_min': [-5.0, -5.0, -5.0], 'safety.workspace_max': [5.0, 5.0, 5.0],
        'safety.max_step_m': 5.0}
#: Runs ``cosmos_planner.cli.main`` with every ROS package unimportable.
BLOCKED_MAIN = r'''
import importlib.abc, sys
ROS_NAMES = ('rclpy', 'rcl', 'rmw', 'rosidl', 'rpyutils', 'rosgraph_msgs', 'builtin_interfaces',
             'ament_index_python', 'launch', 'tf2', 'message_filters', 'type_description')
class BlockRos(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.split('.')[0]
        if (top.startswith(ROS_NAMES) or top.endswith(('_msgs', '_srvs', '_interfaces'))
                or (top.startswith('ros') and not top.startswith('rosbags'))):
            raise ImportError(f'{name} is blocked: no ROS on this machine')
        return None
sys.meta_path.insert(0, BlockRos())
for name in [n for n in sys.modules if n.split('.')[0] in ('rclpy',)]:
    del sys.modules[name]
if sys.argv[1] == '--probe':
    for name in sys.argv[2:]:
        try:
            __import__(name)
        except ImportError:
            continue
        sys.exit(f'{name} imported although blocked')
    sys.exit(0)
from cosmos_planner.cli.main import main
code = main(sys.argv[1:])
if any(n.split('.')[0] in ('rclpy', 'rosidl_runtime_py', 'std_msgs') for n in sys.modules):
    sys.exit('a ROS module was loaded')
sys.exit(code)
'''


def _blocked(*args: Any) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    return subprocess.run([sys.executable, '-c', BLOCKED_MAIN, *[str(a) for a in args]],
                          capture_output=True, text=True, env=env, timeout=300)


def _masked(value: Any) -> Any:
    """Drop wall-clock timings, the only thing two runs of one input may differ in."""
    if isinstance(value, dict):
        return {k: (sorted(v) if k == 'timings_ms' else _masked(v))
                for k, v in value.items() if k not in ('wall_s', 'model_ms')}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def _bag(out: Path) -> List[Any]:
    """Every output message: topic, type, log time and content (timings masked)."""
    rows = []
    with BagReader(out / 'bag') as reader:
        for msg in reader.messages(list(reader.topics)):
            raw = bytes(msg.raw)
            if msg.topic in ('/cosmos_planner/plan', '/cosmos_planner/status'):
                content: Any = _masked(json.loads(reader.decode(msg).data))
            else:
                content = raw
            rows.append((msg.topic, msg.msgtype, msg.log_time_ns, content))
    return rows


def _plans(out: Path) -> List[Dict[str, Any]]:
    return [_masked(json.loads(line)) for line in (out / 'plans.jsonl').read_text().splitlines()]


@pytest.fixture(scope='module')
def scene(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> Dict[str, Path]:
    """Make a scene bag and the tiny checkpoint's answers for it, recorded with ROS importable."""
    root = tmp_path_factory.mktemp('no_ros')
    write_scene_bag(root / 'bag', SceneSpec(duration_s=3.0, tasks=((0.55, TASK),)))
    replay_bag(ReplayOptions(bag=root / 'bag', out=root / 'recorded', backend='local',
                             model=str(tiny_checkpoint), record=root / 'answers.jsonl',
                             replan_period_s=1.0, params=WIDE, progress=False, video=False))
    return {'root': root, 'bag': root / 'bag', 'answers': root / 'answers.jsonl',
            'tiny': tiny_checkpoint}


def test_the_block_refuses_every_ros_package() -> None:
    done = _blocked('--probe', 'rclpy', 'std_msgs.msg', 'sensor_msgs', 'builtin_interfaces',
                    'rosgraph_msgs', 'rosidl_runtime_py', 'rcl_interfaces', 'std_srvs',
                    'geometry_msgs', 'visualization_msgs', 'diagnostic_msgs')
    assert done.returncode == 0, done.stderr


def test_replay_and_diff_without_ros_match_a_run_with_ros(scene: Dict[str, Path]) -> None:
    root = scene['root']
    params = [a for k, v in WIDE.items() for a in ('-p', f'{k}:={json.dumps(v)}')]
    common = ['--responses', scene['answers'], '--replan-period', '1.0', '--no-video',
              '--no-progress', '--debug-image', *params]
    done = _blocked('replay', scene['bag'], '--out', root / 'blocked', *common)
    assert done.returncode == 0, done.stderr
    replay_bag(ReplayOptions(bag=scene['bag'], out=root / 'with_ros',
                             responses=scene['answers'], replan_period_s=1.0, params=WIDE,
                             progress=False, video=False, debug_image=True))
    blocked, with_ros = _bag(root / 'blocked'), _bag(root / 'with_ros')
    assert [r[0] for r in blocked].count('/cosmos_planner/plan') >= 1
    assert '/cosmos_planner/debug_image' in {r[0] for r in blocked}
    assert blocked == with_ros
    assert _plans(root / 'blocked') == _plans(root / 'with_ros')
    done = _blocked('diff', root / 'with_ros', root / 'blocked')
    assert done.returncode == 0, done.stdout + done.stderr


def test_plan_without_ros_matches_a_run_with_ros(scene: Dict[str, Path]) -> None:
    root = scene['root']
    image = root / 'scene.png'
    rgb = np.zeros((96, 128, 3), np.uint8)
    rgb[30:60, 40:80] = (200, 40, 40)
    cv2.imwrite(str(image), rgb)
    blocked = _blocked('plan', image, '--task', TASK, '--backend', 'local', '--model',
                       scene['tiny'], '--device', 'cpu', '--record', root / 'plan_answers.jsonl',
                       '--out', root / 'plan_blocked.json')
    assert blocked.returncode == 0, blocked.stderr
    # The same answer, replayed where ROS is importable, gives the same plan.
    with_ros = subprocess.run(
        [sys.executable, '-m', 'cosmos_planner.cli.main', 'plan', str(image), '--task', TASK,
         '--backend', 'replay', '--recording', str(root / 'plan_answers.jsonl'),
         '--out', str(root / 'plan_ros.json')], capture_output=True, text=True, timeout=300)
    assert with_ros.returncode == 0, with_ros.stderr

    def content(path: Path) -> Dict[str, Any]:
        plan = json.loads(path.read_text())
        ids = ('plan_id', 'stamp', 'valid_until')  # a new id and clock per run
        return {k: v for k, v in _masked(plan).items() if k not in ids}
    assert content(root / 'plan_blocked.json') == content(root / 'plan_ros.json')
