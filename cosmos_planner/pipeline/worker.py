"""The planning worker: one thread owns the backend, one request in flight, newest wins.

Subscription callbacks never plan. They (and the services and the task topic) call
``submit`` / ``cancel`` here, which only set state under a lock and signal the thread. A
newer job supersedes the pending one and cancels the running one (``cancel_running(job)`` cancels
that job's pipeline, which makes the backend raise ``GenerationCancelled``; it must do
nothing when ``job`` is no longer the one running). Each job
carries an ``epoch``: a cancel or a clock reset bumps the epoch, so a result that finishes
after it is dropped instead of published. Catching happens in exactly one place: an
exception escaping ``run_job`` becomes a failed outcome reported through ``on_error``.

Cancellation is repeated, not fired once: a cancel that lands between "job taken" and "the
backend started generating" would otherwise be cleared by the layers below (the planner and
backends reset their cancel flags when a generation starts). So while a cancelled job is
still running, a small canceller thread calls ``cancel_running`` every ``RECANCEL_S``.

This module is plain Python (no rclpy), so its behaviour is tested without ROS.
"""

from dataclasses import dataclass, field
import itertools
import threading
import time
from typing import Any, Callable, Optional

#: Period at which a cancelled-but-still-running job is cancelled again.
RECANCEL_S = 0.1
#: Longest the canceller keeps trying (a backend that ignores cancel is reported, not fought).
RECANCEL_LIMIT_S = 60.0


@dataclass(frozen=True)
class PlanJob:
    """One planning request: the task, why it was asked for, and the epoch it belongs to."""

    task_id: str
    task: str
    trigger: str
    epoch: int
    seq: int
    meta: dict = field(default_factory=dict)


class PlanningWorker:
    """Runs ``run_job(job)`` on its own thread, one at a time, newest job wins."""

    def __init__(self, run_job: Callable[[PlanJob], Any],
                 on_done: Callable[[PlanJob, Any, bool], None],
                 cancel_running: Callable[[PlanJob], None],
                 on_error: Callable[[PlanJob, BaseException], None],
                 name: str = 'planning-worker') -> None:
        """Set up the worker; ``start`` launches the thread.

        ``on_done(job, outcome, current)`` receives every finished job; ``current`` is False
        when the job was superseded or cancelled meanwhile (its result must not be
        published).
        """
        self._run_job = run_job
        self._on_done = on_done
        self._cancel_running = cancel_running
        self._on_error = on_error
        self._cond = threading.Condition()
        self._pending: Optional[PlanJob] = None
        self._running: Optional[PlanJob] = None
        self._epoch = 0
        self._stop = False
        self._seq = itertools.count(1)
        self._cancel_target: Optional[PlanJob] = None
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._canceller = threading.Thread(target=self._cancel_loop, name=name + '-cancel',
                                           daemon=True)

    def start(self) -> None:
        """Start the worker thread (and its canceller)."""
        self._thread.start()
        self._canceller.start()

    @property
    def epoch(self) -> int:
        """Return the current epoch; jobs from an older epoch are stale."""
        with self._cond:
            return self._epoch

    @property
    def running(self) -> Optional[PlanJob]:
        """Return the job being planned now, if any."""
        with self._cond:
            return self._running

    @property
    def busy(self) -> bool:
        """Tell whether a job runs or waits."""
        with self._cond:
            return self._running is not None or self._pending is not None

    def submit(self, task_id: str, task: str, trigger: str, **meta: Any) -> PlanJob:
        """Queue a job; it replaces a pending one and cancels a running one (newest wins)."""
        with self._cond:
            job = PlanJob(task_id, task, trigger, self._epoch, next(self._seq), dict(meta))
            superseded = self._running
            self._pending = job
            if superseded is not None:
                self._cancel_target = superseded
            self._cond.notify_all()
        if superseded is not None:
            self._safe(self._cancel_running, superseded)
        return job

    def cancel(self) -> Optional[PlanJob]:
        """Drop the pending job and cancel the running one; returns the job that ran, if any.

        Bumps the epoch, so whatever the running job still returns is not published.
        """
        with self._cond:
            self._epoch += 1
            self._pending = None
            running = self._running
            if running is not None:
                self._cancel_target = running
                self._cond.notify_all()
        if running is not None:
            self._safe(self._cancel_running, running)
        return running

    def is_current(self, job: PlanJob) -> bool:
        """Whether ``job``'s result may still be published (same epoch, nothing newer)."""
        return self.replaced_by(job) is None

    def replaced_by(self, job: PlanJob) -> Optional[str]:
        """Why ``job`` is no longer current: 'cancelled', 'superseded', or None if it is."""
        with self._cond:
            if job.epoch != self._epoch:
                return 'cancelled'
            newest = self._pending or self._running
            if newest is not None and newest.seq > job.seq:
                return 'superseded'
            return None

    def stop(self, timeout: float = 5.0) -> bool:
        """Cancel everything and join the thread; True when it ended within ``timeout``."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self.cancel()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                job, self._pending = self._pending, None
                assert job is not None  # the wait ends with a pending job (or a stop)
                self._running = job
            outcome: Any = None
            try:
                outcome = self._run_job(job)
            except BaseException as exc:  # noqa: B902 - one catch point: report, continue
                with self._cond:
                    self._running = None
                    self._cond.notify_all()
                self._safe(self._on_error, job, exc)
                continue
            with self._cond:
                self._running = None
                self._cond.notify_all()
            self._safe(self._on_done, job, outcome, self.is_current(job))

    def _cancel_loop(self) -> None:
        """Keep cancelling the targeted job until it is no longer the running one."""
        while True:
            with self._cond:
                while self._cancel_target is None:
                    if self._stop:
                        return
                    self._cond.wait()
                target = self._cancel_target
            deadline = time.monotonic() + RECANCEL_LIMIT_S
            while time.monotonic() < deadline:
                with self._cond:
                    if self._running is not target:
                        break
                    self._cond.wait(RECANCEL_S)
                    if self._running is not target:
                        break
                self._safe(self._cancel_running, target)
            with self._cond:
                if self._cancel_target is target:
                    self._cancel_target = None

    def _safe(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - a reporting bug must not kill the worker
            import traceback
            traceback.print_exc()
