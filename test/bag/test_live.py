"""The live node fed by ``cosmos-planner play --clock`` plans like the offline replay.

Offline: the scene bag is replayed with the tiny checkpoint (answers recorded, model time
zero, so requests start exactly at the task and on every replan tick). Live: the planner
node runs in its own process with ``use_sim_time``, the replay's own ``params.yaml`` and the
recorded answers (backend ``replay``); the bag is played in this process with ``/clock`` at
40 Hz (what ``ros2 bag play --clock`` does) over reliable QoS. Every plan the node publishes
must equal, field for field (ids and timings aside), the offline plan made from the same
source frame, and the node must have planned on most of the offline source frames.

Frame log times sit at least 60 ms away from the replan ticks and the task, so one clock
period (25 ms) of lateness cannot change which frames a live clip holds. Two requests can
share a clip (the buffer samples at 2 fps, ticks come every second): their recorded answers
are replayed in order, so plans are matched on (source stamp, occurrence).

Runtime: about 20-30 s (tiny checkpoint generations, node start-up, 4 s of playback).
"""

import json
from pathlib import Path
from typing import Any, Dict

import pytest
import yaml

from cosmos_planner.bag.diff import plan_content, stamp_ns_of
from cosmos_planner.bag.play import Player, PlayOptions
from cosmos_planner.bag.replay import replay_bag, ReplayOptions
from cosmos_planner.bag.scenes import SceneSpec, write_scene_bag
from cosmos_planner.pipeline.publishing import PROGRESS_STATUSES
from ros_helpers import claim_domain_id, node_command, NodeProcess, release_domain_id
from ros_helpers import RosPeer, wait_until, write_params_file

TASK = 'put the red cube in the blue bowl'
WIDE = {'ground.mode': 'depth', 'target.frame': '', 'heights.up': [0.0, 0.0, -1.0],
        'safety.workspace_min': [-5.0, -5.0, -5.0], 'safety.workspace_max': [5.0, 5.0, 5.0],
        'safety.max_step_m': 5.0}


def _flat(tree: Any, prefix: str = '') -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f'{prefix}{key}.'))
        else:
            out[f'{prefix}{key}'] = value
    return out


@pytest.fixture(scope='module')
def offline(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> Dict[str, Any]:
    root = tmp_path_factory.mktemp('live')
    write_scene_bag(root / 'bag', SceneSpec(duration_s=4.0, tasks=((0.55, TASK),)))
    summary = replay_bag(ReplayOptions(
        bag=root / 'bag', out=root / 'offline', backend='local', model=str(tiny_checkpoint),
        record=root / 'answers.jsonl', replan_period_s=1.0, model_time='zero', params=WIDE,
        progress=False, video=False))
    records = [json.loads(line)
               for line in (root / 'offline' / 'plans.jsonl').read_text().splitlines()]
    return {'root': root, 'summary': summary, 'records': records}


def test_live_node_with_play_clock_publishes_the_offline_plans(
        offline: Dict[str, Any]) -> None:
    from std_msgs.msg import String

    root = offline['root']
    # identical requests (same clip) get their recorded answers in order: key plans by
    # (source stamp, occurrence), as ``cosmos-planner diff`` does
    offline_plans = _by_stamp([r['plan'] for r in offline['records'] if r['status'] == 'ok'])
    assert [r['request_ns'] for r in offline['records']] == [
        100_550_000_000, 101_000_000_000, 102_000_000_000, 103_000_000_000]
    assert len(offline_plans) >= 2, offline['records']

    params = _flat(yaml.safe_load((root / 'offline' / 'params.yaml').read_text())
                   ['cosmos_planner']['ros__parameters'])
    params.update({'backend.kind': 'replay', 'backend.replay_path': str(root / 'answers.jsonl'),
                   'backend.record_path': '', 'backend.model': '', 'use_sim_time': True,
                   'qos.reliable': True, 'qos.depth': 50, 'output.debug_image': False})
    params_file = write_params_file(root / 'live.yaml', 'cosmos_planner', params)
    domain = claim_domain_id()
    cmd = node_command('planner_node', 'cosmos_planner.ros.planner_node') + [
        '--ros-args', '--params-file', str(params_file)]
    with NodeProcess(cmd, domain, root / 'node.log') as node, RosPeer(domain) as peer:
        plans = peer.collect(String, '/cosmos_planner/plan')
        statuses = peer.collect(String, '/cosmos_planner/status')
        assert peer.wait_for_publishers('/cosmos_planner/plan', timeout=60), node.output()
        player = Player(peer.node, PlayOptions(
            bag=str(root / 'bag'), clock_hz=40.0, qos='reliable',
            wait_for_subscribers_s=30.0))
        stats = player.run()
        assert stats.published['/front/image_raw'] == 20
        wait_until(lambda: sum(json.loads(m.data)['status'] not in (
            *PROGRESS_STATUSES, 'configured', 'active') for m in statuses.messages) >= 4,
            10.0)
        live = [json.loads(m.data) for m in plans.messages]
        events = [json.loads(m.data) for m in statuses.messages]
    release_domain_id(domain)
    assert live, f'no live plan; statuses: {events}\n{node.output()[-3000:]}'
    live_plans = _by_stamp(live)
    for key, plan in live_plans.items():
        assert key in offline_plans, (key, sorted(offline_plans), events)
        assert plan_content(plan) == plan_content(offline_plans[key]), key
    assert len(live_plans) >= len(offline_plans) - 1  # one tick may land on another frame


def _by_stamp(plans: Any) -> Dict[Any, Dict[str, Any]]:
    out: Dict[Any, Dict[str, Any]] = {}
    for plan in plans:
        stamp = stamp_ns_of(plan)
        occurrence = sum(1 for s, _ in out if s == stamp)
        out[(stamp, occurrence)] = plan
    return out
