"""Compressed image payloads: JPEG/PNG sniffing, header sizes, compressedDepth headers.

Why read headers ourselves: the ``format`` string of a ``CompressedImage`` is free text that
publishers fill in loosely, so the bytes decide what the payload is. Knowing the native size
before decoding lets ingest refuse decompression bombs, verify what OpenCV returns, and
decode large JPEGs directly at 1/2, 1/4 or 1/8 size (libjpeg scales in the DCT domain, so
this is both the first resampling step and 2-3x faster than a full decode).
"""

from dataclasses import dataclass
import struct
from typing import Optional

import numpy as np

from cosmos_planner.errors import ImageDecodeError

JPEG_MAGIC = b'\xff\xd8\xff'
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
#: image_transport's compressedDepth header: int32 format enum, float32 depthQuantA, B.
DEPTH_HEADER = struct.Struct('<iff')

# Start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) are not frames.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, RST0-7, SOI, EOI.
_STANDALONE = frozenset([0x01, *range(0xD0, 0xD9)])
_SOS = 0xDA
_EOI = 0xD9


@dataclass(frozen=True)
class PayloadInfo:
    """What the header of a compressed payload says, before any pixel is decoded."""

    codec: str              # 'jpeg' or 'png'
    width: int
    height: int
    channels: int           # 1 for grey, 3 for colour (PNG: 2 grey+alpha, 4 with alpha)
    bit_depth: int          # 8 or 16


def sniff_codec(data: np.ndarray) -> Optional[str]:
    """Return 'jpeg' or 'png' from the leading bytes, None for anything else."""
    head = data[:8].tobytes()
    if head.startswith(JPEG_MAGIC):
        return 'jpeg'
    if head == PNG_MAGIC:
        return 'png'
    return None


def read_payload_info(data: np.ndarray) -> PayloadInfo:
    """Parse the JPEG or PNG header of ``data`` (uint8); raise ``corrupt_compressed``."""
    codec = sniff_codec(data)
    if codec == 'jpeg':
        info = _jpeg_info(data)
    elif codec == 'png':
        info = _png_info(data)
    else:
        raise ImageDecodeError(
            'compressed payload is neither JPEG nor PNG (leading bytes '
            f'{data[:8].tobytes()!r})', kind='corrupt_compressed')
    if info.width < 1 or info.height < 1:
        raise ImageDecodeError(
            f'{codec} header declares an empty image {info.width}x{info.height}',
            kind='corrupt_compressed')
    return info


def _png_info(data: np.ndarray) -> PayloadInfo:
    if data.size < 33 or data[12:16].tobytes() != b'IHDR':
        raise ImageDecodeError('PNG payload has no IHDR chunk', kind='corrupt_compressed')
    width, height, depth, colour = struct.unpack('>IIBB', data[16:26].tobytes())
    channels = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(colour)
    if channels is None or depth not in (1, 2, 4, 8, 16):
        raise ImageDecodeError(
            f'PNG header has invalid colour type {colour} / bit depth {depth}',
            kind='corrupt_compressed')
    return PayloadInfo('png', width, height, channels, 16 if depth == 16 else 8)


def _jpeg_info(data: np.ndarray) -> PayloadInfo:
    raw = np.ascontiguousarray(data).data     # no copy: walk the segments in place
    pos = 2
    end = len(raw)
    while pos + 4 <= end:
        if raw[pos] != 0xFF:
            break
        marker = raw[pos + 1]
        if marker == 0xFF:          # fill byte before a marker
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker in (_SOS, _EOI):
            break
        (length,) = struct.unpack_from('>H', raw, pos + 2)
        if marker in _SOF_MARKERS:
            if pos + 10 > end or length < 8:
                break
            depth, height, width, components = struct.unpack_from('>BHHB', raw, pos + 4)
            return PayloadInfo('jpeg', width, height, components, 16 if depth > 8 else 8)
        if length < 2:
            break
        pos += 2 + length
    raise ImageDecodeError('JPEG payload has no readable frame header (SOF)',
                           kind='corrupt_compressed')


@dataclass(frozen=True)
class DepthPayload:
    """A compressedDepth payload split into its quantisation header and PNG bytes."""

    source_encoding: str        # '16UC1' or '32FC1' as the format string says
    quant_a: Optional[float]    # None when the payload has no header
    quant_b: Optional[float]
    png: np.ndarray


def split_compressed_depth(fmt: str, data: np.ndarray) -> DepthPayload:
    """Split image_transport's compressedDepth payload: 12-byte header, then PNG.

    The header is written in the publisher's native byte order, little-endian on every
    platform ROS 2 ships for. The RVL codec (``compressedDepth rvl``) is not supported.
    """
    encoding, _, rest = fmt.partition(';')
    if 'rvl' in rest.lower():
        raise ImageDecodeError(f'compressedDepth codec in {fmt!r} is not supported (PNG only)',
                               kind='unsupported_format')
    encoding = encoding.strip()
    if data.size > DEPTH_HEADER.size + 8 and sniff_codec(data[DEPTH_HEADER.size:]) == 'png':
        _, quant_a, quant_b = DEPTH_HEADER.unpack(data[:DEPTH_HEADER.size].tobytes())
        return DepthPayload(encoding, quant_a, quant_b, data[DEPTH_HEADER.size:])
    if sniff_codec(data) == 'png':
        return DepthPayload(encoding, None, None, data)
    raise ImageDecodeError('compressedDepth payload holds no PNG after its 12-byte header',
                           kind='corrupt_compressed')
