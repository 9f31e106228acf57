"""``cosmos-planner play``: raw CDR published live with /clock, loop, remap, clear errors.

The player runs on a test peer node; another node in the same process subscribes over
DDS (reliable QoS), so what is checked is what a separate node would receive.

Runtime: about 9 s (bags played at 4x; one play in its own process).
"""

from pathlib import Path
import threading
from typing import Any, Dict

import pytest
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image
from std_msgs.msg import String

from cosmos_planner.bag.errors import BagError
from cosmos_planner.bag.play import Player, PlayOptions
from cosmos_planner.bag.reader import BagReader
from cosmos_planner.bag.scenes import SceneSpec, TASK_TOPIC, write_scene_bag
from cosmos_planner.cli.main import main
from ros_helpers import claim_domain_id, release_domain_id, RosPeer, wait_until


def _ns(stamp: Any) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


@pytest.fixture(scope='module')
def peer() -> Any:
    domain = claim_domain_id()
    with RosPeer(domain, name='bag_play_test') as node:
        yield node
    release_domain_id(domain)


@pytest.fixture(scope='module')
def bag(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    root = tmp_path_factory.mktemp('play')
    info = write_scene_bag(root / 'bag', SceneSpec(duration_s=2.0, storage='sqlite3'))
    return {'path': root / 'bag', 'info': info}


def test_play_publishes_the_recorded_bytes_with_clock(peer: RosPeer, bag: Dict) -> None:
    images = peer.collect(Image, '/front/image_raw', depth=100)
    clocks = peer.collect(Clock, '/clock', depth=1000)
    tasks = peer.collect(String, TASK_TOPIC)
    stats = Player(peer.node, PlayOptions(bag=str(bag['path']), clock_hz=100.0, rate=4.0,
                                          wait_for_subscribers_s=10.0,
                                          exclude=('/front/depth/image_raw',
                                                   '/front/camera_info'))).run()
    assert wait_until(lambda: images.count() == 10, 10.0)
    assert [_ns(m.header.stamp) for m in images.messages] == bag['info'].frame_stamps_ns
    with BagReader(bag['path']) as reader:
        first = reader.decode(next(reader.messages(['/front/image_raw'])))
        start_ns, end_ns = reader.start_ns, reader.end_ns
    assert bytes(images.messages[0].data) == bytes(first.data)
    assert [m.data for m in tasks.messages] == ['put the red cube in the blue bowl']
    assert stats.published == {'/front/image_raw': 10, TASK_TOPIC: 1}
    times = [_ns(m.clock) for m in clocks.messages]
    assert times == sorted(times) and times[0] == start_ns
    # clock advances 4 ns of bag per wall ns, published every 10 ms wall: 40 ms of bag
    assert end_ns - 45_000_000 <= times[-1] <= end_ns
    assert stats.clock_messages == len(times)


def test_loop_makes_clock_jump_back_and_remap_renames(peer: RosPeer, bag: Dict) -> None:
    images = peer.collect(Image, '/cam/image', depth=100)
    clocks = peer.collect(Clock, '/clock', depth=1000)
    clocks.clear()
    player = Player(peer.node, PlayOptions(
        bag=str(bag['path']), clock_hz=50.0, rate=8.0, loop=True,
        topics=('/front/image_raw',), remap={'/front/image_raw': '/cam/image'},
        wait_for_subscribers_s=10.0))
    thread = threading.Thread(target=player.run)
    thread.start()
    try:
        assert wait_until(lambda: images.count() >= 15, 20.0)
    finally:
        player.stop()
        thread.join(10)
    times = [_ns(m.clock) for m in clocks.messages]
    assert any(b < a for a, b in zip(times, times[1:]))  # looped: bag time went back
    assert player.stats.loops >= 2 and player.stats.stopped


def test_missing_topic_and_bad_options(peer: RosPeer, bag: Dict,
                                       capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(BagError) as err:
        Player(peer.node, PlayOptions(bag=str(bag['path']), topics=('/rear/image',))).run()
    assert err.value.kind == 'missing_topic' and '/front/image_raw' in str(err.value)
    with pytest.raises(BagError):
        PlayOptions(bag=str(bag['path']), rate=0.0)
    assert main(['play', str(bag['path']), '--remap', 'nonsense']) == 2
    assert 'FROM:=TO' in capsys.readouterr().err


def test_unknown_bag_is_a_clear_error(peer: RosPeer, tmp_path: Path) -> None:
    with pytest.raises(BagError) as err:
        Player(peer.node, PlayOptions(bag=str(tmp_path / 'nothing'))).run()
    assert err.value.kind == 'not_found'


def test_uninstalled_types_and_recorded_clock_are_skipped(peer: RosPeer,
                                                          tmp_path: Path) -> None:
    from cosmos_planner.bag.writer import BagWriter

    with BagWriter(tmp_path / 'bag') as bag:
        bag.add_topic('/custom', 'my_pkg/msg/Thing', msgdef='int32 x\n',
                      rihs01='RIHS01_' + '0' * 64)
        bag.add_topic('/clock', 'rosgraph_msgs/msg/Clock')
        bag.add_topic('/chatter', 'std_msgs/msg/String')
        ts = bag.typestore
        for i in range(3):
            bag.write('/custom', 1_000 + i, b'\x00\x01\x00\x00\x07\x00\x00\x00')
            bag.write_msg('/clock', 1_000 + i, ts.types['rosgraph_msgs/msg/Clock'](
                clock=ts.types['builtin_interfaces/msg/Time'](sec=0, nanosec=1_000 + i)))
            bag.write_msg('/chatter', 1_000 + i, ts.types['std_msgs/msg/String'](data=str(i)))
    chatter = peer.collect(String, '/chatter')
    stats = Player(peer.node, PlayOptions(bag=str(tmp_path / 'bag'), clock_hz=50.0,
                                          wait_for_subscribers_s=10.0)).run()
    assert stats.published == {'/chatter': 3} and stats.acknowledged
    assert 'not installed' in stats.skipped_topics['/custom']
    assert 'replaced by --clock' in stats.skipped_topics['/clock']
    assert wait_until(lambda: chatter.count() == 3, 10.0)
    with pytest.raises(BagError) as err:  # asked for by name: an error, not a skip
        Player(peer.node, PlayOptions(bag=str(tmp_path / 'bag'), topics=('/custom',))).run()
    assert err.value.kind == 'unknown_type' and 'my_pkg' in str(err.value)


def test_play_command_in_its_own_process(bag: Dict, tmp_path: Path) -> None:
    from ros_helpers import node_command, NodeProcess

    domain = claim_domain_id()
    try:
        with RosPeer(domain, name='play_cli_test') as other:
            images = other.collect(Image, '/front/image_raw', depth=100)
            cmd = node_command('cosmos-planner', 'cosmos_planner.cli.main') + [
                'play', str(bag['path']), '--clock', '50', '--rate', '4', '--topics',
                '/front/image_raw', '--wait-for-subscribers', '20']
            with NodeProcess(cmd, domain, tmp_path / 'play.log') as proc:
                code = proc.wait(60)
                output = proc.output()
            assert code == 0, output
            assert 'played 10 messages on 1 topics' in output
            assert wait_until(lambda: images.count() == 10, 10.0)
    finally:
        release_domain_id(domain)
