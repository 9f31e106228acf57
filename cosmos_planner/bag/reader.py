"""Read rosbag2 bags (sqlite3 or MCAP, any ROS 2 distro) with ``rosbags``, with clear errors.

Why a wrapper around ``rosbags``: the replay and the player need three things the plain
reader does not give. (1) A typestore that decodes whatever distro recorded the bag: the
definitions embedded in the bag win, a distro store (``--typestore``, default from the bag's
``ros_distro``, else kilted) fills the gaps. (2) Errors that name the bag, the topic and the
cure (:class:`BagError` with a ``kind``), including errors that surface in the middle of
iteration (a truncated sqlite3 file reads fine until the damaged page). (3) A recording
that was killed before ``metadata.yaml`` was written (the usual crash of ``ros2 bag record``)
is still readable: a directory holding a single ``.db3`` or ``.mcap`` is read as that file.
(4) Speed on raw image bags: payloads are located through the storage's own index and read
only when used (:mod:`cosmos_planner.bag.indexed`; ``indexed=False`` is the plain
``rosbags`` read, which the tests compare it with).

Bag time here is the recorded *log* time (receive time), which is what ``ros2 bag play
--clock`` publishes on ``/clock``; header stamps stay inside the messages.
"""

from dataclasses import dataclass
from pathlib import Path
import sqlite3
import struct
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from cosmos_planner.bag.errors import BagError
from cosmos_planner.bag.indexed import HEAD_BYTES, IndexedBag

#: Typestore used when a bag neither embeds definitions nor names a known distro.
DEFAULT_DISTRO = 'kilted'
_DISTROS = ('foxy', 'galactic', 'humble', 'iron', 'jazzy', 'kilted', 'lyrical')


@dataclass(frozen=True)
class TopicInfo:
    """One topic of a bag: name, type and message count (from the bag's index)."""

    name: str
    msgtype: str
    count: int


class BagMessage:
    """One recorded message: its log time and raw CDR bytes, read on first use when lazy.

    ``raw`` is the whole payload; ``head`` its first ``HEAD_BYTES`` bytes (the CDR header
    of an image: stamp and frame id), available without reading the rest. A lazy message
    (``BagReader.messages(lazy=...)``) reads ``raw`` from the bag on first access and keeps
    it; reading it needs the bag still open.
    """

    __slots__ = ('topic', 'msgtype', 'log_time_ns', 'connection', '_raw', '_head', '_load')

    def __init__(self, topic: str, msgtype: str, log_time_ns: int, raw: Optional[bytes],
                 connection: Any, head: Optional[bytes] = None,
                 load: Optional[Callable[[], bytes]] = None) -> None:
        if raw is None and (head is None or load is None):
            raise ValueError('a lazy BagMessage needs its head and a loader')
        self.topic = topic
        self.msgtype = msgtype
        self.log_time_ns = log_time_ns
        self.connection = connection
        self._raw = raw
        self._head = head
        self._load = load

    @property
    def raw(self) -> bytes:
        """Return the whole payload (read from the bag now if this message is lazy)."""
        if self._raw is None:
            assert self._load is not None  # checked in __init__
            self._raw, self._load = self._load(), None
        return self._raw

    @property
    def head(self) -> bytes:
        """Return the first ``HEAD_BYTES`` bytes of the payload, without reading the rest."""
        if self._head is None:
            self._head = self.raw[:HEAD_BYTES]
        return self._head

    @property
    def loaded(self) -> bool:
        """Whether the whole payload is in memory."""
        return self._raw is not None

    def __repr__(self) -> str:
        return (f'BagMessage({self.topic!r}, {self.msgtype!r}, {self.log_time_ns}, '
                f'{"loaded" if self.loaded else "lazy"})')


def store_for(distro: Optional[str]) -> Any:
    """Return the rosbags typestore of a distro name (``humble``, ``ros2_jazzy``, ...).

    Raises BagError (``kind='unknown_distro'``) listing the valid names otherwise.
    """
    from rosbags.typesys import get_typestore, Stores

    name = (distro or DEFAULT_DISTRO).lower()
    name = name[len('ros2_'):] if name.startswith('ros2_') else name
    if name not in _DISTROS:
        raise BagError(f'unknown typestore {distro!r}; choose one of {", ".join(_DISTROS)}',
                       kind='unknown_distro')
    return get_typestore(getattr(Stores, 'ROS2_' + name.upper()))


def _storage_file(path: Path) -> Tuple[Path, str]:
    """Find what rosbags should open and which storage it is; raise BagError if nothing."""
    if not path.exists():
        raise BagError(f'bag {path} does not exist', kind='not_found')
    if path.is_file():
        if path.suffix == '.mcap':
            return path, 'mcap'
        if path.suffix == '.db3':
            return path, 'sqlite3'
        raise BagError(f'{path} is not a rosbag2 bag (expected a directory, .mcap or .db3)',
                       kind='not_a_bag')
    files = sorted([*path.glob('*.mcap'), *path.glob('*.db3')])
    if (path / 'metadata.yaml').exists():
        return path, _declared_storage(path / 'metadata.yaml', files)
    if len(files) == 1:
        # ros2 bag record writes metadata.yaml last: a killed recording lacks it.
        return files[0], 'mcap' if files[0].suffix == '.mcap' else 'sqlite3'
    if not files:
        raise BagError(f'{path} holds no metadata.yaml and no .mcap/.db3 file: not a bag',
                       kind='not_a_bag')
    raise BagError(f'{path} has no metadata.yaml and several storage files '
                   f'({", ".join(f.name for f in files)}); restore metadata.yaml '
                   '(ros2 bag reindex) or pass one file', kind='corrupt')


def _declared_storage(metadata: Path, files: List[Path]) -> str:
    """Storage named in metadata.yaml (files may be compressed, ``.mcap.zstd``)."""
    import yaml

    try:
        info = yaml.safe_load(metadata.read_text())['rosbag2_bagfile_information']
        return str(info['storage_identifier'])
    except Exception:  # noqa: BLE001 - rosbags reports a bad metadata file when opening
        return 'mcap' if any(f.suffix == '.mcap' for f in files) else 'sqlite3'


def _bag_types(connections: Iterable[Any]) -> Dict[str, Any]:
    """Parse the message definitions embedded in a bag into rosbags field definitions."""
    from rosbags.interfaces import MessageDefinitionFormat
    from rosbags.typesys import get_types_from_idl, get_types_from_msg

    typs: Dict[str, Any] = {}
    for conn in connections:
        fmt, data = conn.msgdef.format, conn.msgdef.data
        if fmt == MessageDefinitionFormat.MSG and data:
            typs.update(get_types_from_msg(data, conn.msgtype))
        elif fmt == MessageDefinitionFormat.IDL and data:
            sep = '=' * 80 + '\n'
            parts = data.split(sep)[1:] if data.startswith(sep + 'IDL: ') else [None, data]
            for part in parts:
                if part is None:
                    continue
                idl = part.split('\n', 1)[1] if part.startswith('IDL: ') else part
                typs.update(get_types_from_idl(idl))
    return typs


class BagReader:
    """A read-only rosbag2 bag with a merged typestore; use as a context manager.

    ``BagReader(path, typestore=None, indexed=True)``: ``path`` is a bag directory, an
    ``.mcap`` or a ``.db3`` file. ``typestore`` names the distro whose definitions decode
    types the bag does not embed (default: the bag's ``ros_distro``, else kilted).
    ``indexed`` reads payloads through the storage index where it can (same messages, same
    order, fewer bytes and copies); False reads every payload with ``rosbags``.
    """

    def __init__(self, path: Union[str, Path], typestore: Optional[str] = None,
                 indexed: bool = True) -> None:
        self.path = Path(path)
        self._open_path, self.storage = _storage_file(self.path)
        self._distro = typestore
        self._reader: Any = None
        self._want_indexed = indexed
        self._indexed: Optional[IndexedBag] = None
        self._full_read_bytes = 0
        #: Whether the last ``messages`` call went through the storage index.
        self.indexed_read = False
        self.typestore: Any = None
        self.distro = ''

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> 'BagReader':
        """Open the bag and build its typestore; raises BagError on an unreadable bag."""
        from rosbags.rosbag2 import Reader, ReaderError
        from rosbags.typesys import get_typestore, Stores, TypesysError

        try:
            self._reader = Reader(self._open_path)
            self._reader.open()
        except FileNotFoundError as exc:
            raise BagError(f'bag {self.path}: {exc}', kind='not_found') from None
        except (ReaderError, sqlite3.DatabaseError, struct.error, ValueError, OSError,
                KeyError, IndexError, TypeError, OverflowError, EOFError) as exc:
            self._reader = None
            hint = ('an MCAP cut short has no footer; `mcap recover` rewrites what it holds'
                    if self.storage == 'mcap' else
                    'a damaged sqlite3 file may be rescued with `sqlite3 FILE .recover`')
            raise BagError(f'bag {self.path} cannot be opened ({type(exc).__name__}: {exc}); '
                           f'it is truncated or corrupt ({hint})', kind='corrupt') from None
        try:
            recorded = (self._reader.ros_distro or '').lower()
            distro = self._distro or (recorded if recorded in _DISTROS else DEFAULT_DISTRO)
            default = store_for(distro)
            store = get_typestore(Stores.EMPTY)
            store.register(_bag_types(self._reader.connections))
            store.register({k: v for k, v in default.fielddefs.items()
                            if k not in store.fielddefs})
        except TypesysError as exc:
            self.close()
            raise BagError(f'bag {self.path}: bad embedded message definition: {exc}',
                           kind='corrupt') from None
        except BagError:
            self.close()
            raise
        self.typestore = store
        self.distro = distro
        if self._want_indexed:
            self._indexed = IndexedBag.of(self._reader)
        return self

    def close(self) -> None:
        """Close the storage files; safe to call twice."""
        indexed, self._indexed = self._indexed, None
        if indexed is not None:
            indexed.close()
        reader, self._reader = self._reader, None
        if reader is not None and reader.is_open:
            reader.close()

    def __enter__(self) -> 'BagReader':
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- metadata --------------------------------------------------------------------------
    @property
    def _r(self) -> Any:
        if self._reader is None:
            raise BagError(f'bag {self.path} is not open', kind='not_open')
        return self._reader

    @property
    def topics(self) -> Dict[str, TopicInfo]:
        """Topics by name, in name order."""
        out: Dict[str, TopicInfo] = {}
        for conn in sorted(self._r.connections, key=lambda c: c.topic):
            prev = out.get(conn.topic)
            count = conn.msgcount + (prev.count if prev else 0)
            out[conn.topic] = TopicInfo(conn.topic, conn.msgtype, count)
        return out

    @property
    def start_ns(self) -> int:
        """Log time of the first message (ns); 0 for an empty bag."""
        return self._r.start_time if self._r.message_count else 0

    @property
    def end_ns(self) -> int:
        """Log time of the last message (ns); 0 for an empty bag."""
        return self._r.end_time - 1 if self._r.message_count else 0

    @property
    def message_count(self) -> int:
        return self._r.message_count

    def require(self, topic: str, msgtypes: Iterable[str]) -> str:
        """Check ``topic`` exists with one of ``msgtypes``; return its type or raise BagError."""
        allowed = tuple(msgtypes)
        info = self.topics.get(topic)
        if info is None:
            have = ', '.join(f'{t.name} ({t.msgtype})' for t in self.topics.values())
            raise BagError(f'bag {self.path} has no topic {topic}; it has: {have or "nothing"}',
                           kind='missing_topic')
        if allowed and info.msgtype not in allowed:
            raise BagError(f'topic {topic} in {self.path} has type {info.msgtype}; expected '
                           + ' or '.join(allowed), kind='wrong_type')
        return info.msgtype

    def connections(self, topics: Optional[Iterable[str]] = None) -> List[Any]:
        """Return the rosbags connections of ``topics`` (all when None)."""
        wanted = None if topics is None else set(topics)
        return [c for c in self._r.connections if wanted is None or c.topic in wanted]

    def definition(self, connection: Any) -> Tuple[str, str]:
        """(msgdef text, RIHS01 hash) of a connection, so a copy keeps its exact type."""
        from rosbags.interfaces import MessageDefinitionFormat

        self.check_known(connection.msgtype, connection.topic)
        if connection.msgdef.format != MessageDefinitionFormat.NONE and connection.msgdef.data:
            digest = connection.digest or self.typestore.hash_rihs01(connection.msgtype)
            return connection.msgdef.data, digest
        msgdef, _ = self.typestore.generate_msgdef(connection.msgtype, ros_version=2)
        return msgdef, self.typestore.hash_rihs01(connection.msgtype)

    def check_known(self, msgtype: str, topic: str = '') -> None:
        """Raise BagError (``unknown_type``) when no definition of ``msgtype`` is available."""
        if msgtype not in self.typestore.types:
            where = f' (topic {topic})' if topic else ''
            raise BagError(
                f'message type {msgtype}{where} in {self.path} is unknown: the bag embeds no '
                f'definition and the {self.distro} typestore lacks it; pass --typestore '
                'with the distro that recorded the bag', kind='unknown_type')

    # -- data ------------------------------------------------------------------------------
    @property
    def read_bytes(self) -> int:
        """Payload and index bytes read from the storage by ``messages`` so far."""
        indexed = self._indexed.read_bytes if self._indexed is not None else 0
        return indexed + self._full_read_bytes

    def messages(self, topics: Optional[Iterable[str]] = None,
                 start_ns: Optional[int] = None,
                 stop_ns: Optional[int] = None,
                 lazy: Iterable[str] = ()) -> Iterator[BagMessage]:
        """Yield messages of ``topics`` (all when None) in log-time order.

        Payloads of ``lazy`` topics are read when a message's ``raw`` is first used (its
        ``head`` is there at once), where the storage index allows it. A storage error in
        the middle of the bag is raised as BagError (``corrupt``) that says how many
        messages and which log time were read before it, so a caller that has written
        output so far can close it and report; so is a lazy payload that cannot be read.
        """
        conns = self.connections(topics)
        if topics is not None and not conns:
            return
        # Damage inside an MCAP chunk can make records vanish silently; the index knows how
        # many there should be, so a full read that comes up short is reported as corrupt.
        expected = sum(c.msgcount for c in conns) if start_ns is None and stop_ns is None \
            else None
        count, last = 0, None
        indexed = self._indexed if start_ns is None and stop_ns is None else None
        self.indexed_read = indexed is not None
        if indexed is not None:
            entries = indexed.messages(conns, frozenset(lazy))
            while True:
                try:
                    entry = next(entries)
                except StopIteration:
                    break
                except Exception as exc:  # noqa: BLE001 - damage surfaces as anything
                    raise self._corrupt(exc, count, last) from None
                count, last = count + 1, entry.log_time_ns
                conn = entry.connection
                load = None if entry.load is None else self._loader(entry.load, conn.topic,
                                                                    entry.log_time_ns)
                yield BagMessage(conn.topic, conn.msgtype, entry.log_time_ns, entry.raw, conn,
                                 entry.head, load)
        else:
            gen = self._r.messages(conns, start=start_ns, stop=stop_ns)
            while True:
                try:
                    conn, stamp, raw = next(gen)
                except StopIteration:
                    break
                except Exception as exc:  # noqa: BLE001 - storage plugins raise anything
                    raise self._corrupt(exc, count, last) from None
                count, last = count + 1, stamp
                self._full_read_bytes += len(raw)
                yield BagMessage(conn.topic, conn.msgtype, stamp, bytes(raw), conn)
        if expected is not None and expected and count < expected:
            raise BagError(f'bag {self.path} is corrupt: its index lists {expected} messages '
                           f'but only {count} could be read (last log time {last} ns)',
                           kind='corrupt')

    def _loader(self, load: Callable[[], bytes], topic: str,
                log_time_ns: int) -> Callable[[], bytes]:
        """Wrap a lazy payload read so that a failure is a BagError naming the message."""
        def read() -> bytes:
            if self._indexed is None:
                raise BagError(f'bag {self.path} is closed: the payload of the message on '
                               f'{topic} at log time {log_time_ns} ns was never read',
                               kind='not_open')
            try:
                return load()
            except Exception as exc:  # noqa: BLE001 - damage surfaces as anything
                raise BagError(f'bag {self.path} is truncated or corrupt: the payload of the '
                               f'message on {topic} at log time {log_time_ns} ns cannot be '
                               f'read: {type(exc).__name__}: {exc}', kind='corrupt') from None
        return read

    def _corrupt(self, exc: BaseException, count: int, last: Optional[int]) -> BagError:
        where = f'after {count} messages (last log time {last} ns)' if count else 'at start'
        return BagError(f'bag {self.path} is truncated or corrupt: reading stopped {where}: '
                        f'{type(exc).__name__}: {exc}', kind='corrupt')

    def decode(self, msg: BagMessage) -> Any:
        """Deserialize a message into a rosbags dataclass; BagError when it cannot."""
        from rosbags.serde import SerdeError

        self.check_known(msg.msgtype, msg.topic)
        try:
            return self.typestore.deserialize_cdr(msg.raw, msg.msgtype)
        except (SerdeError, struct.error, ValueError, IndexError, UnicodeDecodeError) as exc:
            raise BagError(f'message on {msg.topic} at log time {msg.log_time_ns} ns in '
                           f'{self.path} cannot be decoded as {msg.msgtype}: {exc}',
                           kind='corrupt_message') from None
