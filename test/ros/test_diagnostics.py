"""Tests of ros/diagnostics.py: silent cameras and the per-camera diagnostics levels."""

from ros_helpers import NS

from cosmos_planner.ros.diagnostics import NodeStats, STALE, WARN


def test_silent_cameras_are_reported_once_per_silence() -> None:
    stats = NodeStats(['a', 'b'])
    stats.frame('a', 1, arrival_ros_ns=1 * NS, delay_ms=2.0)
    stats.frame('b', 1, arrival_ros_ns=1 * NS, delay_ms=None)
    assert stats.silent_cameras(2 * NS, 2 * NS) == []
    assert stats.silent_cameras(4 * NS, 2 * NS) == ['a', 'b']
    assert stats.silent_cameras(5 * NS, 2 * NS) == []
    stats.frame('a', 2, arrival_ros_ns=5 * NS, delay_ms=3.0)
    stats.bad_input('a', 'unknown_encoding', 'xyz')
    arr = stats.to_array(6 * NS, 2 * NS)
    levels = {s.name.split()[-1]: s.level for s in arr.status}
    assert levels['a'] == WARN and levels['b'] == STALE
    values = {kv.key: kv.value for kv in arr.status[0].values}
    assert values['bad.unknown_encoding'] == '1' and values['ingest_delay_samples'] == '2'
    assert stats.silent_cameras(9 * NS, 2 * NS) == ['a']
