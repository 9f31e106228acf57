"""Decode only the camera frames the planner can ever see: what makes replay fast.

The node decodes every frame in its callback and the frame buffer then keeps only those
sampled at the model fps (2-4 of a 30 fps camera). Offline, decoding 720p frames that are
thrown away right after would bound the replay at a few times real time. The buffer's
decisions depend on stamps only, so a *shadow* ``CameraBuffers`` with the same settings,
fed a 1x1 stand-in of every frame, tells in advance whether the real buffer will take a
frame: taken frames are decoded exactly as the node decodes them (same ``FrameIngest``,
same pixels, same request fingerprints); the others reach the real buffer as a stand-in
with the same stamp, camera and frame id, so its bookkeeping (sampling phase, duplicates,
time jumps) stays identical, and the stand-in is dropped there. A guard checks that no
stand-in was ever stored. When a frame the buffer would take cannot be decoded (the node
drops it before buffering), the shadow is out of step, so from then on every frame is
decoded, as the node does. A corrupt frame the buffer would have skipped anyway is not
noticed (the node would count it as bad input).

Depth images are never sampled by the buffer, but only the one nearest to a plan's newest
frame is used: they are buffered as stand-ins and decoded on first use
(:meth:`LazyIngest.real_depth`). A depth image that turns out undecodable at that point
counts as bad input, and the plan proceeds as without depth, where the node would have
picked the next nearest; ``--decode-all`` restores the node's eager behaviour exactly.
"""

from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from cosmos_planner.errors import ImageDecodeError, PlannerError
from cosmos_planner.frames.buffer import CameraBuffers
from cosmos_planner.frames.ingest import FrameIngest
from cosmos_planner.frames.types import DepthFrame, Frame

#: ``FrameIngest.image`` / ``.compressed``: (message, camera, stamp_ns, frame_id) -> Frame.
Decoder = Callable[[Any, str, Optional[int], Optional[str]], Frame]

_STAND_IN = np.zeros((1, 1, 3), np.uint8)
_STAND_IN.setflags(write=False)
_DEPTH_STAND_IN = np.full((1, 1), np.nan, np.float32)
_DEPTH_STAND_IN.setflags(write=False)


def _stamp_ns(msg: Any) -> int:
    stamp = msg.header.stamp
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def is_stand_in(frame: object) -> bool:
    """Tell whether ``frame`` is one of this module's placeholder frames or depth images."""
    image = getattr(frame, 'image', None)
    if image is None:
        image = getattr(frame, 'depth_m', None)
    return image is _STAND_IN or image is _DEPTH_STAND_IN


class LazyIngest:
    """A ``FrameIngest`` look-alike that decodes only frames the buffer will take.

    Pass it to ``SensorInputs`` instead of the real ingest; ``shadow`` is a second
    ``CameraBuffers`` built with the same options as the real one (``make_buffers``).
    """

    def __init__(self, ingest: FrameIngest, shadow: CameraBuffers,
                 real_buffers: CameraBuffers) -> None:
        self.ingest = ingest
        self.shadow = shadow
        self.real = real_buffers
        self.decoded = 0
        self.skipped = 0
        self._depth_raw: Dict[Tuple[str, int], Any] = {}
        self._depth_real: Dict[Tuple[str, int], Optional[DepthFrame]] = {}
        self.bad_depth = 0
        #: Decode every frame (``--decode-all``, or after an undecodable frame was taken).
        self.eager = False

    # -- colour -------------------------------------------------------------------------------
    def _take(self, msg: Any, camera: str, stamp_ns: Optional[int],
              frame_id: Optional[str]) -> Tuple[bool, int, str]:
        stamp = _stamp_ns(msg) if stamp_ns is None else stamp_ns
        fid = msg.header.frame_id if frame_id is None else frame_id
        outcome = self.shadow.push(Frame(camera, stamp, _STAND_IN, (1, 1), fid))
        return outcome.result.added, stamp, fid

    def image(self, msg: Any, camera: str, stamp_ns: Optional[int] = None,
              frame_id: Optional[str] = None) -> Frame:
        """Decode a raw image the buffer will take; otherwise return a stand-in."""
        return self._frame(self.ingest.image, msg, camera, stamp_ns, frame_id)

    def compressed(self, msg: Any, camera: str, stamp_ns: Optional[int] = None,
                   frame_id: Optional[str] = None) -> Frame:
        """Decode a compressed image the buffer will take; otherwise return a stand-in."""
        return self._frame(self.ingest.compressed, msg, camera, stamp_ns, frame_id)

    def _frame(self, decode: Decoder, msg: Any, camera: str, stamp_ns: Optional[int],
               frame_id: Optional[str]) -> Frame:
        if self.eager:
            self.decoded += 1
            return decode(msg, camera, stamp_ns, frame_id)
        take, stamp, fid = self._take(msg, camera, stamp_ns, frame_id)
        if not take:
            self.skipped += 1
            return Frame(camera, stamp, _STAND_IN, (1, 1), fid)
        self.decoded += 1
        try:
            return decode(msg, camera, stamp, fid)
        except Exception:
            # The node never buffers an undecodable frame but the shadow already took it:
            # from here on decode everything, as the node does (the real buffer is right).
            self.eager = True
            raise

    # -- depth --------------------------------------------------------------------------------
    def depth(self, msg: Any, camera: str, stamp_ns: Optional[int] = None,
              frame_id: Optional[str] = None) -> DepthFrame:
        """Keep the message; buffer a stand-in (decoded when a plan needs it)."""
        stamp = _stamp_ns(msg) if stamp_ns is None else stamp_ns
        fid = msg.header.frame_id if frame_id is None else frame_id
        stand_in = DepthFrame(camera, stamp, _DEPTH_STAND_IN, fid)
        self.shadow.push_depth(stand_in)
        self._depth_raw[(camera, stamp)] = msg
        return stand_in

    def real_depth(self, depth: Optional[DepthFrame]) -> Optional[DepthFrame]:
        """Decode a buffered depth stand-in (cached); None when it cannot be decoded."""
        if depth is None or not is_stand_in(depth):
            return depth
        key = (depth.camera, depth.stamp_ns)
        if key not in self._depth_real:
            msg = self._depth_raw.get(key)
            try:
                self._depth_real[key] = (None if msg is None else self.ingest.depth(
                    msg, depth.camera, depth.stamp_ns, depth.frame_id))
            except (ImageDecodeError, PlannerError):
                self.bad_depth += 1
                self._depth_real[key] = None
        return self._depth_real[key]

    def prune(self, camera: str, older_than_ns: int) -> None:
        """Forget raw depth messages the buffer can no longer hold (bounded memory)."""
        for key in [k for k in self._depth_raw if k[0] == camera and k[1] < older_than_ns]:
            del self._depth_raw[key]
            self._depth_real.pop(key, None)

    def check(self, camera: str) -> None:
        """Raise if the real buffer ever kept a stand-in (its rules changed under us)."""
        clip = self.real.snapshot(camera)
        if clip is not None and any(is_stand_in(f) for f in clip.frames):
            raise RuntimeError(
                'the frame buffer kept a frame the replay predicted it would skip; '
                're-run with --decode-all and report this')


class LazyMessage:
    """A recorded message whose header is read from the CDR bytes; the rest on demand.

    Deciding whether a frame is needed takes only its stamp, so most frames of a 30 fps
    camera are never deserialized. Any other attribute deserializes the whole message once
    (with the bag's typestore) and is then read from it, so decoders that read fields by
    name (``FrameIngest``) work unchanged.
    """

    __slots__ = ('_decode', '_msg', 'header')

    def __init__(self, head: bytes, decode: Callable[[], Any]) -> None:
        """``head``: the first bytes of the CDR payload (the header); ``decode``: the rest."""
        self._decode = decode
        self._msg: Any = None
        self.header = peek_header(head) or self._full().header

    def _full(self) -> Any:
        if self._msg is None:
            self._msg = self._decode()
        return self._msg

    def __getattr__(self, name: str) -> Any:
        return getattr(self._full(), name)


def peek_header(raw: bytes) -> Optional[Any]:
    """Read ``std_msgs/Header`` (the first field of images and camera infos) from CDR.

    Returns None when the bytes do not look like a CDR message starting with a header, so
    the caller falls back to full deserialization (and its clear error).
    """
    import struct
    from types import SimpleNamespace

    if len(raw) < 16 or raw[0] != 0 or raw[1] not in (0, 1):
        return None
    endian = '<' if raw[1] == 1 else '>'
    sec, nanosec, length = struct.unpack_from(endian + 'iII', raw, 4)
    if length < 1 or 16 + length > len(raw) or nanosec >= 1_000_000_000:
        return None
    try:
        frame_id = raw[16:16 + length - 1].decode('utf-8')
    except UnicodeDecodeError:
        return None
    return SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nanosec), frame_id=frame_id)
