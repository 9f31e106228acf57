"""Tests of pipeline/worker.py: the planning worker's supersede and cancel rules."""

import threading
import time
from typing import Any, List, Optional, Tuple

from cosmos_planner.errors import GenerationCancelled
from cosmos_planner.pipeline.worker import PlanJob, PlanningWorker


class _Generation:
    """A run_job that blocks until its job's cancel token is cancelled.

    ``release`` (set unless ``hold_before_start``) gates the start, so a test can land a
    cancel between "job taken" and "generation started" without guessing by sleeping;
    ``finish`` (set unless ``hold_after_cancel``) gates the return after the cancel.
    """

    def __init__(self, hold_before_start: bool = False,
                 hold_after_cancel: bool = False) -> None:
        self.taken = threading.Event()
        self.started = threading.Event()
        self.release = threading.Event()
        self.finish = threading.Event()
        if not hold_before_start:
            self.release.set()
        if not hold_after_cancel:
            self.finish.set()

    def run(self, job: PlanJob) -> str:
        self.taken.set()
        assert self.release.wait(10)
        self.started.set()
        cancelled = job.cancel.wait(10)
        assert self.finish.wait(10)
        return 'cancelled' if cancelled else 'finished'


def _worker(gen: _Generation) -> Tuple[PlanningWorker, List[Tuple[str, Any, bool]]]:
    done: List[Tuple[str, Any, bool]] = []
    worker = PlanningWorker(gen.run, lambda j, o, c: done.append((j.task_id, o, c)),
                            lambda j, e: done.append((j.task_id, e, False)))
    worker.start()
    return worker, done


def _wait(pred: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return False


def test_newer_job_supersedes_and_cancels_the_running_one() -> None:
    gen = _Generation()
    worker, done = _worker(gen)
    try:
        first = worker.submit('a', 'task a', 'task')
        assert gen.started.wait(5)
        gen.started.clear()
        worker.submit('b', 'task b', 'task')
        assert _wait(lambda: len(done) >= 1)
        assert done[0] == ('a', 'cancelled', False)
        assert worker.replaced_by(first) == 'superseded'
        assert first.cancel.reason == 'superseded'
        assert gen.started.wait(5) and worker.running.task_id == 'b'
    finally:
        assert worker.stop(5)
    assert done[-1][0] == 'b' and done[-1][2] is False   # stopped: cancelled, not current


def test_a_cancel_before_the_generation_starts_is_not_lost() -> None:
    gen = _Generation(hold_before_start=True)
    worker, done = _worker(gen)
    try:
        job = worker.submit('a', 'task a', 'task')
        assert gen.taken.wait(5)
        worker.cancel()                       # lands before the generation starts
        gen.release.set()
        assert _wait(lambda: len(done) == 1), 'the early cancel was lost'
        assert done[0] == ('a', 'cancelled', False)
        assert worker.replaced_by(job) == 'cancelled' and job.cancel.cancelled
    finally:
        worker.stop(5)


def test_a_cancel_after_a_supersede_reports_cancelled() -> None:
    gen = _Generation(hold_after_cancel=True)
    worker, done = _worker(gen)
    try:
        first = worker.submit('a', 'task a', 'task')
        assert gen.started.wait(5)
        second = worker.submit('b', 'task b', 'task')
        assert first.cancel.wait(5) and first.cancel.reason == 'superseded'
        worker.cancel()                       # drops b; a's result is cancelled, not replaced
        assert second.cancel.cancelled
        gen.finish.set()
        assert _wait(lambda: len(done) == 1)
        assert done[0] == ('a', 'cancelled', False)
        assert worker.replaced_by(first) == 'cancelled'
        assert not worker.busy
    finally:
        worker.stop(5)


def test_a_cancel_while_the_outcome_is_reported_drops_it() -> None:
    """A clock reset between "job finished" and "outcome published" still drops it."""
    seen: List[Optional[str]] = []

    def on_done(job: PlanJob, outcome: Any, current: bool) -> None:
        worker.cancel()                       # e.g. a clock reset on another thread
        seen.append(worker.replaced_by(job))

    worker = PlanningWorker(lambda job: 'finished', on_done, lambda j, e: None)
    worker.start()
    try:
        worker.submit('a', 'task a', 'task')
        assert _wait(lambda: len(seen) == 1)
        assert seen == ['cancelled']
    finally:
        worker.stop(5)


def test_errors_are_reported_and_the_worker_continues() -> None:
    calls = []

    def run(job: PlanJob) -> str:
        calls.append(job.task_id)
        if job.task_id == 'boom':
            raise GenerationCancelled('injected')
        return 'ok'

    done: List[Tuple[str, Any]] = []
    worker = PlanningWorker(run, lambda j, o, c: done.append((j.task_id, o)),
                            lambda j, e: done.append((j.task_id, e)))
    worker.start()
    try:
        worker.submit('boom', 'x', 'task')
        assert _wait(lambda: len(done) == 1)
        worker.submit('fine', 'y', 'task')
        assert _wait(lambda: len(done) == 2)
    finally:
        worker.stop(5)
    assert isinstance(done[0][1], GenerationCancelled) and done[1] == ('fine', 'ok')
