"""A synthetic camera scene for node tests, with grounding computed independently.

The node grounds with the core (OpenCV undistortion, ``Transform``, the pipeline). This
module recomputes the expected 3D points with its own numpy: a hand-written iterative
plumb_bob undistortion, a quaternion-to-matrix of its own and a ray/plane intersection, so a
test comparing the two catches a convention mistake in either (pixel centres, x/y order, the
TF direction, fx/fy swapped, the principal point, a missed distortion term).

The scene is deliberately awkward: a 400x240 image (not square), fx != fy, a principal
point far from the centre, five distortion coefficients, a camera pitched, rolled and yawed
above a sloped table, and a registered depth image of a *different* plane (so a test can
tell depth grounding from plane grounding).
"""

import json
import math
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

WIDTH, HEIGHT = 400, 240
FX, FY, CX, CY = 300.0, 280.0, 215.3, 110.7
DIST = [-0.12, 0.05, 0.001, -0.002, 0.01]
CAMERA_FRAME = 'cam0_optical'
TARGET_FRAME = 'world'
#: Camera optical frame in the target frame: above the table, pitched 20 deg off straight
#: down, yawed 15 deg.
CAM_TRANSLATION = (0.05, -0.02, 0.85)
#: Table plane (a, b, c, d), sloped: z = 0.1 x + 0.05 y.
TABLE_PLANE = (-0.1, -0.05, 1.0, 0.0)
#: The depth image shows this plane instead (3 cm lower), so depth != plane grounding.
DEPTH_PLANE = (-0.1, -0.05, 1.0, 0.03)


def _axis_quat(axis: Sequence[float], angle_deg: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    half = math.radians(angle_deg) / 2
    return np.array([*(axis * math.sin(half)), math.cos(half)])


def _qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array([aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw,
                     aw * bw - ax * bx - ay * by - az * bz])


CAM_QUAT = _qmul(_qmul(_axis_quat((0, 0, 1), 15.0), _axis_quat((1, 0, 0), 200.0)),
                 _axis_quat((0, 1, 0), 4.0))


def rotation_matrix(q: Sequence[float]) -> np.ndarray:
    """Rotation matrix of an (x, y, z, w) quaternion (written out, not from the core)."""
    x, y, z, w = np.asarray(q, dtype=float) / np.linalg.norm(q)
    return np.array([
        [w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z]])


def undistort(u: np.ndarray, v: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Normalised (x, y) of distorted pixels by fixed-point iteration of plumb_bob."""
    k1, k2, p1, p2, k3 = DIST
    xd, yd = (np.asarray(u, float) - CX) / FX, (np.asarray(v, float) - CY) / FY
    x, y = xd.copy(), yd.copy()
    for _ in range(200):
        r2 = x * x + y * y
        radial = 1 + k1 * r2 + k2 * r2 * r2 + k3 * r2 ** 3
        dx = 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        dy = p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        x, y = (xd - dx) / radial, (yd - dy) / radial
    return x, y


def plane_depth(u: np.ndarray, v: np.ndarray, plane: Sequence[float]) -> np.ndarray:
    """Camera z-depth at which the pixels' rays meet ``plane`` (given in the target frame)."""
    x, y = undistort(u, v)
    rays = np.stack([x, y, np.ones_like(x)], axis=-1)
    rot, origin = rotation_matrix(CAM_QUAT), np.asarray(CAM_TRANSLATION)
    normal, d = np.asarray(plane[:3], float), float(plane[3])
    dirs = rays @ rot.T
    return -(origin @ normal + d) / (dirs @ normal)


def pixel_centres(points_2d: Sequence[Tuple[float, float]]) -> Tuple[np.ndarray, np.ndarray]:
    """Model points (0-1000 from the image edges) to CameraInfo pixel coordinates.

    0 and 1000 are the outer edges of the image; CameraInfo (and OpenCV) put 0 at the centre
    of the first pixel, hence the half pixel.
    """
    pts = np.asarray(points_2d, float)
    return pts[:, 0] / 1000.0 * WIDTH - 0.5, pts[:, 1] / 1000.0 * HEIGHT - 0.5


def ground(points_2d: Sequence[Tuple[float, float]], plane: Sequence[float]) -> np.ndarray:
    """Target-frame points where the model points' pixels meet ``plane`` (N, 3)."""
    u, v = pixel_centres(points_2d)
    x, y = undistort(u, v)
    s = plane_depth(u, v, plane)
    rays = np.stack([x, y, np.ones_like(x)], axis=-1) * s[:, None]
    return rays @ rotation_matrix(CAM_QUAT).T + np.asarray(CAM_TRANSLATION)


def depth_image() -> np.ndarray:
    """Render the registered float32 depth (metres) of ``DEPTH_PLANE``."""
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH].astype(float)
    return plane_depth(u, v, DEPTH_PLANE).astype(np.float32)


def colour_image(seed: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """Draw a deterministic RGB test picture (gradients and a block for JPEG to keep)."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:height, 0:width]
    img = np.stack([(u * 255 // max(1, width - 1)), (v * 255 // max(1, height - 1)),
                    np.full_like(u, seed * 37 % 256)], axis=-1).astype(np.uint8)
    x0, y0 = int(rng.integers(0, width // 2)), int(rng.integers(0, height // 2))
    img[y0:y0 + height // 4, x0:x0 + width // 4] = rng.integers(0, 256, 3, dtype=np.uint8)
    return img


# --- ROS messages of the scene -------------------------------------------------------------

def camera_info(stamp_ns: int, frame_id: str = CAMERA_FRAME, width: int = WIDTH,
                height: int = HEIGHT, distorted: bool = True) -> Any:
    """Build the scene camera's CameraInfo (or an undistorted one of another size)."""
    from sensor_msgs.msg import CameraInfo
    from cosmos_planner.ros.messages import make_header
    info = CameraInfo(header=make_header(stamp_ns, frame_id), width=width, height=height)
    if distorted:
        info.distortion_model = 'plumb_bob'
        info.d = list(DIST)
        info.k = [FX, 0.0, CX, 0.0, FY, CY, 0.0, 0.0, 1.0]
    else:
        f = 0.8 * width
        info.distortion_model = 'plumb_bob'
        info.d = [0.0] * 5
        info.k = [f, 0.0, width / 2, 0.0, f, height / 2, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    k = info.k
    info.p = [k[0], 0.0, k[2], 0.0, 0.0, k[4], k[5], 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def raw_image(img: np.ndarray, stamp_ns: int, frame_id: str = CAMERA_FRAME,
              pad: int = 8, encoding: str = 'rgb8') -> Any:
    """``sensor_msgs/Image`` with ``pad`` bytes of row padding (step > width * 3)."""
    from sensor_msgs.msg import Image
    from cosmos_planner.ros.messages import make_header
    h, w = img.shape[:2]
    data = img[:, :, ::-1] if encoding == 'bgr8' else img
    rows = np.zeros((h, w * 3 + pad), np.uint8)
    rows[:, :w * 3] = data.reshape(h, w * 3)
    msg = Image(header=make_header(stamp_ns, frame_id), height=h, width=w,
                encoding=encoding, is_bigendian=0, step=w * 3 + pad)
    msg.data = rows.tobytes()
    return msg


def jpeg_image(img: np.ndarray, stamp_ns: int, frame_id: str = 'cam1_optical') -> Any:
    """``sensor_msgs/CompressedImage`` (JPEG) of an RGB picture."""
    import cv2
    from sensor_msgs.msg import CompressedImage
    from cosmos_planner.ros.messages import make_header
    ok, buf = cv2.imencode('.jpg', img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    msg = CompressedImage(header=make_header(stamp_ns, frame_id), format='rgb8; jpeg '
                          'compressed bgr8')
    msg.data = buf.tobytes()
    return msg


def depth_msg(depth: np.ndarray, stamp_ns: int, frame_id: str = CAMERA_FRAME) -> Any:
    """``sensor_msgs/Image`` 32FC1 (metres) of a depth array."""
    from sensor_msgs.msg import Image
    from cosmos_planner.ros.messages import make_header
    h, w = depth.shape
    msg = Image(header=make_header(stamp_ns, frame_id), height=h, width=w,
                encoding='32FC1', is_bigendian=0, step=w * 4)
    msg.data = np.ascontiguousarray(depth, dtype='<f4').tobytes()
    return msg


def compressed_depth_msg(depth_m: np.ndarray, stamp_ns: int,
                         frame_id: str = 'cam1_optical') -> Any:
    """``compressedDepth`` (image_transport: 12-byte header + 16-bit PNG, millimetres)."""
    import struct

    import cv2
    from sensor_msgs.msg import CompressedImage
    from cosmos_planner.ros.messages import make_header
    mm = np.clip(np.nan_to_num(depth_m * 1000.0), 0, 65535).astype(np.uint16)
    ok, png = cv2.imencode('.png', mm)
    assert ok
    msg = CompressedImage(header=make_header(stamp_ns, frame_id),
                          format='16UC1; compressedDepth png')
    msg.data = struct.pack('<iff', 0, 0.0, 0.0) + png.tobytes()
    return msg


# --- replay recordings -----------------------------------------------------------------------

def node_request(params: Dict[str, Any], messages: Sequence[Tuple[str, Any]],
                 task: str) -> Any:
    """Build the ``GenerationRequest`` the node builds for ``task`` after ``messages``.

    Built with the node's own config mapping, ingest, buffers and prompt builder from the
    same messages (``(topic, msg)``; topics ``NAME/image``, ``NAME/image/compressed``), so
    an answer recorded for it is what the node's replay backend finds.
    """
    from cosmos_planner.model import prompts
    from cosmos_planner.frames.ingest import FrameIngest
    from cosmos_planner.ros import messages as m
    from cosmos_planner.pipeline.node_config import node_config_from_values
    from cosmos_planner.pipeline.request import make_buffers

    values = dict(params)
    values.setdefault('backend.replay_path', 'unused.jsonl')
    cfg = node_config_from_values(values)
    ingest = FrameIngest(max_pixels=cfg.max_pixels)
    buffers = make_buffers(cfg)
    for topic, msg in messages:
        camera = topic.split('/')[0]
        if topic.endswith('/image'):
            buffers.push(m.frame_from_image_msg(msg, ingest, camera))
        elif topic.endswith('/image/compressed'):
            buffers.push(m.frame_from_compressed_msg(msg, ingest, camera))
    clip = buffers.snapshot(cfg.primary, context=list(cfg.context_cameras))
    return prompts.build_request(prompts.load_preset(cfg.preset), clip, task, cfg.reasoning)


def request_fingerprint(params: Dict[str, Any], messages: Sequence[Tuple[str, Any]],
                        task: str) -> str:
    """Compute the fingerprint the node computes for ``task`` after ``messages``."""
    return node_request(params, messages, task).fingerprint()


def write_recording(path: Path, entries: Sequence[Tuple[Any, str]]) -> Path:
    """Write a replay recording of (request, answer text) with ``backends.recording``.

    The recording module owns the format; writing through it means a change there cannot
    leave these tests replaying a format the node no longer reads.
    """
    from planner_helpers import write_recording as write
    return write(path, entries, model='recorded-test-model')


# --- JSON Schema (the subset the plan schema uses; jsonschema is not installed here) --------

def schema_errors(value: Any, schema: Dict[str, Any], root: Dict[str, Any],
                  where: str = '$') -> List[str]:
    """List the violations of ``schema`` by ``value``; empty when it validates.

    Covers what the plan schema uses: types, required, additionalProperties, const, enum,
    anyOf, items/prefixItems, min/maxItems and $ref.
    """
    if '$ref' in schema:
        name = schema['$ref'].split('/')[-1]
        return schema_errors(value, root['$defs'][name], root, where)
    if 'anyOf' in schema:
        if any(not schema_errors(value, s, root, where) for s in schema['anyOf']):
            return []
        return [f'{where}: matches none of anyOf']
    errors: List[str] = []
    types = {'object': dict, 'array': list, 'string': str, 'null': type(None),
             'boolean': bool}
    t = schema.get('type')
    if t == 'number':
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return [f'{where}: {value!r} is not a number']
    elif t == 'integer':
        if isinstance(value, bool) or not isinstance(value, int):
            return [f'{where}: {value!r} is not an integer']
    elif t is not None and not isinstance(value, types[t]):
        return [f'{where}: {value!r} is not {t}']
    if 'const' in schema and value != schema['const']:
        errors.append(f'{where}: {value!r} != const {schema["const"]!r}')
    if 'enum' in schema and value not in schema['enum']:
        errors.append(f'{where}: {value!r} not in {schema["enum"]}')
    if isinstance(value, dict):
        props = schema.get('properties', {})
        for key in schema.get('required', []):
            if key not in value:
                errors.append(f'{where}: missing required {key!r}')
        extra = schema.get('additionalProperties', True)
        for key, item in value.items():
            if key in props:
                errors += schema_errors(item, props[key], root, f'{where}.{key}')
            elif extra is False:
                errors.append(f'{where}: unexpected property {key!r}')
            elif isinstance(extra, dict):
                errors += schema_errors(item, extra, root, f'{where}.{key}')
    if isinstance(value, list):
        if 'minItems' in schema and len(value) < schema['minItems']:
            errors.append(f'{where}: fewer than {schema["minItems"]} items')
        if 'maxItems' in schema and len(value) > schema['maxItems']:
            errors.append(f'{where}: more than {schema["maxItems"]} items')
        prefix = schema.get('prefixItems', [])
        for i, item in enumerate(value):
            sub = prefix[i] if i < len(prefix) else schema.get('items')
            if sub:
                errors += schema_errors(item, sub, root, f'{where}[{i}]')
    return errors


def validate_plan_json(text: str, schema_path: Path) -> List[str]:
    """Validate a published plan with jsonschema when installed, else ``schema_errors``."""
    schema = json.loads(Path(schema_path).read_text())
    value = json.loads(text)
    try:
        import jsonschema
    except ImportError:
        return schema_errors(value, schema, schema)
    return [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(value)]
