"""Index-driven reading of rosbag2 storage: copy only the payload bytes somebody asks for.

Why: a raw 720p camera records 2.7 MB a frame (4.6 MB with 16UC1 depth), but the replay
needs the whole payload of only the frames its buffer keeps (2-4 of 30 a second), the
depth images a plan uses, the frames of the annotated video and the inputs it copies. Every
other frame contributes its header alone (stamp and frame id: sampling, duplicates, time
jumps, camera rates). ``rosbags`` reads every payload in full, through ``BytesIO`` copies for
MCAP, which made a raw bag replay at 1.5x real time (issue 16). Both storages index where
each payload lies, so a payload can be left unread until it is used:

* MCAP: ``rosbags`` already parses the summary on open (chunk indexes with the offsets of
  each chunk's message-index records) and keeps it on its storage reader (``chunks``); this
  module reads the message-index records of a chunk (16 bytes a message), then the message
  records it points at with ``os.pread``: the 31-byte record header (checked against the
  index: opcode, channel, log time, size) and ``HEAD_BYTES`` of payload for lazy topics, the
  whole payload for the others. Compressed chunks (zstd, lz4) must be decompressed whole
  (``rosbags``' own ``decompress``, CRC checked), so there only the copies and the
  deserialization are saved. Chunks are opened in the order ``rosbags`` opens them (merged
  by log time with a start sentinel, ties by chunk offset, then place in the chunk), so
  messages come in the same order and damage surfaces mid-stream, after the messages
  before it were delivered. An MCAP without chunk indexes is read in full by ``rosbags``.
* sqlite3: the query ``rosbags`` runs (same join, filter and ``ORDER BY``, hence the same
  query plan and the same order of equal timestamps) on ``rosbags``' own ``apsw``
  connection, selecting the row id instead of the blob of lazy topics; the header comes from
  SQLite's incremental blob I/O (``blob_open``/``reopen``, which reads only the first page:
  ``substr(data, 1, N)`` would load the whole blob first), the payload on first use from
  the same blob API.

What was chosen and why: ``rosbags`` stays the reader (typestores, metadata, every bag it
can open, and the full read for what this module does not cover: per-message compression,
time ranges, unchunked MCAP; a split bag's files are read one after the other, as
``rosbags`` does) and this module uses its parsed index and its connections instead of a
second parser: the ``mcap`` package offers the same summary but, like ``rosbags``, reads
whole chunks when iterating, and would parse the summary a second time. ``rosbags`` is
pinned below 0.12 (``setup.py``); a test checks that the index path is taken, so an upgrade
that moves these attributes fails loudly instead of slowing down. Not checked here: the CRC
of uncompressed MCAP chunks (it would take every byte); damage inside a payload that is
never read goes unnoticed, as a corrupt frame the buffer skips does (see
:mod:`cosmos_planner.bag.lazy_ingest`).
"""

from contextlib import suppress
from dataclasses import dataclass
import heapq
import os
from pathlib import Path
import struct
from typing import Any, Callable, Collection, Dict, Iterator, List, Optional, Tuple

#: Payload bytes read up front for a lazy topic: a CDR header (stamp, frame id) fits with
#: room for a frame id of 200+ characters; a longer one falls back to the full payload.
HEAD_BYTES = 256
#: First read of a message that is read whole; larger payloads take a second read.
_SMALL = 1024
#: MCAP message record header: opcode, record length, channel, sequence, log and publish time.
_RECORD = struct.Struct('<BQHIQQ')
_INDEX_HEADER = struct.Struct('<BQHI')
_MESSAGE_OP = 0x05
_MESSAGE_INDEX_OP = 0x07

Loader = Callable[[], bytes]


class IndexMismatch(ValueError):
    """The storage's index and the records it points at disagree (a damaged file)."""


@dataclass
class Entry:
    """One message located by the index: its payload, or its head and a loader."""

    connection: Any
    log_time_ns: int
    head: bytes
    raw: Optional[bytes]
    load: Optional[Loader]


class IndexedBag:
    """The index-driven reader of an open ``rosbags`` reader; ``close`` with the reader.

    ``IndexedBag.of(reader)`` returns None when the bag needs the full read (per-message
    compression, a storage plugin this module does not know, an MCAP without chunk index).
    """

    def __init__(self, storages: List[Any]) -> None:
        self._storages = storages
        self._sources: Dict[int, '_Source'] = {}
        #: Bytes requested from the storage files so far (index, heads and payloads).
        self.read_bytes = 0

    @classmethod
    def of(cls, reader: Any) -> Optional['IndexedBag']:
        """Wrap an open ``rosbags.rosbag2.Reader``; None when its storage needs the full read."""
        storage = getattr(reader, 'storage', None)
        if storage is None:
            return None
        if hasattr(storage, 'storages'):  # a bag directory
            if reader.compression_mode == 'message':
                return None  # every payload is compressed on its own: no header to peek
            storages = list(storage.storages)
        else:
            storages = [storage]
        for item in storages:
            kind = type(item).__name__
            if kind == 'McapReader' and getattr(item, 'chunks', None):
                continue
            if kind == 'Sqlite3Reader' and getattr(item, 'dbconn', None) is not None:
                continue
            return None
        return cls(storages)

    def messages(self, connections: Collection[Any],
                 lazy_topics: Collection[str]) -> Iterator[Entry]:
        """Yield messages of ``connections`` in the order ``rosbags`` yields them.

        Storages (files of a split bag) follow each other, as in ``rosbags``. Payloads of
        ``lazy_topics`` are read when their loader is called; the others are read now.
        """
        for storage in self._storages:
            connmap = _connection_map(storage, connections)
            if not connmap:
                continue
            source = self._source(storage)
            lazy = {cid for cid, conn in connmap.items() if conn.topic in lazy_topics}
            yield from source.messages(connmap, lazy)

    def _source(self, storage: Any) -> '_Source':
        key = id(storage)
        if key not in self._sources:
            if type(storage).__name__ == 'McapReader':
                self._sources[key] = _McapSource(self, storage)
            else:
                self._sources[key] = _SqliteSource(self, storage)
        return self._sources[key]

    def close(self) -> None:
        """Release file descriptors and blob handles; loaders fail afterwards."""
        sources, self._sources = self._sources, {}
        for source in sources.values():
            source.close()


def _connection_map(storage: Any, connections: Collection[Any]) -> Dict[int, Any]:
    """Storage connection id -> reader connection, matched as ``rosbags`` matches them."""
    out: Dict[int, Any] = {}
    for x in storage.connections:
        for y in connections:
            if (y.topic == x.topic and y.msgtype == x.msgtype and y.ext == x.ext
                    and (not x.digest or not y.digest or y.digest == x.digest)):
                out[x.id] = y
                break
    return out


class _Source:
    def __init__(self, bag: IndexedBag) -> None:
        self.bag = bag

    def messages(self, connmap: Dict[int, Any], lazy: Collection[int]) -> Iterator[Entry]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _McapSource(_Source):
    """Message records of one MCAP file, located through its chunk and message indexes."""

    def __init__(self, bag: IndexedBag, storage: Any) -> None:
        super().__init__(bag)
        self.path = Path(storage.path)
        self.chunks = list(storage.chunks)
        self._fd: Optional[int] = os.open(self.path, os.O_RDONLY)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _pread(self, size: int, offset: int) -> bytes:
        if self._fd is None:
            raise IndexMismatch(f'{self.path} is closed')
        data = os.pread(self._fd, size, offset)
        self.bag.read_bytes += len(data)
        if len(data) != size:
            raise IndexMismatch(f'{self.path} ends at {offset + len(data)}: the index points '
                                f'at {size} bytes from offset {offset}')
        return data

    def messages(self, connmap: Dict[int, Any], lazy: Collection[int]) -> Iterator[Entry]:
        # rosbags: heapq.merge of one generator a chunk, each yielding a start sentinel
        # first; equal log times are ordered by chunk offset, then by place in the chunk.
        streams = [self._chunk(chunk, connmap, lazy) for chunk in self.chunks
                   if any(chunk.channel_count.get(cid, 0) for cid in connmap)]
        for _, chunk_offset, _, entry in heapq.merge(*streams):
            if chunk_offset and entry is not None:
                yield entry

    def _chunk(self, chunk: Any, connmap: Dict[int, Any],
               lazy: Collection[int]) -> Iterator[Tuple[int, int, int, Optional[Entry]]]:
        yield chunk.message_start_time, 0, 0, None
        located = self._index(chunk, connmap)
        located.sort()
        base = chunk.chunk_start_offset + 49 + len(chunk.compression.encode())
        data = self._decompressed(chunk, base) if chunk.compression else None
        for log_time, offset, cid in located:
            if not chunk.message_start_time <= log_time <= chunk.message_end_time:
                continue  # rosbags reads only the chunk's declared time range
            if offset + _RECORD.size > chunk.uncompressed_size:
                raise IndexMismatch(f'message index of chunk at {chunk.chunk_start_offset} '
                                    f'points past its end ({offset})')
            conn = connmap[cid]
            if data is None:
                entry = self._record(base + offset, chunk, offset, log_time, cid, conn,
                                     cid in lazy)
            else:
                entry = _from_buffer(data, offset, chunk, log_time, cid, conn, cid in lazy)
            yield log_time, chunk.chunk_start_offset, offset, entry

    def _index(self, chunk: Any, connmap: Dict[int, Any]) -> List[Tuple[int, int, int]]:
        """(log time, offset in the chunk, channel) of the wanted messages of a chunk."""
        start = chunk.chunk_start_offset + chunk.chunk_length
        wanted = {cid: pos for cid, pos in chunk.message_index_offsets.items()
                  if cid in connmap}
        if not wanted:
            return []
        data = self._pread(chunk.message_index_length, start)
        located: List[Tuple[int, int, int]] = []
        for cid, pos in wanted.items():
            rel = pos - start
            if not 0 <= rel <= len(data) - _INDEX_HEADER.size:
                raise IndexMismatch(f'message index of channel {cid} at {pos} lies outside '
                                    f'the index of chunk {chunk.chunk_start_offset}')
            op, length, channel, size = _INDEX_HEADER.unpack_from(data, rel)
            end = rel + _INDEX_HEADER.size + size
            if (op != _MESSAGE_INDEX_OP or channel != cid or size % 16 or length != size + 6
                    or end > len(data)):
                raise IndexMismatch(f'bad message index record at {pos} (chunk '
                                    f'{chunk.chunk_start_offset}, channel {cid})')
            located.extend((t, o, cid) for t, o in struct.iter_unpack(
                '<QQ', data[rel + _INDEX_HEADER.size:end]))
        return located

    def _decompressed(self, chunk: Any, base: int) -> memoryview:
        from rosbags.rosbag2.storage_mcap import decompress

        (crc,) = struct.unpack('<I', self._pread(4, chunk.chunk_start_offset + 9 + 24))
        raw = self._pread(chunk.compressed_size, base)
        return memoryview(decompress(raw, chunk.compression, chunk.uncompressed_size, crc))

    def _record(self, pos: int, chunk: Any, offset: int, log_time: int, cid: int, conn: Any,
                lazy: bool) -> Entry:
        # One read for the record header and the head (or a small payload), within the chunk.
        want = _RECORD.size + (HEAD_BYTES if lazy else _SMALL)
        room = chunk.chunk_start_offset + chunk.chunk_length - pos
        first = self._pread(max(_RECORD.size, min(want, room)), pos)
        size = _check_record(first, chunk, offset, log_time, cid)
        have = len(first) - _RECORD.size
        start = pos + _RECORD.size
        if lazy and size > HEAD_BYTES:
            head = first[_RECORD.size:_RECORD.size + HEAD_BYTES] if have >= HEAD_BYTES \
                else self._pread(HEAD_BYTES, start)
            return Entry(conn, log_time, head, None, lambda: self._pread(size, start))
        raw = first[_RECORD.size:_RECORD.size + size] if size <= have \
            else self._pread(size, start)
        return Entry(conn, log_time, raw[:HEAD_BYTES], raw, None)


def _check_record(header: bytes, chunk: Any, offset: int, log_time: int, cid: int) -> int:
    """Payload size of the message record starting ``header``; IndexMismatch if it is not."""
    op, length, channel, _, stamp, _ = _RECORD.unpack_from(header)
    if (op != _MESSAGE_OP or channel != cid or stamp != log_time or length < 22
            or offset + 9 + length > chunk.uncompressed_size):
        raise IndexMismatch(
            f'no message record of channel {cid} at log time {log_time} where the index of '
            f'chunk {chunk.chunk_start_offset} points (offset {offset})')
    return int(length) - 22


def _from_buffer(data: memoryview, offset: int, chunk: Any, log_time: int, cid: int,
                 conn: Any, lazy: bool) -> Entry:
    size = _check_record(data[offset:offset + _RECORD.size].tobytes(), chunk, offset,
                         log_time, cid)
    payload = data[offset + _RECORD.size:offset + _RECORD.size + size]
    if lazy and size > HEAD_BYTES:
        return Entry(conn, log_time, payload[:HEAD_BYTES].tobytes(), None, payload.tobytes)
    raw = payload.tobytes()
    return Entry(conn, log_time, raw[:HEAD_BYTES], raw, None)


class _SqliteSource(_Source):
    """Rows of one rosbag2 sqlite3 file through ``rosbags``' own ``apsw`` connection."""

    def __init__(self, bag: IndexedBag, storage: Any) -> None:
        super().__init__(bag)
        self.db = storage.dbconn
        self._blobs: Dict[str, Any] = {}

    def close(self) -> None:
        blobs, self._blobs = self._blobs, {}
        for blob in blobs.values():
            with suppress(Exception):  # a handle that hit damage re-raises it on close
                blob.close()

    def _read(self, role: str, rowid: int, size: Optional[int]) -> bytes:
        """Read ``size`` bytes (all when None) of a row's blob with the ``role`` handle.

        One handle per role (head, payload) is moved from row to row with ``reopen``; a
        handle that failed is dropped, since SQLite aborts it.
        """
        if self.db is None:
            raise IndexMismatch('the bag is closed')
        blob = self._blobs.pop(role, None)
        try:
            if blob is None:
                blob = self.db.blob_open('main', 'messages', 'data', rowid, False)
            else:
                blob.reopen(rowid)
            data = bytes(blob.read(blob.length() if size is None
                                   else min(size, blob.length())))
        except BaseException:
            if blob is not None:
                with suppress(Exception):
                    blob.close()
            raise
        self._blobs[role] = blob
        self.bag.read_bytes += len(data)
        return data

    def _payload(self, rowid: int) -> bytes:
        return self._read('payload', rowid, None)

    def messages(self, connmap: Dict[int, Any], lazy: Collection[int]) -> Iterator[Entry]:
        ids = tuple(connmap)
        lazy_ids = tuple(cid for cid in ids if cid in lazy)
        data = 'messages.data'
        if lazy_ids:
            data = (f'CASE WHEN topics.id IN ({",".join("?" for _ in lazy_ids)}) '
                    'THEN NULL ELSE messages.data END')
        # The query of rosbags' Sqlite3Reader.messages with other columns: same plan, so
        # equal timestamps come in the same order.
        query = (f'SELECT topics.id,messages.timestamp,messages.id,{data} '
                 'FROM messages JOIN topics ON messages.topic_id=topics.id '
                 f'WHERE topics.id IN ({",".join("?" for _ in ids)}) ORDER BY timestamp')
        for cid, stamp, rowid, raw in self.db.execute(query, (*lazy_ids, *ids)):
            conn = connmap[cid]
            if raw is not None or cid not in lazy:
                raw = bytes(raw or b'')
                self.bag.read_bytes += len(raw)
                yield Entry(conn, stamp, raw[:HEAD_BYTES], raw, None)
                continue
            head = self._read('head', rowid, HEAD_BYTES + 1)
            if len(head) <= HEAD_BYTES:
                yield Entry(conn, stamp, head, head, None)
            else:
                yield Entry(conn, stamp, head[:HEAD_BYTES], None, _RowLoader(self, rowid))


class _RowLoader:
    """Read one row's blob on demand (a class, not a lambda: one object per skipped row)."""

    __slots__ = ('source', 'rowid')

    def __init__(self, source: _SqliteSource, rowid: int) -> None:
        self.source = source
        self.rowid = rowid

    def __call__(self) -> bytes:
        return self.source._payload(self.rowid)
