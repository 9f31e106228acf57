"""Where the camera-to-target transform comes from: TF when tf2_ros exists, else parameters.

On a ROS machine with ``tf2_ros`` the transform ``T_target_camera`` is looked up at the plan
frame's stamp; on a pip-only machine (no tf2_ros wheel) the static ``target.translation`` /
``target.rotation_xyzw`` parameters are used. A failed lookup falls back to the static
transform and says so (``describe``), so a missing TF tree shows up in ``~/status`` instead
of silently planning in the wrong frame.
"""

from typing import Any, Optional, Tuple, TYPE_CHECKING

from cosmos_planner.geometry.transforms import Transform

if TYPE_CHECKING:
    from rclpy.node import Node


class TransformSource:
    """Look up ``T_target_camera``; None means "use the static parameters"."""

    def __init__(self, node: 'Node', use_tf: bool, timeout_s: float) -> None:
        """Create a TF buffer and listener on ``node`` when asked for and importable."""
        self.timeout_s = timeout_s
        self._buffer: Any = None
        self._listener: Any = None
        self.reason = 'tf.use_tf is false'
        if not use_tf:
            return
        try:
            import tf2_ros
        except ImportError:
            self.reason = 'tf2_ros is not installed'
            return
        self._buffer = tf2_ros.Buffer()
        self._listener = tf2_ros.TransformListener(self._buffer, node)
        self.reason = 'tf2_ros'

    @property
    def uses_tf(self) -> bool:
        """Whether lookups go to TF."""
        return self._buffer is not None

    def lookup(self, target: str, source: str,
               stamp_ns: int) -> Tuple[Optional[Transform], str]:
        """``(T_target_source or None, how it was obtained)`` at ``stamp_ns``."""
        if self._buffer is None or not target or not source or target == source:
            return None, f'static ({self.reason})'
        from rclpy.duration import Duration
        from rclpy.time import Time
        try:
            msg = self._buffer.lookup_transform(
                target, source, Time(nanoseconds=int(stamp_ns)),
                timeout=Duration(nanoseconds=int(self.timeout_s * 1e9)))
        except Exception as exc:  # noqa: BLE001 - tf2 raises several unrelated types
            return None, f'static (tf lookup {target} <- {source} failed: {exc})'
        t, q = msg.transform.translation, msg.transform.rotation
        return Transform((t.x, t.y, t.z), (q.x, q.y, q.z, q.w)), 'tf2_ros'
