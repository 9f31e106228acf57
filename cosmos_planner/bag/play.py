"""``cosmos-planner play BAG --clock``: a pure-Python bag player for machines without rosbag2.

It publishes a bag's messages live, paced by their recorded log times (scaled by
``--rate``), and with ``--clock`` publishes ``/clock`` so a node started with
``use_sim_time:=true`` runs in bag time. Payloads are published as the raw CDR bytes from
the bag (rclpy's ``publish(bytes)``): nothing is decoded or re-encoded, so what the node
receives is byte-for-byte what was recorded.

Equivalence with ``ros2 bag play --clock`` (on a ROS machine)::

    ros2 bag play BAG --clock 40 --rate R [--loop] [--qos-profile-overrides-path ...]
    cosmos-planner play BAG --clock 40 --rate R [--loop] [--qos reliable]

Both publish ``/clock`` (rosgraph_msgs/Clock) periodically at the given frequency in
*wall* time (40 Hz when ``--clock`` has no value), carrying the current playback time
``bag_start + elapsed_wall * rate``, and publish each message when playback time reaches
its log time. A node therefore sees the same clock and the same message order either way;
its timers (the replan period) fire at the first ``/clock`` at or after their deadline, so
with either player the plans' source frames can differ only where a frame's log time lies
within one clock period of a timer deadline. A ``/clock`` recorded in the bag (from a
simulator) is not played with ``--clock`` (two clocks would fight); without ``--clock`` it is
played like any topic and drives sim time itself. ``--loop`` restarts at the bag start, which
makes ``/clock`` jump backwards (the node clears its buffers, as on a sim reset). QoS:
``reliable`` (default here; keep-last ``--depth``) never drops on a healthy localhost
link, which the tests rely on; ``best_effort`` is the camera-driver behaviour
(``qos_profile_sensor_data``); ``ros2 bag play`` uses the recorded offered QoS instead.
"""

import argparse
from dataclasses import dataclass, field
import importlib
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, TYPE_CHECKING

from cosmos_planner.bag.errors import BagError
from cosmos_planner.bag.reader import BagReader

if TYPE_CHECKING:  # rclpy is imported when playing starts
    from rclpy.node import Node
    from rclpy.qos import QoSProfile

DEFAULT_CLOCK_HZ = 40.0
#: Longest wait at the end of play for subscribers to acknowledge reliable messages.
DRAIN_TIMEOUT_S = 10.0
QOS_CHOICES = ('reliable', 'best_effort', 'sensor_data')


@dataclass
class PlayOptions:
    """What to play and how; mirrors the command-line flags."""

    bag: str
    clock_hz: Optional[float] = None
    rate: float = 1.0
    loop: bool = False
    topics: Sequence[str] = ()
    exclude: Sequence[str] = ()
    remap: Dict[str, str] = field(default_factory=dict)
    qos: str = 'reliable'
    depth: int = 100
    #: Seconds to wait (at most) until every publisher has a subscriber before playing.
    wait_for_subscribers_s: float = 0.0
    delay_s: float = 0.0
    typestore: Optional[str] = None

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise BagError(f'--rate must be positive, not {self.rate}', kind='bad_option')
        if self.clock_hz is not None and not self.clock_hz > 0:
            raise BagError(f'--clock must be positive, not {self.clock_hz}', kind='bad_option')
        if self.qos not in QOS_CHOICES:
            raise BagError(f'--qos must be one of {", ".join(QOS_CHOICES)}', kind='bad_option')
        if self.depth < 1:
            raise BagError(f'--depth must be at least 1, not {self.depth}', kind='bad_option')


@dataclass
class PlayStats:
    """What was published, for the summary line and for tests."""

    published: Dict[str, int] = field(default_factory=dict)
    clock_messages: int = 0
    loops: int = 0
    #: topic -> why it was not played
    skipped_topics: Dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0
    stopped: bool = False
    #: Whether every reliable message was acknowledged by its subscribers before play ended.
    acknowledged: bool = True


def message_class(msgtype: str) -> Any:
    """Import the rclpy message class of ``pkg/msg/Name``; BagError when not installed."""
    parts = msgtype.split('/')
    if len(parts) != 3:
        raise BagError(f'cannot publish {msgtype}: not a pkg/msg/Name type', kind='unknown_type')
    try:
        return getattr(importlib.import_module(f'{parts[0]}.{parts[1]}'), parts[2])
    except (ImportError, AttributeError):
        raise BagError(f'message type {msgtype} is not installed for rclpy (install the '
                       f'{parts[0]} package, e.g. ros-kilted-{parts[0].replace("_", "-")})',
                       kind='unknown_type') from None


def qos_profile(name: str, depth: int) -> 'QoSProfile':
    """Build the rclpy QoS profile of ``--qos``."""
    from rclpy.qos import (DurabilityPolicy, HistoryPolicy, qos_profile_sensor_data,
                           QoSProfile, ReliabilityPolicy)

    if name == 'sensor_data':
        return qos_profile_sensor_data
    reliability = (ReliabilityPolicy.RELIABLE if name == 'reliable'
                   else ReliabilityPolicy.BEST_EFFORT)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=reliability,
                      durability=DurabilityPolicy.VOLATILE)


def select_topics(reader: BagReader, options: PlayOptions) -> Dict[str, Any]:
    """Topic -> rclpy message class of the topics to play.

    Topics asked for by name must exist and have an importable type (else BagError);
    other topics whose type is not installed are skipped and reported, like rosbag2 does.
    """
    available = reader.topics
    asked = list(options.topics)
    for topic in asked:
        reader.require(topic, ())
    exclude = set(options.exclude)
    if options.clock_hz:
        exclude.add('/clock')  # the player's own clock replaces a recorded one
    names = asked or [t for t in available if t not in exclude]
    classes: Dict[str, Any] = {}
    for topic in names:
        try:
            classes[topic] = message_class(available[topic].msgtype)
        except BagError:
            if asked:
                raise
    return classes


class Player:
    """Publishes a bag on an rclpy node; ``run`` blocks until the end or ``stop``."""

    def __init__(self, node: 'Node', options: PlayOptions) -> None:
        self.node = node
        self.options = options
        self._stop = threading.Event()
        self.stats = PlayStats()

    def stop(self) -> None:
        """Ask ``run`` to return soon (from another thread or a signal handler)."""
        self._stop.set()

    def run(self) -> PlayStats:
        """Play (once, or until stopped with ``loop``); returns what was published."""
        from rosgraph_msgs.msg import Clock

        opts = self.options
        t_wall0 = time.monotonic()
        with BagReader(opts.bag, opts.typestore) as reader:
            classes = select_topics(reader, opts)
            for topic, info in reader.topics.items():
                if topic in classes or topic in opts.exclude or (
                        opts.topics and topic not in opts.topics):
                    continue
                self.stats.skipped_topics[topic] = (
                    'recorded clock replaced by --clock' if topic == '/clock' and opts.clock_hz
                    else f'type {info.msgtype} is not installed')
            qos = qos_profile(opts.qos, opts.depth)
            pubs = {topic: self.node.create_publisher(cls, opts.remap.get(topic, topic), qos)
                    for topic, cls in classes.items()}
            clock_pub = None
            if opts.clock_hz:
                clock_pub = self.node.create_publisher(
                    Clock, '/clock', qos_profile('reliable', 1))
            self._wait_for_subscribers(list(pubs.values()))
            if opts.delay_s > 0 and self._stop.wait(opts.delay_s):
                self.stats.stopped = True
            start_ns = reader.start_ns
            while not self._stop.is_set():
                self._play_once(reader, pubs, clock_pub, Clock, start_ns)
                self.stats.loops += 1
                if not opts.loop:
                    break
            self.stats.stopped = self._stop.is_set()
            self._drain([*pubs.values(), *([clock_pub] if clock_pub is not None else [])])
        self.stats.wall_s = time.monotonic() - t_wall0
        return self.stats

    def _drain(self, pubs: List[Any]) -> None:
        """Wait (bounded) until subscribers acknowledged every reliable message.

        A player that exits right after its last publish destroys its writers while the
        last reliable samples are still in flight, and the subscribers never get them.
        """
        from rclpy.duration import Duration

        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        for pub in pubs:
            left = max(0.0, deadline - time.monotonic())
            if not pub.wait_for_all_acked(Duration(nanoseconds=int(left * 1e9))):
                self.stats.acknowledged = False

    def _wait_for_subscribers(self, pubs: List[Any]) -> None:
        deadline = time.monotonic() + self.options.wait_for_subscribers_s
        while time.monotonic() < deadline and not self._stop.is_set():
            if all(p.get_subscription_count() > 0 for p in pubs):
                return
            time.sleep(0.02)

    def _publish_clock(self, clock_pub: Any, clock_cls: Any, bag_ns: int) -> None:
        msg = clock_cls()
        msg.clock.sec, msg.clock.nanosec = divmod(int(bag_ns), 1_000_000_000)
        clock_pub.publish(msg)
        self.stats.clock_messages += 1

    def _play_once(self, reader: BagReader, pubs: Dict[str, Any], clock_pub: Any,
                   clock_cls: Any, start_ns: int) -> None:
        rate = self.options.rate
        clock_hz = self.options.clock_hz  # set whenever there is a clock publisher
        clock_period = (1.0 / clock_hz if clock_pub is not None and clock_hz is not None
                        else None)
        wall0 = time.monotonic()
        next_clock = wall0
        for msg in reader.messages(list(pubs)):
            due = wall0 + (msg.log_time_ns - start_ns) * 1e-9 / rate
            while True:
                if self._stop.is_set():
                    return
                now = time.monotonic()
                if clock_period is not None and next_clock <= min(now, due):
                    self._publish_clock(clock_pub, clock_cls,
                                        start_ns + round((next_clock - wall0) * rate * 1e9))
                    next_clock += clock_period
                    continue
                if now >= due:
                    break
                wake = due if clock_period is None else min(due, next_clock)
                self._stop.wait(max(0.0, min(wake - now, 0.05)))
            pubs[msg.topic].publish(msg.raw)
            self.stats.published[msg.topic] = self.stats.published.get(msg.topic, 0) + 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``cosmos-planner play``."""
    parser.add_argument('bag', help='rosbag2 directory, .mcap or .db3 file')
    parser.add_argument('--clock', nargs='?', type=float, const=DEFAULT_CLOCK_HZ, default=None,
                        metavar='HZ', help='publish /clock at HZ (wall time; 40 if no value), '
                        'for nodes with use_sim_time:=true')
    parser.add_argument('--rate', type=float, default=1.0, help='playback speed factor')
    parser.add_argument('--loop', action='store_true', help='restart at the end until Ctrl-C')
    parser.add_argument('--topics', nargs='+', default=(), metavar='TOPIC',
                        help='play only these topics (default: all with installed types)')
    parser.add_argument('--exclude', nargs='+', default=(), metavar='TOPIC',
                        help='topics not to play')
    parser.add_argument('--remap', nargs='+', default=(), metavar='FROM:=TO',
                        help='publish a topic under another name')
    parser.add_argument('--qos', choices=QOS_CHOICES, default='reliable',
                        help='publisher QoS (reliable: nothing dropped, as tests need)')
    parser.add_argument('--depth', type=int, default=100, help='keep-last history depth')
    parser.add_argument('--wait-for-subscribers', type=float, default=0.0, metavar='S',
                        help='wait up to S seconds until every topic has a subscriber')
    parser.add_argument('--delay', type=float, default=0.0, metavar='S',
                        help='sleep S seconds after creating the publishers')
    parser.add_argument('--typestore', default=None,
                        help='distro whose definitions decode types the bag does not embed')


def options_from_args(args: argparse.Namespace) -> PlayOptions:
    """Build PlayOptions from parsed flags (BagError on a malformed ``--remap``)."""
    remap: Dict[str, str] = {}
    for item in args.remap:
        src, sep, dst = item.partition(':=')
        if not sep or not src or not dst:
            raise BagError(f'--remap takes FROM:=TO, not {item!r}', kind='bad_option')
        remap[src] = dst
    return PlayOptions(bag=args.bag, clock_hz=args.clock, rate=args.rate, loop=args.loop,
                       topics=tuple(args.topics), exclude=tuple(args.exclude), remap=remap,
                       qos=args.qos, depth=args.depth,
                       wait_for_subscribers_s=args.wait_for_subscribers, delay_s=args.delay,
                       typestore=args.typestore)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``cosmos-planner play``; returns the exit status."""
    try:
        options = options_from_args(args)
    except BagError as exc:
        print(f'cosmos-planner play: {exc}', file=sys.stderr)
        return 2
    import rclpy
    from rclpy.node import Node

    rclpy.init(args=getattr(args, 'ros_args', None))
    node = Node('cosmos_planner_player')
    player = Player(node, options)
    code = 0
    try:
        stats = player.run()
    except BagError as exc:
        print(f'cosmos-planner play: {exc}', file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        player.stop()
        stats = player.stats
        stats.stopped = True
        code = 130
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    if code in (0, 130):
        total = sum(stats.published.values())
        print(f'played {total} messages on {len(stats.published)} topics, '
              f'{stats.clock_messages} /clock, {stats.loops} pass(es) in {stats.wall_s:.1f} s'
              + (' (stopped)' if stats.stopped else ''))
        for topic, why in stats.skipped_topics.items():
            print(f'  skipped {topic}: {why}', file=sys.stderr)
        if not stats.acknowledged:
            print(f'  warning: not every reliable message was acknowledged within '
                  f'{DRAIN_TIMEOUT_S:g} s (a subscriber is slow or gone)', file=sys.stderr)
    return code
