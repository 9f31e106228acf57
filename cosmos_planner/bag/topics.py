"""Which bag topics are the cameras, their camera_info and depth, and the task.

Recorded bags name topics however the robot's drivers did (``/front/image_raw``,
``/camera/color/image_raw/compressed``, Isaac Sim's ``/rgb``). The replay asks for the image
topics (``--camera``, primary first) and finds the rest by image_transport conventions:
``camera_info`` beside the image (``/a/b/image_raw`` -> ``/a/b/camera_info``, then
``/a/camera_info``), depth only when named (``--depth``) or when exactly one depth-looking
``Image`` topic lives in the camera's namespace. With no ``--camera`` and exactly one colour
image topic in the bag, that one is used. Anything ambiguous or missing is a BagError that
lists what the bag holds.
"""

from dataclasses import dataclass
import re
from typing import Dict, List, Optional, Sequence

from cosmos_planner.bag.errors import BagError
from cosmos_planner.bag.reader import BagReader, TopicInfo

IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
STRING = 'std_msgs/msg/String'
_IMAGE_LEAVES = ('compressed', 'compresseddepth', 'image_raw', 'image_rect_color', 'image_color',
                 'image_rect', 'image', 'rgb', 'color')


@dataclass(frozen=True)
class CameraTopics:
    """One camera of the replay: its name (node parameter key) and its bag topics."""

    name: str
    image_topic: str
    compressed: bool
    info_topic: Optional[str]
    depth_topic: Optional[str] = None
    depth_compressed: bool = False


def _is_depth(topic: str) -> bool:
    return 'depth' in topic.lower()


def camera_name(topic: str, taken: Sequence[str] = ()) -> str:
    """Name a camera after its image topic (``/front/image_raw`` -> ``front``)."""
    parts = [p for p in topic.strip('/').split('/') if p]
    while len(parts) > 1 and parts[-1].lower() in _IMAGE_LEAVES:
        parts.pop()
    name = re.sub(r'[^A-Za-z0-9_]', '_', '_'.join(parts)) or 'camera'
    if name[0].isdigit():
        name = 'cam_' + name
    base, n = name, 2
    while name in taken:
        name, n = f'{base}_{n}', n + 1
    return name


def _namespace(topic: str) -> str:
    parts = [p for p in topic.strip('/').split('/') if p]
    while parts and parts[-1].lower() in _IMAGE_LEAVES:
        parts.pop()
    return '/' + '/'.join(parts) if parts else '/'


def _find_info(topic: str, topics: Dict[str, TopicInfo]) -> Optional[str]:
    parts = topic.rstrip('/').split('/')
    for cut in range(len(parts) - 1, 0, -1):
        cand = '/'.join(parts[:cut]) + '/camera_info'
        if cand in topics and topics[cand].msgtype == CAMERA_INFO:
            return cand
    return None


def _find_depth(image_topic: str, topics: Dict[str, TopicInfo]) -> Optional[str]:
    ns = _namespace(image_topic)
    found = [t for t, i in topics.items() if t.startswith(ns.rstrip('/') + '/')
             and _is_depth(t) and i.msgtype in (IMAGE, COMPRESSED)]
    return found[0] if len(found) == 1 else None


def _listing(topics: Dict[str, TopicInfo]) -> str:
    return ', '.join(f'{t} ({i.msgtype})' for t, i in topics.items()) or 'no topics'


def resolve_cameras(reader: BagReader, cameras: Sequence[str] = (),
                    depth: Sequence[str] = (), infos: Sequence[str] = ()) -> List[CameraTopics]:
    """Find the replay's cameras, primary first; BagError when a topic is missing/ambiguous.

    ``depth`` and ``infos`` pair with ``cameras`` by position (fewer entries: auto for the
    rest; an empty string means "none" for depth).
    """
    topics = reader.topics
    images = [t for t, i in topics.items() if i.msgtype in (IMAGE, COMPRESSED)
              and not _is_depth(t)]
    if not cameras:
        if len(images) != 1:
            raise BagError(
                f'bag {reader.path} has {len(images)} colour image topics '
                f'({", ".join(images) or "none"}); name the camera(s) with --camera '
                f'(bag holds: {_listing(topics)})', kind='missing_topic')
        cameras = images
    out: List[CameraTopics] = []
    for idx, topic in enumerate(cameras):
        msgtype = reader.require(topic, (IMAGE, COMPRESSED))
        info = infos[idx] if idx < len(infos) and infos[idx] else _find_info(topic, topics)
        if info is not None:
            reader.require(info, (CAMERA_INFO,))
        if idx < len(depth):
            dtopic: Optional[str] = depth[idx] or None
        else:
            dtopic = _find_depth(topic, topics)
        dcompressed = False
        if dtopic:
            dcompressed = reader.require(dtopic, (IMAGE, COMPRESSED)) == COMPRESSED
        out.append(CameraTopics(camera_name(topic, [c.name for c in out]), topic,
                                msgtype == COMPRESSED, info, dtopic, dcompressed))
    return out


def task_topic_of(reader: BagReader, topic: str) -> Optional[str]:
    """``topic`` when the bag records tasks on it (std_msgs/String), else None."""
    info = reader.topics.get(topic)
    if info is None:
        return None
    if info.msgtype != STRING:
        raise BagError(f'task topic {topic} in {reader.path} has type {info.msgtype}; '
                       f'expected {STRING}', kind='wrong_type')
    return topic
