"""Generate rosbag2 bags of a synthetic tabletop scene, for tests and benchmarks.

No real recording can be shipped with the package, and the replay, the player and the node
must be exercised on every input kind a robot produces: raw and JPEG images, camera_info,
registered depth (32FC1 metres or 16UC1 millimetres), tasks on ``~/task``, in sqlite3 and
MCAP storage. The scene is deterministic (a top-down camera over a table with a red cube
that slides towards a blue bowl), so equal specs give byte-identical message payloads.

Stamping: frame ``k`` has header stamp ``start + offset + k / fps`` and is logged (bag time,
what ``/clock`` replays) ``latency`` later, like a camera driver whose images reach the
recorder after transport. Messages are written with ``rosbags`` only (no rclpy), so the
bags are also an independent check of the rclpy-based readers.
"""

from dataclasses import dataclass, field
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, TYPE_CHECKING, Union

import numpy as np

from cosmos_planner.bag.writer import BagWriter

if TYPE_CHECKING:  # rosbags is imported when a scene is written
    from rosbags.typesys.store import Typestore

#: Default topic of tasks, as the node subscribes it (``~/task`` of node cosmos_planner).
TASK_TOPIC = '/cosmos_planner/task'
TABLE_DEPTH_M = 0.8
CUBE_HEIGHT_M = 0.05


@dataclass(frozen=True)
class SceneSpec:
    """What to put in a generated bag; every field has a test-friendly default."""

    width: int = 160
    height: int = 120
    fps: float = 5.0
    duration_s: float = 3.0
    #: Bag start in ns (100 s: like sim time, well clear of zero).
    start_ns: int = 100_000_000_000
    #: Header stamp of the first frame after ``start_ns``.
    frame_offset_s: float = 0.05
    #: Log time minus header stamp of camera messages (transport delay).
    latency_s: float = 0.01
    cameras: Tuple[str, ...] = ('front',)
    #: 'raw', 'compressed' or 'both'.
    image: str = 'raw'
    encoding: str = 'rgb8'
    #: Extra bytes at the end of each raw image row (tests ``step`` handling).
    row_padding: int = 0
    #: None, '32FC1' or '16UC1'.
    depth: Optional[str] = '32FC1'
    camera_info: bool = True
    #: (log time after start in seconds, text) for each task message.
    tasks: Tuple[Tuple[float, str], ...] = ((0.5, 'put the red cube in the blue bowl'),)
    task_topic: str = TASK_TOPIC
    storage: str = 'mcap'
    version: int = 9
    #: Typestore (message definitions) the bag is written with: humble, jazzy, kilted, ...
    distro: str = 'kilted'
    jpeg_quality: int = 90
    horizontal_fov_deg: float = 60.0


@dataclass
class SceneInfo:
    """What was written: topics per camera and message counts, for assertions."""

    path: Path
    spec: SceneSpec
    topics: Dict[str, str] = field(default_factory=dict)
    counts: Dict[str, int] = field(default_factory=dict)
    frame_stamps_ns: List[int] = field(default_factory=list)

    def image_topic(self, camera: Optional[str] = None, compressed: bool = False) -> str:
        cam = camera or self.spec.cameras[0]
        return f'/{cam}/image_raw' + ('/compressed' if compressed else '')


def camera_topics(camera: str) -> Dict[str, str]:
    """Topic names of one camera, following image_transport conventions."""
    return {'image': f'/{camera}/image_raw',
            'compressed': f'/{camera}/image_raw/compressed',
            'camera_info': f'/{camera}/camera_info',
            'depth': f'/{camera}/depth/image_raw'}


def intrinsics(spec: SceneSpec) -> np.ndarray:
    """3x3 pinhole K of the scene camera (square pixels, principal point at the centre)."""
    f = spec.width / (2.0 * math.tan(math.radians(spec.horizontal_fov_deg) / 2.0))
    return np.array([[f, 0.0, (spec.width - 1) / 2.0],
                     [0.0, f, (spec.height - 1) / 2.0],
                     [0.0, 0.0, 1.0]])


def render(spec: SceneSpec, t_s: float, camera_index: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """RGB uint8 HxWx3 and depth float32 metres of the scene at time ``t_s``."""
    w, h = spec.width, spec.height
    rgb = np.empty((h, w, 3), np.uint8)
    rgb[:] = (150, 120, 90)  # wooden table
    rgb[:, : max(1, w // 40)] = (90, 70, 50)  # table edge, breaks symmetry
    depth = np.full((h, w), TABLE_DEPTH_M, np.float32)
    side = max(4, w // 10)
    bowl = (int(0.72 * w), int(0.55 * h) + 3 * camera_index)
    yy, xx = np.ogrid[:h, :w]
    ring = (xx - bowl[0]) ** 2 + (yy - bowl[1]) ** 2
    rgb[ring <= (side * 0.9) ** 2] = (40, 60, 200)
    rgb[ring <= (side * 0.6) ** 2] = (70, 90, 230)
    # The cube slides along x over the clip, so consecutive frames differ.
    frac = min(1.0, max(0.0, t_s / max(spec.duration_s, 1e-6)))
    cx = int((0.2 + 0.35 * frac) * w)
    cy = int(0.45 * h)
    x0, y0 = max(0, cx - side // 2), max(0, cy - side // 2)
    rgb[y0:y0 + side, x0:x0 + side] = (210, 30, 30)
    depth[y0:y0 + side, x0:x0 + side] = TABLE_DEPTH_M - CUBE_HEIGHT_M
    depth[:2, :2] = np.nan  # a few unknown pixels, like a real sensor
    return rgb, depth


def _stamp(ts: 'Typestore', stamp_ns: int) -> Any:  # a rosbags message
    time_cls = ts.types['builtin_interfaces/msg/Time']
    return time_cls(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)


def _header(ts: 'Typestore', stamp_ns: int, frame_id: str) -> Any:  # a rosbags message
    header_cls = ts.types['std_msgs/msg/Header']
    return header_cls(stamp=_stamp(ts, stamp_ns), frame_id=frame_id)


def image_msg(ts: 'Typestore', stamp_ns: int, frame_id: str, rgb: np.ndarray, encoding: str,
              row_padding: int = 0) -> object:
    """Build a rosbags sensor_msgs/Image of ``rgb`` in ``encoding`` (rgb8, bgr8, ...)."""
    import cv2

    if encoding == 'rgb8':
        pix = rgb
    elif encoding == 'bgr8':
        pix = rgb[..., ::-1]
    elif encoding == 'rgba8':
        pix = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    elif encoding == 'mono8':
        pix = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    else:
        raise ValueError(f'scene images support rgb8, bgr8, rgba8, mono8, not {encoding}')
    h, w = pix.shape[:2]
    rows = np.ascontiguousarray(pix).reshape(h, -1)
    if row_padding:
        rows = np.hstack([rows, np.zeros((h, row_padding), np.uint8)])
    cls = ts.types['sensor_msgs/msg/Image']
    return cls(header=_header(ts, stamp_ns, frame_id), height=h, width=w, encoding=encoding,
               is_bigendian=0, step=rows.shape[1], data=rows.reshape(-1).copy())


def compressed_msg(ts: 'Typestore', stamp_ns: int, frame_id: str, rgb: np.ndarray,
                   quality: int = 90) -> object:
    """Build a rosbags CompressedImage (JPEG), format as image_transport writes it."""
    import cv2

    ok, buf = cv2.imencode('.jpg', rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError('JPEG encoding failed')
    cls = ts.types['sensor_msgs/msg/CompressedImage']
    return cls(header=_header(ts, stamp_ns, frame_id), format='rgb8; jpeg compressed bgr8',
               data=np.asarray(buf, np.uint8).reshape(-1))


def depth_msg(ts: 'Typestore', stamp_ns: int, frame_id: str, depth_m: np.ndarray,
              encoding: str) -> object:
    """Build a depth Image: 32FC1 metres (NaN unknown) or 16UC1 millimetres (0 unknown)."""
    if encoding == '32FC1':
        pix = depth_m.astype('<f4')
    elif encoding == '16UC1':
        pix = np.where(np.isfinite(depth_m), np.round(depth_m * 1000.0), 0).astype('<u2')
    else:
        raise ValueError(f'scene depth supports 32FC1 and 16UC1, not {encoding}')
    h, w = pix.shape
    cls = ts.types['sensor_msgs/msg/Image']
    return cls(header=_header(ts, stamp_ns, frame_id), height=h, width=w, encoding=encoding,
               is_bigendian=0, step=w * pix.itemsize,
               data=np.frombuffer(pix.tobytes(), np.uint8).copy())


def camera_info_msg(ts: 'Typestore', stamp_ns: int, frame_id: str, spec: SceneSpec) -> object:
    """Build the rosbags CameraInfo of the scene camera (no distortion)."""
    k = intrinsics(spec)
    p = np.zeros((3, 4))
    p[:, :3] = k
    roi_cls = ts.types['sensor_msgs/msg/RegionOfInterest']
    cls = ts.types['sensor_msgs/msg/CameraInfo']
    return cls(header=_header(ts, stamp_ns, frame_id), height=spec.height, width=spec.width,
               distortion_model='plumb_bob', d=np.zeros(5), k=k.reshape(-1),
               r=np.eye(3).reshape(-1), p=p.reshape(-1), binning_x=0, binning_y=0,
               roi=roi_cls(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))


def string_msg(ts: 'Typestore', text: str) -> object:
    return ts.types['std_msgs/msg/String'](data=text)


def frame_stamps(spec: SceneSpec) -> List[int]:
    """Header stamps (ns) of the scene's frames."""
    period_ns = int(round(1e9 / spec.fps))
    n = int(math.floor(spec.duration_s * spec.fps + 1e-9))
    first = spec.start_ns + int(round(spec.frame_offset_s * 1e9))
    return [first + k * period_ns for k in range(n)]


def write_scene_bag(path: Union[str, Path], spec: SceneSpec = SceneSpec(),
                    force: bool = False) -> SceneInfo:
    """Write a bag of the scene to ``path`` (refuses an existing path unless ``force``)."""
    info = SceneInfo(path=Path(path), spec=spec)
    latency_ns = int(round(spec.latency_s * 1e9))
    from cosmos_planner.bag.reader import store_for

    with BagWriter(path, storage=spec.storage, version=spec.version, force=force,
                   typestore=store_for(spec.distro)) as bag:
        ts = bag.typestore
        cams = []
        for idx, cam in enumerate(spec.cameras):
            topics = camera_topics(cam)
            frame_id = f'{cam}_camera_optical_frame'
            if spec.image in ('raw', 'both'):
                bag.add_topic(topics['image'], 'sensor_msgs/msg/Image')
            if spec.image in ('compressed', 'both'):
                bag.add_topic(topics['compressed'], 'sensor_msgs/msg/CompressedImage')
            if spec.camera_info:
                bag.add_topic(topics['camera_info'], 'sensor_msgs/msg/CameraInfo')
            if spec.depth:
                bag.add_topic(topics['depth'], 'sensor_msgs/msg/Image')
            cams.append((idx, cam, topics, frame_id))
            info.topics.update({f'{cam}/{k}': v for k, v in topics.items()})
        if spec.tasks:
            bag.add_topic(spec.task_topic, 'std_msgs/msg/String')
            info.topics['task'] = spec.task_topic
        tasks = sorted((spec.start_ns + int(round(t_s * 1e9)), text) for t_s, text in spec.tasks)
        info.frame_stamps_ns = frame_stamps(spec)
        # Streamed in log-time order (a 720p bench bag does not fit in memory at once).
        # camera_info and depth precede the image of the same stamp, as drivers usually
        # publish them: a consumer that plans on an image finds its depth already buffered.
        for stamp in info.frame_stamps_ns:
            log = stamp + latency_ns
            while tasks and tasks[0][0] <= log:
                task_ns, text = tasks.pop(0)
                bag.write_msg(spec.task_topic, task_ns, string_msg(ts, text))
            t_s = (stamp - spec.start_ns) * 1e-9
            for idx, cam, topics, frame_id in cams:
                rgb, depth = render(spec, t_s, idx)
                if spec.camera_info:
                    bag.write_msg(topics['camera_info'], log,
                                  camera_info_msg(ts, stamp, frame_id, spec))
                if spec.depth:
                    bag.write_msg(topics['depth'], log,
                                  depth_msg(ts, stamp, frame_id, depth, spec.depth))
                if spec.image in ('raw', 'both'):
                    bag.write_msg(topics['image'], log, image_msg(
                        ts, stamp, frame_id, rgb, spec.encoding, spec.row_padding))
                if spec.image in ('compressed', 'both'):
                    bag.write_msg(topics['compressed'], log, compressed_msg(
                        ts, stamp, frame_id, rgb, spec.jpeg_quality))
        for task_ns, text in tasks:
            bag.write_msg(spec.task_topic, task_ns, string_msg(ts, text))
        info.counts = dict(bag.counts)
    return info
