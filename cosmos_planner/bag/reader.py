"""Read rosbag2 bags (sqlite3 or MCAP, any ROS 2 distro) with ``rosbags``, with clear errors.

Why a wrapper around ``rosbags``: the replay and the player need three things the plain
reader does not give. (1) A typestore that decodes whatever distro recorded the bag: the
definitions embedded in the bag win, a distro store (``--typestore``, default from the bag's
``ros_distro``, else kilted) fills the gaps. (2) Errors that name the bag, the topic and the
cure (:class:`BagError` with a ``kind``), including errors that surface in the middle of
iteration (a truncated sqlite3 file reads fine until the damaged page). (3) A recording
that was killed before ``metadata.yaml`` was written (the usual crash of ``ros2 bag record``)
is still readable: a directory holding a single ``.db3`` or ``.mcap`` is read as that file.

Bag time here is the recorded *log* time (receive time), which is what ``ros2 bag play
--clock`` publishes on ``/clock``; header stamps stay inside the messages.
"""

from dataclasses import dataclass
from pathlib import Path
import sqlite3
import struct
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from cosmos_planner.bag.errors import BagError

#: Typestore used when a bag neither embeds definitions nor names a known distro.
DEFAULT_DISTRO = 'kilted'
_DISTROS = ('foxy', 'galactic', 'humble', 'iron', 'jazzy', 'kilted', 'lyrical')


@dataclass(frozen=True)
class TopicInfo:
    """One topic of a bag: name, type and message count (from the bag's index)."""

    name: str
    msgtype: str
    count: int


@dataclass(frozen=True)
class BagMessage:
    """One recorded message: raw CDR bytes plus the log time it was recorded at."""

    topic: str
    msgtype: str
    log_time_ns: int
    raw: bytes
    connection: Any


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

    ``BagReader(path, typestore=None)``: ``path`` is a bag directory, an ``.mcap`` or a
    ``.db3`` file. ``typestore`` names the distro whose definitions decode types the bag
    does not embed (default: the bag's ``ros_distro``, else kilted).
    """

    def __init__(self, path: Union[str, Path], typestore: Optional[str] = None) -> None:
        self.path = Path(path)
        self._open_path, self.storage = _storage_file(self.path)
        self._distro = typestore
        self._reader: Any = None
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
        return self

    def close(self) -> None:
        """Close the storage files; safe to call twice."""
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
    def messages(self, topics: Optional[Iterable[str]] = None,
                 start_ns: Optional[int] = None,
                 stop_ns: Optional[int] = None) -> Iterator[BagMessage]:
        """Yield messages of ``topics`` (all when None) in log-time order.

        A storage error in the middle of the bag is raised as BagError (``corrupt``) that
        says how many messages and which log time were read before it, so a caller that has
        written output so far can close it and report.
        """
        conns = self.connections(topics)
        if topics is not None and not conns:
            return
        # Damage inside an MCAP chunk can make records vanish silently; the index knows how
        # many there should be, so a full read that comes up short is reported as corrupt.
        expected = sum(c.msgcount for c in conns) if start_ns is None and stop_ns is None \
            else None
        count, last = 0, None
        gen = self._r.messages(conns, start=start_ns, stop=stop_ns)
        while True:
            try:
                conn, stamp, raw = next(gen)
            except StopIteration:
                break
            except Exception as exc:  # noqa: BLE001 - storage plugins raise anything on damage
                raise self._corrupt(exc, count, last) from None
            count, last = count + 1, stamp
            yield BagMessage(conn.topic, conn.msgtype, stamp, bytes(raw), conn)
        if expected is not None and expected and count < expected:
            raise BagError(f'bag {self.path} is corrupt: its index lists {expected} messages '
                           f'but only {count} could be read (last log time {last} ns)',
                           kind='corrupt')

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
