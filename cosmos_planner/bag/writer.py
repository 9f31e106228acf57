"""Write rosbag2 bags (MCAP by default) that stay readable whatever happens while writing.

``rosbags``' own context manager *aborts* on an exception: the MCAP then lacks its summary
and footer and ``metadata.yaml`` is never written, so a replay interrupted after an hour
leaves nothing a reader accepts. :class:`BagWriter` closes properly instead (index, footer,
metadata) on errors and on KeyboardInterrupt, and only aborts when closing itself fails.

Messages the planner publishes are written from the neutral records of
:mod:`cosmos_planner.pipeline.outputs` with :func:`to_rosbags` (the replay's serializer; the
node's is ``ros.messages.to_ros``), so writing a replay's output needs no ROS install.

It also never deletes anything that does not look like a bag: ``force=True`` replaces an
existing bag (a directory with ``metadata.yaml`` or only storage files), never an arbitrary
directory or file.
"""

from pathlib import Path
import shutil
from typing import Any, cast, Dict, Iterable, Literal, Optional, Sequence, Union

import numpy as np

from cosmos_planner.bag.errors import BagError
from cosmos_planner.pipeline.outputs import Msg

STORAGES = ('mcap', 'sqlite3')
#: numpy dtype of each ROS base type, for arrays of numbers in rosbags messages.
_DTYPES = {'bool': np.bool_, 'byte': np.uint8, 'char': np.uint8, 'int8': np.int8,
           'uint8': np.uint8, 'int16': np.int16, 'uint16': np.uint16, 'int32': np.int32,
           'uint32': np.uint32, 'int64': np.int64, 'uint64': np.uint64,
           'float32': np.float32, 'float64': np.float64}
#: IDL defaults that are not zero (rosbags drops defaults from definitions).
_NONZERO_DEFAULTS = {'geometry_msgs/msg/Quaternion': {'w': 1.0}}
_BAG_FILES = ('.mcap', '.db3', '.yaml', '.zstd', '.db3-shm', '.db3-wal', '.db3-journal')


def looks_like_bag(path: Path) -> bool:
    """Tell whether ``path`` is a rosbag2 directory (metadata.yaml or only storage files)."""
    if not path.is_dir():
        return False
    entries = list(path.iterdir())
    if (path / 'metadata.yaml').exists():
        return all(e.is_file() for e in entries)
    return all(e.is_file() and e.name.endswith(_BAG_FILES) for e in entries)


def remove_bag(path: Path) -> None:
    """Delete an existing bag for ``--force``; BagError if ``path`` is not a bag."""
    if not path.exists():
        return
    if not looks_like_bag(path):
        raise BagError(f'{path} exists and is not a rosbag2 bag; refusing to delete it',
                       kind='exists')
    shutil.rmtree(path)


def to_rosbags(record: Msg, typestore: Any) -> Any:
    """Serialize a record as a ``rosbags`` message of ``typestore``.

    Fields the record leaves out get their definition's default, as an rclpy message has
    them, so both serializers encode the same values. An unknown field name is an error.
    """
    _, fields = typestore.fielddefs[record.type]
    unknown = set(record.fields) - {name for name, _ in fields}
    if unknown:
        raise BagError(f'{record.type} has no field {sorted(unknown)[0]!r}',
                       kind='unknown_type')
    defaults = _NONZERO_DEFAULTS.get(record.type, {})
    values = {}
    for name, (nodetype, detail) in fields:
        if name in record.fields:
            values[name] = _rosbags_value(record.fields[name], int(nodetype), detail, typestore)
        elif name in defaults:
            values[name] = defaults[name]
        else:
            values[name] = _rosbags_default(int(nodetype), detail, typestore)
    return typestore.types[record.type](**values)


def _rosbags_value(value: Any, nodetype: int, detail: Any, typestore: Any) -> Any:
    if nodetype == 2:  # a message
        return to_rosbags(value, typestore)
    if nodetype in (3, 4):  # array, sequence
        (inner_type, inner), _ = detail
        if int(inner_type) == 2:
            return [to_rosbags(v, typestore) for v in value]
        if inner[0] == 'string':
            return [str(v) for v in value]
        if isinstance(value, (bytes, bytearray, memoryview)):
            return np.frombuffer(value, dtype=_DTYPES[inner[0]])
        return np.asarray(value, dtype=_DTYPES[inner[0]])
    return value


def _rosbags_default(nodetype: int, detail: Any, typestore: Any) -> Any:
    if nodetype == 2:
        return to_rosbags(Msg(detail, {}), typestore)
    if nodetype == 1:
        base = detail[0]
        return '' if base == 'string' else False if base == 'bool' else \
            0.0 if base.startswith('float') else 0
    (inner_type, inner), length = detail
    count = length if nodetype == 3 else 0
    if int(inner_type) == 2:
        return [to_rosbags(Msg(inner, {}), typestore) for _ in range(count)]
    if inner[0] == 'string':
        return [''] * count
    return np.zeros(count, dtype=_DTYPES[inner[0]])


class BagWriter:
    """A rosbag2 writer that always leaves a readable bag; use as a context manager.

    ``BagWriter(path, storage='mcap', version=9, force=False)``. Topics are added on first
    use with :meth:`add_topic`; :meth:`write` takes raw CDR bytes and a log time (ns).
    """

    def __init__(self, path: Union[str, Path], storage: str = 'mcap', version: int = 9,
                 force: bool = False, typestore: Optional[Any] = None) -> None:
        self.path = Path(path)
        if storage not in STORAGES:
            raise BagError(f'unknown storage {storage!r}; choose one of {", ".join(STORAGES)}',
                           kind='bad_storage')
        if version not in (8, 9):
            raise BagError(f'rosbag2 version must be 8 or 9, not {version}', kind='bad_version')
        if self.path.exists():
            if not force:
                raise BagError(f'output bag {self.path} exists; pass --force to replace it',
                               kind='exists')
            remove_bag(self.path)
        self.storage = storage
        self.version = cast(Literal[8, 9], version)  # checked above
        self._typestore = typestore
        self._writer: Any = None
        self._conns: Dict[str, Any] = {}
        self.counts: Dict[str, int] = {}
        self._custom: Dict[str, str] = {}

    @property
    def typestore(self) -> Any:
        """Typestore for definitions of added topics (kilted unless given)."""
        if self._typestore is None:
            from cosmos_planner.bag.reader import store_for
            self._typestore = store_for(None)
        return self._typestore

    def open(self) -> 'BagWriter':
        """Create the bag directory and its storage file."""
        from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

        plugin = StoragePlugin.MCAP if self.storage == 'mcap' else StoragePlugin.SQLITE3
        try:
            self._writer = Writer(self.path, version=self.version, storage_plugin=plugin)
            for key, value in self._custom.items():
                self._writer.set_custom_data(key, value)
            self._writer.open()
        except (WriterError, OSError) as exc:
            self._writer = None
            raise BagError(f'cannot create bag {self.path}: {exc}', kind='write_failed') from None
        return self

    def set_custom_data(self, key: str, value: str) -> None:
        """Store a string in metadata.yaml's ``custom_data`` (written on close)."""
        self._custom[key] = value
        if self._writer is not None:
            self._writer.set_custom_data(key, value)

    def add_topic(self, topic: str, msgtype: str, msgdef: Optional[str] = None,
                  rihs01: Optional[str] = None, qos: Sequence[Any] = ()) -> Any:
        """Register ``topic`` once (later calls return the same connection)."""
        if topic in self._conns:
            return self._conns[topic]
        if self._writer is None:
            raise BagError(f'bag {self.path} is not open', kind='not_open')
        if msgdef is None or rihs01 is None:
            if msgtype not in self.typestore.types:
                raise BagError(f'cannot write {topic}: message type {msgtype} is unknown',
                               kind='unknown_type')
            conn = self._writer.add_connection(topic, msgtype, typestore=self.typestore,
                                               offered_qos_profiles=list(qos))
        else:
            conn = self._writer.add_connection(topic, msgtype, msgdef=msgdef, rihs01=rihs01,
                                               offered_qos_profiles=list(qos))
        self._conns[topic] = conn
        self.counts[topic] = 0
        return conn

    def has_topic(self, topic: str) -> bool:
        return topic in self._conns

    def write(self, topic: str, log_time_ns: int, raw: Union[bytes, memoryview]) -> None:
        """Append raw CDR bytes on an added topic at ``log_time_ns``."""
        conn = self._conns.get(topic)
        if conn is None:
            raise BagError(f'topic {topic} was not added to {self.path}', kind='unknown_topic')
        self._writer.write(conn, int(log_time_ns), bytes(raw))
        self.counts[topic] += 1

    def prepare(self, msgtypes: Iterable[str]) -> None:
        """Build the serializers of ``msgtypes`` now, at start-up, not on the first message.

        ``rosbags`` generates each type's CDR code on first use (tens of ms for the planner's
        outputs), the work rclpy's type support does when it is imported; doing it here
        keeps it out of the replay loop's timing and the first plan's latency.
        """
        for msgtype in msgtypes:
            self.typestore.get_msgdef(msgtype)

    def write_msg(self, topic: str, log_time_ns: int, msg: Any) -> None:
        """Serialize a rosbags message object with the typestore and write it."""
        conn = self._conns[topic]
        self.write(topic, log_time_ns, self.typestore.serialize_cdr(msg, conn.msgtype))

    def write_record(self, topic: str, log_time_ns: int, record: Msg) -> None:
        """Serialize a neutral record with the typestore (``to_rosbags``) and write it."""
        if not self.has_topic(topic):
            self.add_topic(topic, record.type)
        self.write_msg(topic, log_time_ns, to_rosbags(record, self.typestore))

    def close(self) -> None:
        """Write index, footer and metadata.yaml; abort only if that fails. Idempotent."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            writer.close()
        except BaseException:
            try:
                writer.abort()
            finally:
                raise

    def __enter__(self) -> 'BagWriter':
        return self.open()

    def __exit__(self, *exc: object) -> None:
        # Close (not abort) on errors and Ctrl-C too: what was written stays readable.
        self.close()
