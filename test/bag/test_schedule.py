"""The replay's planning schedule (pure): tasks, replan ticks on the period grid, one in flight.

Runtime: well under 1 s.
"""

from cosmos_planner.bag.schedule import PlanSchedule

S = 1_000_000_000


def _drain(schedule: PlanSchedule, until_ns: int, model_ns: int) -> list:
    """Run the schedule like the replay does, each request taking ``model_ns``."""
    seen = []
    while True:
        event = schedule.pop(until_ns, inclusive=True)
        if event is None:
            return seen
        seen.append((event.time_ns, event.kind, event.trigger))
        if event.kind == 'request':
            schedule.started(event.time_ns + model_ns)


def test_task_requests_at_once_then_ticks_on_period_multiples() -> None:
    schedule = PlanSchedule(1.0, start_ns=100 * S)
    assert _drain(schedule, 100 * S + S // 2, 0) == []  # ticks without a task do nothing
    schedule.set_task(100 * S + 550_000_000, 'pick', 'task-1')
    events = _drain(schedule, 103 * S, 0)
    requests = [(t, trig) for t, kind, trig in events if kind == 'request']
    assert requests == [(100 * S + 550_000_000, 'task'), (101 * S, 'periodic'),
                        (102 * S, 'periodic'), (103 * S, 'periodic')]
    # zero model time: each publication comes right after its request, before the next one
    assert [k for _, k, _ in events] == ['request', 'publish'] * 4


def test_ticks_while_in_flight_are_skipped() -> None:
    schedule = PlanSchedule(1.0, start_ns=0)
    assert _drain(schedule, 500_000_000, 0) == []  # the replay drains before delivering
    schedule.set_task(500_000_000, 'pick', 'task-1')
    events = _drain(schedule, 5 * S, 1_700_000_000)  # each request takes 1.7 s
    requests = [t for t, kind, _ in events if kind == 'request']
    assert requests == [500_000_000, 3 * S, 5 * S]
    assert schedule.skipped_ticks == 3  # ticks at 1, 2 and 4 s found the worker busy


def test_new_task_supersedes_the_request_in_flight() -> None:
    schedule = PlanSchedule(0.0)
    schedule.set_task(S, 'pick', 'task-1')
    assert schedule.pop(2 * S).trigger == 'task'
    schedule.started(5 * S)
    assert schedule.busy
    assert schedule.set_task(2 * S, 'place', 'task-2') is True
    assert not schedule.busy and schedule.task == 'place'
    event = schedule.pop(None)
    assert (event.time_ns, event.trigger) == (2 * S, 'task')
    assert schedule.pop(None) is None  # no period: nothing more


def test_publication_before_tick_at_equal_time() -> None:
    schedule = PlanSchedule(1.0, start_ns=1)
    schedule.set_task(1, 'pick', 'task-1')
    assert schedule.pop(1, inclusive=True).trigger == 'task'
    schedule.started(S)  # publishes exactly at the 1 s tick
    first, second = schedule.pop(S, inclusive=True), schedule.pop(S, inclusive=True)
    assert (first.kind, second.kind, second.trigger) == ('publish', 'request', 'periodic')
    assert schedule.skipped_ticks == 0
