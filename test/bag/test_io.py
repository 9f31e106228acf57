"""Bag reading and writing: generated scene bags, independent readers, damage, clear errors.

Runtime: about 3 s on 2 cores (small 160x120 scenes).
"""

from pathlib import Path
import shutil
import sqlite3

from mcap_ros2.reader import read_ros2_messages
import numpy as np
import pytest

from cosmos_planner.bag.errors import BagError
from cosmos_planner.bag.reader import BagReader
from cosmos_planner.bag.scenes import SceneSpec, TASK_TOPIC, write_scene_bag
from cosmos_planner.bag.writer import BagWriter

ALL_INPUTS = SceneSpec(image='both', depth='16UC1', duration_s=1.0, fps=5.0,
                       tasks=((0.1, 'pick the cube'), (0.7, 'place it in the bowl')))


def _storage_file(bag: Path) -> Path:
    return next(p for p in bag.iterdir() if p.suffix in ('.mcap', '.db3'))


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_scene_bag_holds_every_input_kind(tmp_path: Path, storage: str) -> None:
    spec = SceneSpec(**{**ALL_INPUTS.__dict__, 'storage': storage})
    info = write_scene_bag(tmp_path / 'bag', spec)
    assert info.counts == {'/front/image_raw': 5, '/front/image_raw/compressed': 5,
                           '/front/camera_info': 5, '/front/depth/image_raw': 5,
                           TASK_TOPIC: 2}
    with BagReader(tmp_path / 'bag') as reader:
        assert reader.storage == storage
        assert {t: i.count for t, i in reader.topics.items()} == info.counts
        msgs = list(reader.messages())
        # log-time order, frames logged `latency` after their header stamp
        assert [m.log_time_ns for m in msgs] == sorted(m.log_time_ns for m in msgs)
        images = [(m, reader.decode(m)) for m in msgs if m.topic == '/front/image_raw']
        for (m, img), stamp in zip(images, info.frame_stamps_ns):
            assert img.header.stamp.sec * 10**9 + img.header.stamp.nanosec == stamp
            assert m.log_time_ns == stamp + 10_000_000
            assert (img.width, img.height, img.encoding, img.step) == (160, 120, 'rgb8', 480)
        depth = reader.decode(next(m for m in msgs if m.topic == '/front/depth/image_raw'))
        values = np.frombuffer(bytes(depth.data), '<u2').reshape(120, 160)
        assert depth.encoding == '16UC1' and values[60, 150] == 800 and values[0, 0] == 0
        tasks = [reader.decode(m).data for m in msgs if m.topic == TASK_TOPIC]
        assert tasks == ['pick the cube', 'place it in the bowl']


def test_mcap_scene_bag_reads_with_independent_reader(tmp_path: Path) -> None:
    info = write_scene_bag(tmp_path / 'bag', ALL_INPUTS)
    seen = {}
    for m in read_ros2_messages(str(_storage_file(tmp_path / 'bag'))):
        seen.setdefault(m.channel.topic, []).append(m)
    assert {t: len(v) for t, v in seen.items()} == info.counts
    first = seen['/front/image_raw'][0].ros_msg
    assert (first.width, first.height, first.encoding) == (160, 120, 'rgb8')
    assert len(first.data) == 160 * 120 * 3
    jpeg = seen['/front/image_raw/compressed'][0].ros_msg
    assert jpeg.format.endswith('jpeg compressed bgr8') and bytes(jpeg.data[:2]) == b'\xff\xd8'
    info_msg = seen['/front/camera_info'][0].ros_msg
    assert info_msg.k[0] > 0 and info_msg.k[2] == pytest.approx(79.5)


def test_sqlite_payloads_deserialize_with_rclpy(tmp_path: Path) -> None:
    """The CDR written by rosbags is what rclpy (the live node's serializer) reads."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CompressedImage, Image

    spec = SceneSpec(**{**ALL_INPUTS.__dict__, 'storage': 'sqlite3', 'row_padding': 4})
    write_scene_bag(tmp_path / 'bag', spec)
    db = sqlite3.connect(_storage_file(tmp_path / 'bag'))
    rows = dict(db.execute('SELECT name, id FROM topics').fetchall())
    raw = db.execute('SELECT data FROM messages WHERE topic_id=? ORDER BY timestamp',
                     (rows['/front/image_raw'],)).fetchone()[0]
    img = deserialize_message(bytes(raw), Image)
    assert (img.width, img.step, len(img.data)) == (160, 160 * 3 + 4, 120 * (160 * 3 + 4))
    raw = db.execute('SELECT data FROM messages WHERE topic_id=?',
                     (rows['/front/image_raw/compressed'],)).fetchone()[0]
    assert bytes(deserialize_message(bytes(raw), CompressedImage).data[:2]) == b'\xff\xd8'
    db.close()


def test_writer_refuses_existing_output_and_replaces_only_bags(tmp_path: Path) -> None:
    write_scene_bag(tmp_path / 'bag', SceneSpec(duration_s=0.4))
    with pytest.raises(BagError) as err:
        write_scene_bag(tmp_path / 'bag', SceneSpec(duration_s=0.4))
    assert err.value.kind == 'exists' and '--force' in str(err.value)
    info = write_scene_bag(tmp_path / 'bag', SceneSpec(duration_s=0.6), force=True)
    with BagReader(tmp_path / 'bag') as reader:
        assert reader.topics['/front/image_raw'].count == len(info.frame_stamps_ns) == 3
    precious = tmp_path / 'home'
    precious.mkdir()
    (precious / 'notes.txt').write_text('keep me')
    with pytest.raises(BagError) as err:
        BagWriter(precious, force=True)
    assert err.value.kind == 'exists' and (precious / 'notes.txt').exists()


@pytest.mark.parametrize('interrupt', [RuntimeError('boom'), KeyboardInterrupt()])
def test_writer_leaves_readable_bag_on_error(tmp_path: Path, interrupt: BaseException) -> None:
    with pytest.raises(type(interrupt)):
        with BagWriter(tmp_path / 'out') as bag:
            bag.add_topic('/chatter', 'std_msgs/msg/String')
            for i in range(5):
                msg = bag.typestore.types['std_msgs/msg/String'](data=f'm{i}')
                bag.write_msg('/chatter', 1_000 + i, msg)
            raise interrupt
    assert (tmp_path / 'out' / 'metadata.yaml').exists()
    texts = [m.ros_msg.data for m in read_ros2_messages(str(_storage_file(tmp_path / 'out')))]
    assert texts == ['m0', 'm1', 'm2', 'm3', 'm4']


def test_missing_bag_topic_and_type_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(BagError) as err:
        BagReader(tmp_path / 'nope')
    assert err.value.kind == 'not_found'
    write_scene_bag(tmp_path / 'bag', SceneSpec(duration_s=0.4, depth=None))
    with BagReader(tmp_path / 'bag') as reader:
        with pytest.raises(BagError) as err:
            reader.require('/front/depth/image_raw', ('sensor_msgs/msg/Image',))
        assert err.value.kind == 'missing_topic'
        assert '/front/image_raw (sensor_msgs/msg/Image)' in str(err.value)
        with pytest.raises(BagError) as err:
            reader.require('/front/camera_info', ('sensor_msgs/msg/Image',))
        assert err.value.kind == 'wrong_type'
    with pytest.raises(BagError) as err:
        BagReader(tmp_path / 'bag', typestore='melodic').open()
    assert err.value.kind == 'unknown_distro' and 'humble' in str(err.value)


def test_unknown_message_type_without_definition(tmp_path: Path) -> None:
    """A sqlite3 bag of an old distro stores no definitions: unknown types are named."""
    with BagWriter(tmp_path / 'bag', storage='sqlite3') as bag:
        bag.add_topic('/custom', 'my_pkg/msg/Thing', msgdef='int32 x\n',
                      rihs01='RIHS01_' + '0' * 64)
        bag.write('/custom', 5, b'\x00\x01\x00\x00\x07\x00\x00\x00')
    db = sqlite3.connect(_storage_file(tmp_path / 'bag'))
    db.execute('DELETE FROM message_definitions')
    db.commit()
    db.close()
    with BagReader(tmp_path / 'bag', typestore='humble') as reader:
        msg = next(reader.messages())
        with pytest.raises(BagError) as err:
            reader.decode(msg)
    assert err.value.kind == 'unknown_type'
    assert 'my_pkg/msg/Thing' in str(err.value) and '--typestore' in str(err.value)


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_truncated_bag_is_a_clear_error(tmp_path: Path, storage: str) -> None:
    write_scene_bag(tmp_path / 'bag', SceneSpec(duration_s=2.0, storage=storage))
    f = _storage_file(tmp_path / 'bag')
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(BagError) as err:
        with BagReader(tmp_path / 'bag') as reader:
            list(reader.messages())
    assert err.value.kind == 'corrupt' and 'truncated or corrupt' in str(err.value)


def test_damage_mid_mcap_reports_what_was_read(tmp_path: Path) -> None:
    write_scene_bag(tmp_path / 'bag', SceneSpec(duration_s=10.0, image='both'))
    f = _storage_file(tmp_path / 'bag')
    data = bytearray(f.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 200_000] = bytes(200_000)
    f.write_bytes(bytes(data))
    read = 0
    with pytest.raises(BagError) as err:
        with BagReader(tmp_path / 'bag') as reader:
            for _ in reader.messages():
                read += 1
    assert err.value.kind == 'corrupt' and read > 0
    assert 'corrupt' in str(err.value) and str(tmp_path / 'bag') in str(err.value)


def test_killed_recording_without_metadata_is_readable(tmp_path: Path) -> None:
    info = write_scene_bag(tmp_path / 'bag', SceneSpec(duration_s=0.6, storage='sqlite3'))
    (tmp_path / 'bag' / 'metadata.yaml').unlink()
    with BagReader(tmp_path / 'bag') as reader:
        assert reader.storage == 'sqlite3'
        assert sum(1 for _ in reader.messages()) == sum(info.counts.values())
    shutil.rmtree(tmp_path / 'bag')
