"""The planning worker: one thread owns the backend, one request in flight, newest wins.

Subscription callbacks never plan. They (and the services and the task topic) call
``submit`` / ``cancel`` here, which only set state under a lock and signal the thread.

Each job carries its own ``CancelToken`` (``cosmos_planner.model.cancel``), created here
when the job is submitted; ``run_job(job)`` passes ``job.cancel`` down to the backend. A
newer job supersedes the pending one and cancels the running one's token (reason
``superseded``); ``cancel()`` (a cancel request, deactivation, a clock reset, shutdown)
drops the pending job and cancels the token of every job not yet reported (reason
``cancelled``), so a result that finishes after it is dropped instead of published. A token
is never reset, so a cancel that lands between "job taken" and "the backend started
generating" is seen when generation starts: nothing has to repeat it. Catching happens in
exactly one place: an exception escaping ``run_job`` becomes a failed outcome reported
through ``on_error``.

This module is plain Python (no rclpy), so its behaviour is tested without ROS.
"""

from dataclasses import dataclass, field
import itertools
import threading
from typing import Any, Callable, Optional

from cosmos_planner.model.cancel import CANCELLED, CancelToken, SUPERSEDED


@dataclass(frozen=True)
class PlanJob:
    """One planning request: the task, why it was asked for, and its cancel token."""

    task_id: str
    task: str
    trigger: str
    seq: int
    meta: dict = field(default_factory=dict)
    #: The job's cancel token, handed to every layer that runs it.
    cancel: CancelToken = field(default_factory=CancelToken, compare=False, repr=False)


class PlanningWorker:
    """Runs ``run_job(job)`` on its own thread, one at a time, newest job wins."""

    def __init__(self, run_job: Callable[[PlanJob], Any],
                 on_done: Callable[[PlanJob, Any, bool], None],
                 on_error: Callable[[PlanJob, BaseException], None],
                 name: str = 'planning-worker') -> None:
        """Set up the worker; ``start`` launches the thread.

        ``run_job(job)`` must honour ``job.cancel``. ``on_done(job, outcome, current)``
        receives every finished job; ``current`` is False when the job was superseded or
        cancelled meanwhile (its result must not be published).
        """
        self._run_job = run_job
        self._on_done = on_done
        self._on_error = on_error
        self._cond = threading.Condition()
        self._pending: Optional[PlanJob] = None
        self._running: Optional[PlanJob] = None
        #: The job taken by the thread until its outcome was reported (running or not).
        self._unreported: Optional[PlanJob] = None
        self._stop = False
        self._seq = itertools.count(1)
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        """Start the worker thread."""
        self._thread.start()

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
            job = PlanJob(task_id, task, trigger, next(self._seq), dict(meta))
            for old in (self._pending, self._running):
                # An explicit cancel already on a token keeps its reason.
                if old is not None and not old.cancel.cancelled:
                    old.cancel.cancel(SUPERSEDED)
            self._pending = job
            self._cond.notify_all()
        return job

    def cancel(self) -> Optional[PlanJob]:
        """Drop the pending job and cancel the running one; returns the job that ran, if any.

        Cancels the token of every job not yet reported, also one that already finished
        and waits for ``on_done``, so whatever it returns is not published.
        """
        with self._cond:
            for job in (self._pending, self._unreported):
                if job is not None:
                    job.cancel.cancel(CANCELLED)
            self._pending = None
            return self._running

    def is_current(self, job: PlanJob) -> bool:
        """Whether ``job``'s result may still be published (not cancelled, nothing newer)."""
        return self.replaced_by(job) is None

    def replaced_by(self, job: PlanJob) -> Optional[str]:
        """Why ``job`` is no longer current: 'cancelled', 'superseded', or None if it is."""
        with self._cond:
            if job.cancel.cancelled:
                return CANCELLED if job.cancel.reason == CANCELLED else SUPERSEDED
            newest = self._pending or self._running
            if newest is not None and newest.seq > job.seq:
                return SUPERSEDED
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
                self._running = self._unreported = job
            outcome: Any = None
            try:
                outcome = self._run_job(job)
            except BaseException as exc:  # noqa: B902 - one catch point: report, continue
                with self._cond:
                    self._running = None
                    self._cond.notify_all()
                self._safe(self._on_error, job, exc)
                self._reported(job)
                continue
            with self._cond:
                self._running = None
                self._cond.notify_all()
            self._safe(self._on_done, job, outcome, self.is_current(job))
            self._reported(job)

    def _reported(self, job: PlanJob) -> None:
        with self._cond:
            if self._unreported is job:
                self._unreported = None

    def _safe(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - a reporting bug must not kill the worker
            import traceback
            traceback.print_exc()
