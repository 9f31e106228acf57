"""Node-level faults: hostile inputs on every topic and a failing backend, node keeps going.

The node runs in its own process (real rclpy, real topics) with the TEST-ONLY ``faults``
backend: scripted failures first (unparseable text, fatal and retryable errors, an OOM, an
unreachable server, JSON with NaN), then every later generation answers a valid plan. This
process publishes, over the wire:

- broken inputs on every input topic, several of each kind: raw images with a short step, an
  unknown encoding, zero size, too little data; JPEGs that are corrupt, empty, or PNGs whose
  header claims 100k x 100k pixels; depth with a colour encoding or a lying size; CameraInfo
  with zero or NaN focal lengths; end-effector poses with NaN positions or a zero
  quaternion. Each one is counted under its own reason in ``/diagnostics``
  (``bad.<kind>``), exactly as many times as it was sent, and none becomes a frame;
- an all-NaN depth image (well-formed: it is counted as depth) which makes the next plan
  fail grounding with ``no_depth``, not crash;
- tasks through the scripted backend faults (each gets its own status on ``~/status`` and is
  counted in ``/diagnostics``), a task far over the length limit and an empty one;

and checks that the process stays alive, still plans afterwards, and that every plan it ever
published validates against ``config/plan_v1.schema.json`` with points inside the workspace.

Runtime: about 15-30 s (one node start).
Rerun: ``python -m pytest test/reliability/test_faults_node.py -q``.
"""

import json
import math
from pathlib import Path
import struct
import time
from typing import Any, Dict, Iterator, List
import zlib

from geometry_msgs.msg import PoseStamped
import jsonschema
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import String

import node_scene as scene
from ros_helpers import NODE, NodeHarness, wait_until

from cosmos_planner.resources import config_path
from cosmos_planner.ros.messages import make_header

POINTS = [(300, 375), (400, 500), (500, 625)]
ANSWER = json.dumps({'next_action': 'pick up the block', 'steps': ['grasp it'],
                     'trajectory': [{'point_2d': list(p)} for p in POINTS]})
#: One fault per generation, in order (comma-free specs: the parameter is a CSV list).
FAULTS = ['garbage', 'error', 'error:retryable', 'oom', 'unavailable',
          'garbage:[[NaN 1]]']
EXPECTED = ['parse_failed', 'backend_failed', 'backend_failed', 'backend_failed',
            'backend_failed', 'parse_failed']
WORKSPACE = ([-1.0, -1.0, -0.5], [1.0, 1.0, 1.5])
REPEAT = 4
PARAMS: Dict[str, Any] = {
    'backend.kind': 'faults', 'backend.faults': ','.join(FAULTS),
    'backend.faults_then': 'garbage:' + ANSWER,
    'cameras.names': ['cam0', 'cam1'], 'cameras.cam0.depth_topic': 'cam0/depth',
    'cameras.cam1.compressed': True, 'qos.reliable': True, 'qos.depth': 100,
    'buffer.fps': 0.0, 'buffer.max_frames': 2, 'planner.max_attempts': 1,
    'ee_pose.enabled': True, 'ee_pose.max_age_s': 60.0,
    'ground.mode': 'depth', 'ground.plane': list(scene.TABLE_PLANE),
    'target.frame': scene.TARGET_FRAME, 'target.translation': list(scene.CAM_TRANSLATION),
    'target.rotation_xyzw': [float(v) for v in scene.CAM_QUAT], 'tf.use_tf': False,
    'heights.approach_m': 0.05, 'heights.grasp_offset_m': 0.02, 'heights.carry_m': 0.05,
    'heights.place_m': 0.02, 'safety.max_step_m': 1.0,
    'safety.workspace_min': WORKSPACE[0], 'safety.workspace_max': WORKSPACE[1],
    'safety.max_plan_age_s': 5.0, 'diagnostics.period_s': 0.1, 'watchdog.timeout_s': 100.0,
}


class Harness(NodeHarness):
    """The shared node harness plus publishers on every input topic and ``~/plan``."""

    def __init__(self, tmp: Path) -> None:
        """Start the node and this process's peer."""
        super().__init__(tmp, PARAMS, status_depth=500, diagnostics_depth=100)
        p = self.peer
        self.pubs = {
            'cam0/image': p.publisher(Image, 'cam0/image', depth=100),
            'cam0/depth': p.publisher(Image, 'cam0/depth', depth=100),
            'cam0/camera_info': p.publisher(CameraInfo, 'cam0/camera_info', depth=100),
            'cam1/image/compressed': p.publisher(CompressedImage, 'cam1/image/compressed',
                                                 depth=100),
            'cam1/camera_info': p.publisher(CameraInfo, 'cam1/camera_info', depth=100),
            'ee_pose': p.publisher(PoseStamped, 'ee_pose', depth=100),
            'task': self.task_pub,
        }
        self.plans = p.collect(String, NODE + '/plan', depth=100)

    def start(self) -> None:
        """Wait until the node is active and subscribed to everything."""
        self.wait_active(list(self.pubs.values()))

    def good_frames(self, stamp_ns: int, depth: np.ndarray) -> None:
        """Publish valid frames of both cameras, depth and a pose; wait until buffered."""
        before = self.diag_value('camera cam0', 'frames')
        self.pubs['cam0/image'].publish(scene.raw_image(scene.colour_image(1), stamp_ns))
        self.pubs['cam0/depth'].publish(scene.depth_msg(depth, stamp_ns))
        self.pubs['cam1/image/compressed'].publish(
            scene.jpeg_image(scene.colour_image(2, 320, 240), stamp_ns))
        pose = PoseStamped(header=make_header(stamp_ns, scene.TARGET_FRAME))
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = 0.0, 0.0, 0.3
        pose.pose.orientation.w = 1.0
        self.pubs['ee_pose'].publish(pose)
        assert self.wait_diag_value('camera cam0', 'frames', before + 1) == before + 1


@pytest.fixture(scope='module')
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with Harness(tmp_path_factory.mktemp('faults_node')) as h:
        h.start()
        h.pubs['cam0/camera_info'].publish(scene.camera_info(0))
        h.pubs['cam1/camera_info'].publish(
            scene.camera_info(0, 'cam1_optical', 320, 240, distorted=False))
        assert wait_until(lambda: h.diag_value('camera cam0', 'camera_infos') >= 1
                          and h.diag_value('camera cam1', 'camera_infos') >= 1, 10)
        yield h


# --- broken messages ----------------------------------------------------------------------------

def _now() -> int:
    return time.time_ns()


def _short_step() -> Image:
    msg = scene.raw_image(scene.colour_image(3), _now(), pad=0)
    msg.step = scene.WIDTH * 3 - 6
    return msg


def _unknown_encoding() -> Image:
    msg = scene.raw_image(scene.colour_image(3), _now())
    msg.encoding = 'rgb9_unknown'
    return msg


def _zero_size() -> Image:
    return Image(header=make_header(_now(), scene.CAMERA_FRAME), height=0, width=0,
                 encoding='rgb8', step=0)


def _too_little_data() -> Image:
    msg = scene.raw_image(scene.colour_image(3), _now())
    msg.data = bytes(msg.data[:1000])
    return msg


def _corrupt_jpeg() -> CompressedImage:
    msg = scene.jpeg_image(scene.colour_image(4, 320, 240), _now())
    msg.data = bytes(msg.data[:300]) + b'\x00garbage' * 40
    return msg


def _empty_jpeg() -> CompressedImage:
    msg = scene.jpeg_image(scene.colour_image(4, 320, 240), _now())
    msg.data = b''
    return msg


def _png_bomb() -> CompressedImage:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack('>I', len(body)) + kind + body
                + struct.pack('>I', zlib.crc32(kind + body) & 0xFFFFFFFF))
    data = (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 100_000, 100_000,
                                                              8, 2, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(b'\x00' * 64)) + chunk(b'IEND', b''))
    msg = CompressedImage(header=make_header(_now(), 'cam1_optical'), format='png')
    msg.data = data
    return msg


def _depth_colour_encoding() -> Image:
    return scene.raw_image(scene.colour_image(5), _now())


def _depth_lying_size() -> Image:
    msg = scene.depth_msg(scene.depth_image(), _now())
    msg.height = msg.height + 7
    return msg


def _info_zero_focal() -> CameraInfo:
    info = scene.camera_info(_now())
    info.k = [0.0] * 9
    return info


def _info_nan_focal() -> CameraInfo:
    info = scene.camera_info(_now())
    k = list(info.k)
    k[0] = math.nan
    info.k = k
    return info


def _pose_nan() -> PoseStamped:
    pose = PoseStamped(header=make_header(_now(), scene.TARGET_FRAME))
    pose.pose.position.x = math.nan
    pose.pose.orientation.w = 1.0
    return pose


def _pose_zero_quaternion() -> PoseStamped:
    pose = PoseStamped(header=make_header(_now(), scene.TARGET_FRAME))
    pose.pose.orientation.w = 0.0
    return pose


#: (topic, message factory, diagnostics status suffix, counter key or None = any 'bad.*').
BROKEN: List[tuple] = [
    ('cam0/image', _short_step, 'camera cam0', 'bad.bad_size'),
    ('cam0/image', _unknown_encoding, 'camera cam0', 'bad.unknown_encoding'),
    ('cam0/image', _zero_size, 'camera cam0', 'bad.bad_size'),
    ('cam0/image', _too_little_data, 'camera cam0', 'bad.bad_size'),
    ('cam1/image/compressed', _corrupt_jpeg, 'camera cam1', 'bad.corrupt_compressed'),
    ('cam1/image/compressed', _empty_jpeg, 'camera cam1', 'bad.corrupt_compressed'),
    ('cam1/image/compressed', _png_bomb, 'camera cam1', 'bad.too_large'),
    ('cam0/depth', _depth_colour_encoding, 'camera cam0', 'bad.depth_unsupported_format'),
    ('cam0/depth', _depth_lying_size, 'camera cam0', 'bad.depth_bad_size'),
    ('cam0/camera_info', _info_zero_focal, 'camera cam0', 'bad.bad_camera_info'),
    ('cam0/camera_info', _info_nan_focal, 'camera cam0', 'bad.bad_camera_info'),
    ('ee_pose', _pose_nan, 'camera cam0', 'bad.bad_ee_pose'),
    ('ee_pose', _pose_zero_quaternion, 'camera cam0', 'bad.bad_ee_pose'),
]


def test_broken_inputs_are_counted_per_reason_and_never_become_frames(
        harness: Harness) -> None:
    h = harness
    frames0 = {c: h.diag_value(f'camera {c}', 'frames') for c in ('cam0', 'cam1')}
    depth0 = h.diag_value('camera cam0', 'depth_frames')
    for topic, make, where, key in BROKEN:
        before = h.diag_value(where, key)
        for _ in range(REPEAT):
            h.pubs[topic].publish(make())
        after = h.wait_diag_value(where, key, before + REPEAT)
        assert after == before + REPEAT, (make.__name__, key, before, after, h.diag()[
            f'cosmos_planner: {where}'])
        assert h.node.alive(), h.node.output()[-3000:]
    # One good message after the broken ones on each frame topic: a topic delivers in order,
    # so once these are counted every broken message before them was handled too, and a
    # broken one that had become a frame after all would show up as one frame too many.
    stamp = _now()
    h.pubs['cam0/image'].publish(scene.raw_image(scene.colour_image(1), stamp))
    h.pubs['cam0/depth'].publish(scene.depth_msg(scene.depth_image(), stamp))
    h.pubs['cam1/image/compressed'].publish(
        scene.jpeg_image(scene.colour_image(2, 320, 240), stamp))
    assert h.wait_diag_value('camera cam0', 'frames', frames0['cam0'] + 1) > frames0['cam0']
    assert h.wait_diag_value('camera cam1', 'frames', frames0['cam1'] + 1) > frames0['cam1']
    assert h.wait_diag_value('camera cam0', 'depth_frames', depth0 + 1) > depth0
    for cam in ('cam0', 'cam1'):
        assert h.diag_value(f'camera {cam}', 'frames') == frames0[cam] + 1
    assert h.diag_value('camera cam0', 'depth_frames') == depth0 + 1
    total = sum(1 for _ in BROKEN) * REPEAT
    bad = h.diag_value('camera cam0', 'bad_inputs') + h.diag_value('camera cam1', 'bad_inputs')
    assert bad >= total


def test_backend_faults_each_get_a_status_then_planning_resumes(harness: Harness) -> None:
    h = harness
    depth = scene.depth_image()
    h.good_frames(_now(), depth)
    statuses = [h.task(f'fault-{i}')['status'] for i in range(len(FAULTS))]
    assert statuses == EXPECTED
    h.good_frames(_now(), depth)
    ok = h.task('after-faults')
    assert ok['status'] == 'ok', ok
    # An all-NaN depth image is well-formed input: it is buffered, and grounding refuses it.
    h.good_frames(_now(), np.full_like(depth, np.nan))
    nan = h.task('nan-depth')
    assert nan['status'] == 'grounding_failed' and nan.get('check') == 'no_depth', nan
    # Oversized and empty tasks are refused with a status; the node keeps serving.
    before = h.status.count()
    long = h.task('too-long', 'x' * 20_000)
    assert long['status'] == 'bad_task', long
    assert 'at most' in long['reason'], long['reason']
    assert long['task'] == 'x' * 80 + '\u2026', long['task'][:100]
    # Refused in the callback: never accepted, so no request was started for it (an
    # 'accepted' would have arrived before the final status: one reliable publisher).
    assert h.status.wait_for(lambda m: json.loads(m.data).get('task_id') == 'too-long'
                             and json.loads(m.data).get('status') == 'accepted', 0,
                             start=before) is None
    before = h.status.count()
    h.pubs['task'].publish(String(data='   '))
    assert h.status.wait_for(lambda m: json.loads(m.data).get('status') == 'bad_task', 10,
                             start=before) is not None
    h.good_frames(_now(), depth)
    assert h.task('still-planning')['status'] == 'ok'
    outcomes = h.diag()['cosmos_planner: planner']
    assert int(outcomes.get('outcome.backend_failed', 0)) >= 4
    assert int(outcomes.get('outcome.parse_failed', 0)) >= 2
    assert h.node.alive()


def test_every_published_plan_is_valid_and_inside_the_workspace(harness: Harness) -> None:
    h = harness
    assert wait_until(lambda: h.plans.count() >= 2, 10), 'the other tests published no plan'
    schema = json.loads(Path(config_path('plan_v1.schema.json')).read_text())
    lo, hi = np.array(WORKSPACE[0]), np.array(WORKSPACE[1])
    for msg in h.plans.messages:
        plan = json.loads(msg.data)
        jsonschema.validate(plan, schema)
        for point in plan['trajectory']:
            if point['position'] is not None:
                pos = np.array(point['position'])
                assert np.all(np.isfinite(pos)) and np.all((pos >= lo) & (pos <= hi))
