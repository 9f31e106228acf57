"""Smoke test: the node with the real local backend (transformers) on the tiny checkpoint.

No weights can be downloaded here, so the local backend loads the tiny random Qwen3-VL
checkpoint (``backends.local.tiny_checkpoint``): the real loading, processor, constrained
decoding and generation path, with meaningless answers. What is checked is the plumbing: the
node configures with the model, a task produces exactly one final status for it, and if
that status is ``ok`` the published plan validates; whatever the random model says, nothing
unvalidated reaches ``~/plan``.

Runtime: about 20-40 s on 2 cores (torch and transformers import in the node process).
"""

import json
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
import pytest
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String

import node_scene as scene
from ros_helpers import claim_domain_id, NodeProcess, node_command, release_domain_id
from ros_helpers import RosPeer, write_params_file

pytest.importorskip('torch')
pytest.importorskip('transformers')

NODE = '/cosmos_planner'
FINAL = {'ok', 'parse_failed', 'grounding_failed', 'rejected', 'backend_failed'}


@pytest.fixture(scope='module')
def tiny_model() -> str:
    from cosmos_planner.backends.local.tiny_checkpoint import ensure_tiny_checkpoint
    return str(ensure_tiny_checkpoint())


def test_local_backend_on_the_tiny_checkpoint(tiny_model: str, tmp_path: Path) -> None:
    domain = claim_domain_id()
    params = {
        'backend.kind': 'local', 'backend.model': tiny_model, 'backend.device': 'cpu',
        'backend.dtype': 'float32', 'cameras.names': ['cam0'], 'qos.reliable': True,
        'buffer.max_frames': 1, 'prompt.preset': 'trajectory', 'planner.max_attempts': 1,
        'target.frame': '', 'ground.plane': [0.0, 0.0, 1.0, -1.0], 'tf.use_tf': False,
        'safety.max_plan_age_s': 3600.0, 'safety.max_step_m': 10.0,
        'safety.workspace_min': [-5.0, -5.0, 0.0], 'safety.workspace_max': [5.0, 5.0, 5.0],
    }
    params_file = write_params_file(tmp_path / 'params.yaml', 'cosmos_planner', params)
    cmd = node_command('planner_node', 'cosmos_planner.ros.planner_node') + [
        '--ros-args', '--params-file', str(params_file)]
    node = NodeProcess(cmd, domain, tmp_path / 'node.log').start()
    try:
        with RosPeer(domain) as peer:
            status = peer.collect(String, NODE + '/status')
            plans = peer.collect(String, NODE + '/plan')
            diagnostics = peer.collect(DiagnosticArray, '/diagnostics')
            image = peer.publisher(Image, 'cam0/image')
            info = peer.publisher(CameraInfo, 'cam0/camera_info')
            task = peer.publisher(String, NODE + '/task')
            state = peer.wait_for_lifecycle_state(NODE, 'active', 180, node.alive)
            assert state == 'active', node.output()[-3000:]
            for pub in (image, info, task):
                assert peer.wait_for_subscribers(pub), pub.topic_name
            info.publish(scene.camera_info(0))
            stamp = peer.node.get_clock().now().nanoseconds
            image.publish(scene.raw_image(scene.colour_image(3), stamp))
            assert peer.wait_for_publishers(NODE + '/plan')
            buffered = diagnostics.wait_for(lambda d: any(
                kv.key == 'frames' and kv.value == '1' for s in d.status for kv in s.values)
                and any(kv.key == 'camera_infos' and int(kv.value) >= 1
                        for s in d.status for kv in s.values), 20)
            assert buffered is not None, 'the frame or the camera model never reached the node'
            task.publish(String(data=json.dumps({'task': 'pick up the cube',
                                                 'task_id': 'tiny'})))
            final = status.wait_for(lambda m: json.loads(m.data).get('task_id') == 'tiny'
                                    and json.loads(m.data)['status'] in FINAL, 120)
            assert final is not None, node.output()[-3000:]
            data = json.loads(final.data)
            assert data['timings_ms']['generate'] > 0, data
            if data['status'] == 'ok':
                from cosmos_planner.model.plan_schema import PlanV1
                plan = PlanV1.model_validate_json(plans.wait_for(timeout=10).data)
                assert plan.task_id == 'tiny' and plan.trajectory
            else:
                assert plans.count() == 0
    finally:
        node.stop()
        release_domain_id(domain)
