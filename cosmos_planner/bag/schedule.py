"""When the offline replay starts planning requests and publishes results, in bag time.

It reproduces the planner node's rule (``ros/planner_node.py``) against bag log times:

* a task arriving on ``~/task`` at time ``t`` requests a plan at ``t`` at once; a request
  still in flight is superseded (cancelled, never published);
* the replan timer (``replan_period_s`` > 0) is an rclpy timer on the ROS clock created at
  node start-up. Under ``use_sim_time`` the clock reads 0 until the first ``/clock``, and
  rcl keeps a timer on its grid when time jumps forward, so its ticks fall on multiples of
  the period in bag time: ``k * period``. A tick with a task and nothing in flight requests
  a plan (trigger ``periodic``); with a request in flight it is skipped;
* a request started at ``t`` occupies the single worker until its result is published at
  ``t + d``; ``d`` is the model time chosen by the replay (``--model-time``).

The live node fed by ``cosmos-planner play --clock`` (or ``ros2 bag play --clock``) sees
ticks when ``/clock`` passes ``k * period``, i.e. up to one clock period late, and frames
logged in that window may or may not be in its clip; plans are compared on their source
frames for that reason (``cosmos-planner diff``).

Order at equal times: a publication comes before a request (the worker is free again when
the tick fires); messages logged at time ``T`` are delivered before events at ``T`` (the
node has received everything logged up to its clock's value).
"""

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Event:
    """Something due at bag time ``time_ns``: ``publish`` or ``request`` (with trigger)."""

    time_ns: int
    kind: str
    trigger: str = ''


class PlanSchedule:
    """Pure scheduling state: no clock, no threads; the replay drives it with bag time."""

    def __init__(self, replan_period_s: float = 0.0, start_ns: int = 0) -> None:
        if replan_period_s < 0:
            raise ValueError(f'replan period must be >= 0, got {replan_period_s}')
        self.period_ns = int(round(replan_period_s * 1e9))
        self.task: Optional[str] = None
        self.task_id = ''
        self._request_at: Optional[int] = None
        self._busy_until: Optional[int] = None
        self._next_tick = self._tick_after(start_ns - 1) if self.period_ns else None
        self.skipped_ticks = 0

    def _tick_after(self, time_ns: int) -> int:
        return (time_ns // self.period_ns + 1) * self.period_ns

    @property
    def busy(self) -> bool:
        """Tell whether a request is in flight (started, not yet published)."""
        return self._busy_until is not None

    def set_task(self, time_ns: int, task: str, task_id: str) -> bool:
        """Take a task that arrived; True when it supersedes the request in flight.

        Call it after ``pop(time_ns)`` drained the events before the task's arrival (the
        replay delivers a message only once earlier events ran).
        """
        superseded = self._busy_until is not None
        self._busy_until = None
        self.task, self.task_id = task, task_id
        self._request_at = time_ns
        return superseded

    def clear_task(self) -> bool:
        """Stop planning (cancel); True when a request in flight is dropped."""
        dropped = self._busy_until is not None
        self.task, self.task_id = None, ''
        self._request_at = self._busy_until = None
        return dropped

    def started(self, publish_at_ns: int) -> None:
        """Mark the request just popped as running until ``publish_at_ns``."""
        self._busy_until = publish_at_ns

    def drop_in_flight(self) -> bool:
        """Forget the request in flight (clock reset); True when there was one."""
        dropped = self._busy_until is not None
        self._busy_until = None
        return dropped

    def pop(self, before_ns: Optional[int] = None, inclusive: bool = False) -> Optional[Event]:
        """Consume the earliest due event before ``before_ns`` (all when None).

        Ticks without a task, or with a request in flight, are consumed silently (the latter
        counted in ``skipped_ticks``), so the caller only sees work to do.
        """
        while True:
            options = []
            if self._busy_until is not None:
                options.append((self._busy_until, 0, Event(self._busy_until, 'publish')))
            if self._request_at is not None:
                options.append((self._request_at, 1, Event(self._request_at, 'request',
                                                           'task')))
            if self._next_tick is not None:
                options.append((self._next_tick, 2, Event(self._next_tick, 'request',
                                                          'periodic')))
            if not options:
                return None
            when, _, event = min(options, key=lambda o: (o[0], o[1]))
            if before_ns is not None and (when > before_ns or (when == before_ns
                                                               and not inclusive)):
                return None
            if event.kind == 'publish':
                self._busy_until = None
                return event
            if event.trigger == 'task':
                self._request_at = None
                return event
            self._next_tick = self._tick_after(when)
            if self.task is None:
                continue
            if self._busy_until is not None:
                self.skipped_ticks += 1
                continue
            return event
