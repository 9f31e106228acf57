"""Index-driven bag reading (``bag/indexed.py``) against the plain ``rosbags`` read.

The fast path must change nothing but the bytes read: same messages, same payloads, same
order (equal log times across topics and chunks included) for MCAP (plain and zstd chunks)
and sqlite3; the replay's outputs with it are compared with ``--full-read`` in
``test_replay.py``. Damage found through the index (a bad message-index record, a record
that is not where the index says, a payload that disappears after its header was read)
stops a read or a replay with a ``corrupt`` BagError and readable outputs.

Runtime: about 5 s.
"""

import json
from pathlib import Path
from typing import Any, Iterator, List, Tuple

from mcap_ros2.reader import read_ros2_messages
import numpy as np
import pytest

from cosmos_planner.bag.errors import BagError
from cosmos_planner.bag.reader import BagMessage, BagReader
from cosmos_planner.bag.replay import Replay, replay_bag, ReplayOptions
from cosmos_planner.bag.scenes import SceneSpec, write_scene_bag

TOPICS = ('/cam/image_raw', '/cam/depth', '/cam/camera_info')
TASK = 'put the red cube in the blue bowl'
WIDE = {'ground.mode': 'depth', 'target.frame': '', 'heights.up': [0.0, 0.0, -1.0],
        'safety.workspace_min': [-5.0, -5.0, -5.0], 'safety.workspace_max': [5.0, 5.0, 5.0],
        'safety.max_step_m': 5.0}


def _tangled() -> Iterator[Tuple[int, int, bytes]]:
    """(topic index, log time, payload): equal and out-of-order times, sizes around a chunk."""
    rng = np.random.default_rng(16)
    stamp = 1_000_000_000
    for i in range(60):
        stamp += int(rng.choice([0, 0, 5_000_000, -3_000_000, 33_000_000]))
        size = int(rng.choice([0, 7, 255, 256, 257, 4_000, 90_000, 700_000, 1_300_000]))
        yield i % 3, stamp, rng.integers(0, 256, size, dtype=np.uint8).tobytes()


def _write_with_rosbags(path: Path, storage: str, compression: str) -> Path:
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.rosbag2.enums import CompressionFormat, CompressionMode

    from cosmos_planner.bag.reader import store_for

    store = store_for('kilted')
    writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP if storage == 'mcap'
                    else StoragePlugin.SQLITE3)
    if compression:
        writer.set_compression(CompressionMode[compression.upper()], CompressionFormat.ZSTD)
    writer.open()
    conns = [writer.add_connection(t, 'sensor_msgs/msg/Image', typestore=store)
             for t in TOPICS]
    for index, stamp, raw in _tangled():
        writer.write(conns[index], stamp, raw)
    writer.close()
    return path


def _write_with_mcap(path: Path, compression: str, chunked: bool) -> Path:
    """Write an MCAP with another writer (the ``mcap`` package: chunk CRCs, zstd default)."""
    from mcap.writer import CompressionType, Writer

    from cosmos_planner.bag.reader import store_for

    msgdef, _ = store_for('kilted').generate_msgdef('sensor_msgs/msg/Image', ros_version=2)
    path.mkdir()
    with open(path / 'bag.mcap', 'wb') as f:
        writer = Writer(f, compression=CompressionType[compression.upper()],
                        use_chunking=chunked, chunk_size=1 << 20)
        writer.start(profile='ros2', library='test')
        schema = writer.register_schema('sensor_msgs/msg/Image', 'ros2msg', msgdef.encode())
        channels = [writer.register_channel(t, 'cdr', schema) for t in TOPICS]
        # rosbags reads unchunked MCAP only in log-time order (it has no index to sort by)
        messages = _tangled() if chunked else sorted(_tangled(), key=lambda m: m[1])
        for index, stamp, raw in messages:
            writer.add_message(channels[index], stamp, raw, stamp)
        writer.finish()
    return path / 'bag.mcap'


def _read(bag: Path, indexed: bool, lazy: Tuple[str, ...] = ()) -> List[Tuple[str, int, bytes]]:
    with BagReader(bag, indexed=indexed) as reader:
        msgs = list(reader.messages(lazy=lazy))
        assert all(m.head == m.raw[:256] for m in msgs)
        return [(m.topic, m.log_time_ns, m.raw) for m in msgs]


def _index_taken(bag: Path) -> bool:
    with BagReader(bag) as reader:
        for _ in reader.messages():
            pass
        return reader.indexed_read


@pytest.mark.parametrize('writer,indexed', [
    ('rosbags mcap', True), ('rosbags mcap storage', True), ('rosbags sqlite3', True),
    ('mcap zstd', True), ('mcap lz4', True), ('mcap none', True),
    ('rosbags mcap message', False), ('mcap zstd unchunked', False)])
def test_index_read_gives_the_messages_and_order_of_rosbags(tmp_path: Path, writer: str,
                                                            indexed: bool) -> None:
    """Plain, zstd and lz4 chunks, sqlite3; per-message compression and no chunks fall back."""
    kind, *rest = writer.split()
    if kind == 'rosbags':
        bag = _write_with_rosbags(tmp_path / 'bag', rest[0], rest[1] if len(rest) > 1 else '')
    else:
        bag = _write_with_mcap(tmp_path / 'bag', rest[0], chunked=len(rest) == 1)
    full = _read(bag, indexed=False)
    assert len(full) == 60 and len({t for _, t, _ in full}) < 60  # equal log times
    assert _read(bag, indexed=True) == full
    assert _read(bag, indexed=True, lazy=TOPICS[:2]) == full
    assert _index_taken(bag) == indexed


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_lazy_payloads_are_read_only_when_used(tmp_path: Path, storage: str) -> None:
    info = write_scene_bag(tmp_path / 'bag', SceneSpec(storage=storage, depth='16UC1'))
    lazy = ('/front/image_raw', '/front/depth/image_raw')
    with BagReader(tmp_path / 'bag') as reader:
        msgs = list(reader.messages(lazy=lazy))
        heads_only = reader.read_bytes
        assert reader.indexed_read  # a rosbags upgrade that hides the index fails here
        assert [m.loaded for m in msgs] == [m.topic not in lazy for m in msgs]
        total = sum(len(m.raw) for m in msgs)
        assert heads_only < total / 20 and reader.read_bytes >= total
        first = reader.decode(next(m for m in msgs if m.topic == lazy[0]))
        assert first.header.stamp.sec * 10**9 + first.header.stamp.nanosec == \
            info.frame_stamps_ns[0]
    unread = next(m for m in msgs if m.topic == lazy[0])
    assert unread.loaded  # read above, kept


def test_lazy_payload_of_a_closed_bag_is_a_clear_error(tmp_path: Path) -> None:
    write_scene_bag(tmp_path / 'bag', SceneSpec(duration_s=0.4))
    with BagReader(tmp_path / 'bag') as reader:
        msg = next(reader.messages(['/front/image_raw'], lazy=['/front/image_raw']))
    with pytest.raises(BagError) as err:
        msg.raw
    assert err.value.kind == 'not_open' and '/front/image_raw' in str(err.value)
    with pytest.raises(ValueError):
        BagMessage('/t', 'std_msgs/msg/String', 0, None, None)


def _mcap_chunks(bag: Path) -> Tuple[Path, List[Any]]:
    from rosbags.rosbag2.storage_mcap import McapReader

    path = next(bag.glob('*.mcap'))
    storage = McapReader(path)
    storage.open()
    chunks = list(storage.chunks)
    storage.close()
    return path, chunks


def test_damaged_message_index_stops_the_read_where_it_is(tmp_path: Path) -> None:
    info = write_scene_bag(tmp_path / 'bag', SceneSpec(duration_s=10.0, image='both'))
    path, chunks = _mcap_chunks(tmp_path / 'bag')
    chunk = chunks[len(chunks) // 2]
    data = bytearray(path.read_bytes())
    start = chunk.chunk_start_offset + chunk.chunk_length
    data[start:start + chunk.message_index_length] = bytes(chunk.message_index_length)
    path.write_bytes(bytes(data))
    read = 0
    with pytest.raises(BagError) as err:
        with BagReader(tmp_path / 'bag') as reader:
            for _ in reader.messages():
                read += 1
    assert err.value.kind == 'corrupt' and 0 < read < sum(info.counts.values())
    assert f'after {read} messages' in str(err.value) and 'message index' in str(err.value)


def test_record_missing_under_the_index_is_corrupt(tmp_path: Path) -> None:
    write_scene_bag(tmp_path / 'bag', SceneSpec(duration_s=4.0))
    path, chunks = _mcap_chunks(tmp_path / 'bag')
    chunk = chunks[len(chunks) // 2]
    base = chunk.chunk_start_offset + 49 + len(chunk.compression)
    data = bytearray(path.read_bytes())
    data[base:base + chunk.uncompressed_size] = bytes(chunk.uncompressed_size)
    path.write_bytes(bytes(data))
    with pytest.raises(BagError) as err:
        with BagReader(tmp_path / 'bag') as reader:
            for _ in reader.messages(lazy=['/front/image_raw']):
                pass
    assert err.value.kind == 'corrupt' and 'no message record' in str(err.value)


def _no_answers(tmp_path: Path) -> Path:
    """Write an empty answers file: every request fails, the replay itself runs."""
    path = tmp_path / 'answers.jsonl'
    path.write_text('')
    return path


class TruncatingReplay(Replay):
    """FAULT INJECTION: the bag file loses its payloads after the first frame's header."""

    def _deliver(self, reader: Any, msg: Any) -> None:
        if msg.topic == '/front/image_raw' and not msg.loaded:
            storage = next(Path(self.options.bag).glob('*.mcap'))
            with open(storage, 'r+b') as f:
                f.truncate(1000)
        super()._deliver(reader, msg)


def test_payload_lost_after_its_header_stops_the_replay_cleanly(tmp_path: Path) -> None:
    write_scene_bag(tmp_path / 'bag', SceneSpec(duration_s=1.0, tasks=((0.3, TASK),)))
    with pytest.raises(BagError) as err:
        TruncatingReplay(ReplayOptions(bag=tmp_path / 'bag', out=tmp_path / 'out',
                                       progress=False, responses=_no_answers(tmp_path),
                                       params=WIDE)).run()
    assert err.value.kind == 'corrupt' and 'payload' in str(err.value)
    summary = json.loads((tmp_path / 'out' / 'summary.json').read_text())
    assert 'payload' in summary['error'] and summary['messages'] > 0
    assert (tmp_path / 'out' / 'bag' / 'metadata.yaml').exists()
    for _ in read_ros2_messages(str(tmp_path / 'out' / 'bag' / 'bag.mcap')):
        pass  # the output bag reads to its end


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_truncated_bag_replay_fails_as_the_full_read_does(tmp_path: Path, storage: str) -> None:
    write_scene_bag(tmp_path / 'bag', SceneSpec(duration_s=3.0, storage=storage,
                                                tasks=((0.3, TASK),)))
    f = next(p for p in (tmp_path / 'bag').iterdir() if p.suffix in ('.mcap', '.db3'))
    f.write_bytes(f.read_bytes()[: f.stat().st_size * 2 // 3])
    errors = []
    for full_read in (False, True):
        with pytest.raises(BagError) as err:
            replay_bag(ReplayOptions(bag=tmp_path / 'bag', out=tmp_path / f'out{full_read}',
                                     progress=False, responses=_no_answers(tmp_path),
                                     params=WIDE, full_read=full_read))
        errors.append(str(err.value))
        assert err.value.kind == 'corrupt' and 'truncated or corrupt' in str(err.value)
        assert not (tmp_path / f'out{full_read}').exists()  # refused before writing
    assert errors[0] == errors[1]


@pytest.mark.parametrize('full_read', [False, True])
def test_damaged_sqlite_payload_stops_the_replay_cleanly(tmp_path: Path,
                                                         full_read: bool) -> None:
    """Overflow pages of the second half of the rows zeroed: a used frame cannot be read."""
    import sqlite3

    write_scene_bag(tmp_path / 'bag', SceneSpec(duration_s=3.0, storage='sqlite3',
                                                tasks=((0.3, TASK),)))
    f = tmp_path / 'bag' / 'bag.db3'
    db = sqlite3.connect(f)
    pages = [p for (p,) in db.execute("SELECT pageno FROM dbstat WHERE name='messages' AND "
                                      "pagetype='overflow' ORDER BY pageno")]
    size = db.execute('PRAGMA page_size').fetchone()[0]
    db.close()
    data = bytearray(f.read_bytes())
    for page in pages[len(pages) // 2:]:
        data[(page - 1) * size:page * size] = bytes(size)
    f.write_bytes(bytes(data))
    out = tmp_path / 'out'
    with pytest.raises(BagError) as err:
        replay_bag(ReplayOptions(bag=tmp_path / 'bag', out=out, progress=False,
                                 responses=_no_answers(tmp_path), params=WIDE,
                                 full_read=full_read))
    assert err.value.kind == 'corrupt' and 'CorruptError' in str(err.value)
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['error'] == f'BagError: {err.value}' and summary['frames'] > 0
    statuses = list(read_ros2_messages(str(out / 'bag' / 'bag.mcap'),
                                       topics=['/cosmos_planner/status']))
    assert statuses  # what was written before the damage is readable


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_split_bag_reads_its_files_in_turn(tmp_path: Path, storage: str) -> None:
    """A recording split by size (``--max-bag-size``): two files under one metadata.yaml."""
    import yaml

    spec = SceneSpec(duration_s=0.8, storage=storage, depth='16UC1')
    write_scene_bag(tmp_path / 'bag', spec)
    write_scene_bag(tmp_path / 'more', SceneSpec(**{**spec.__dict__,
                                                    'start_ns': 101_000_000_000}))
    suffix = '.mcap' if storage == 'mcap' else '.db3'
    (tmp_path / 'more' / f'more{suffix}').rename(tmp_path / 'bag' / f'bag_1{suffix}')
    meta_path = tmp_path / 'bag' / 'metadata.yaml'
    meta = yaml.safe_load(meta_path.read_text())
    info = meta['rosbag2_bagfile_information']
    more = yaml.safe_load((tmp_path / 'more' / 'metadata.yaml').read_text())
    more_info = more['rosbag2_bagfile_information']
    info['relative_file_paths'].append(f'bag_1{suffix}')
    info['files'].append({**more_info['files'][0], 'path': f'bag_1{suffix}'})
    info['message_count'] += more_info['message_count']
    info['duration']['nanoseconds'] = 2_000_000_000
    for topic, extra in zip(info['topics_with_message_count'],
                            more_info['topics_with_message_count']):
        topic['message_count'] += extra['message_count']
    meta_path.write_text(yaml.safe_dump(meta))
    full = _read(tmp_path / 'bag', indexed=False)
    assert len(full) == info['message_count'] and full[-1][1] > 101_000_000_000
    assert _read(tmp_path / 'bag', indexed=True) == full
    assert _read(tmp_path / 'bag', indexed=True, lazy=('/front/image_raw',)) == full
    assert _index_taken(tmp_path / 'bag')


def test_full_read_flag_reaches_the_options(tmp_path: Path) -> None:
    import argparse

    from cosmos_planner.bag.replay import add_arguments, options_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    base = [str(tmp_path / 'bag'), '--task', 'pick']
    assert options_from_args(parser.parse_args(base)).full_read is False
    assert options_from_args(parser.parse_args(base + ['--full-read'])).full_read is True
