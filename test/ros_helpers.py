"""Helpers for multi-process ROS tests: a node in its own process, test peers in this one.

Why these exist: rclpy tests that start a node the way a user does (a console script with
``--ros-args``) must wait for discovery, isolate themselves from other test runs on the same
machine, and always stop the subprocess, even when an assertion fails. Every helper waits
with a timeout and returns what it saw, so a failure says what was missing.

- ``claim_domain_id()``: a ROS_DOMAIN_ID no other process on this machine holds (a lock file
  per id in the temp dir), so parallel test runs of different engineers never cross-talk.
- ``NodeProcess``: runs the node (console script or ``python -m``) with a params file and
  ``--ros-args`` overrides, logs to a file, stops it with SIGINT then SIGKILL.
- ``RosPeer``: an rclpy context + node + executor thread in the test process with
  publishers, collecting subscriptions, service calls and parameter sets, torn down in the
  order that avoids aborts at exit.
"""

import errno
import fcntl
import os
from pathlib import Path
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Dict, IO, List, Optional, Sequence

from cosmos_planner.pipeline.publishing import PROGRESS_STATUSES

#: Domain ids handed out; Fast DDS ports for ids above 101 collide with ephemeral ports.
DOMAIN_RANGE = range(30, 101)
_held_locks: Dict[int, IO[str]] = {}


def claim_domain_id() -> int:
    """Reserve a ROS_DOMAIN_ID for this process (released when the process exits)."""
    lock_dir = Path(tempfile.gettempdir()) / 'cosmos_planner_ros_domains'
    lock_dir.mkdir(exist_ok=True)
    ids = list(DOMAIN_RANGE)
    random.Random(os.getpid() ^ time.monotonic_ns()).shuffle(ids)
    for domain in ids:
        if domain in _held_locks:
            continue
        handle = open(lock_dir / f'{domain}.lock', 'w')
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.close()
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                continue
            raise
        _held_locks[domain] = handle
        return domain
    raise RuntimeError('no free ROS_DOMAIN_ID in the test range')


def release_domain_id(domain: int) -> None:
    """Give a claimed domain id back (for long-lived pytest processes)."""
    handle = _held_locks.pop(domain, None)
    if handle is not None:
        handle.close()


def ros_env(domain: int, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Environment for a ROS subprocess on ``domain``, discovery limited to this host."""
    env = dict(os.environ)
    env.update(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               PYTHONUNBUFFERED='1', RCUTILS_COLORIZED_OUTPUT='0',
               OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    env.pop('ROS_LOCALHOST_ONLY', None)
    if extra:
        env.update(extra)
    return env


def write_params_file(path: Path, node_name: str, params: Dict[str, Any]) -> Path:
    """Write a params file ``{node_name: {ros__parameters: params}}`` (the package's writer)."""
    from cosmos_planner.settings import write_params_file as write

    return write(path, params, node_name)


def node_command(executable: str, module: str) -> List[str]:
    """How a user starts the node: the console script if installed, else ``python -m``."""
    script = Path(sys.prefix) / 'bin' / executable
    if script.exists():
        return [str(script)]
    found = shutil.which(executable)
    if found:
        return [found]
    return [sys.executable, '-m', module]


class NodeProcess:
    """A node in its own process; use as a context manager so it is always stopped."""

    def __init__(self, args: Sequence[str], domain: int, log_path: Path,
                 env: Optional[Dict[str, str]] = None) -> None:
        """Store the command; ``start`` launches it with output to ``log_path``."""
        self.args = list(args)
        self.env = ros_env(domain, env)
        self.log_path = Path(log_path)
        self.proc: Optional[subprocess.Popen] = None
        self._log: Optional[IO[bytes]] = None

    def start(self) -> 'NodeProcess':
        """Launch the process in its own process group (so children die with it)."""
        self._log = open(self.log_path, 'wb')
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.proc is not None and self.proc.poll() is None

    def interrupt(self) -> None:
        """Send SIGINT, as Ctrl-C in a terminal would."""
        if self.alive():
            self.proc.send_signal(signal.SIGINT)

    def wait(self, timeout: float) -> Optional[int]:
        """Exit code, or None if still running after ``timeout`` seconds."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        """SIGINT, then SIGKILL to the whole group after ``timeout``; returns the exit code."""
        if self.proc is None:
            return None
        if self.alive():
            self.interrupt()
            if self.wait(timeout) is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def output(self) -> str:
        """Everything the process wrote so far (for assertion messages)."""
        try:
            return self.log_path.read_text(errors='replace')
        except OSError:
            return ''

    def __enter__(self) -> 'NodeProcess':
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Collector:
    """Messages received on one topic, with a blocking ``wait_for``."""

    def __init__(self, topic: str) -> None:
        """Start empty."""
        self.topic = topic
        self.messages: List[Any] = []
        self.arrivals: List[float] = []
        self._cond = threading.Condition()

    def __call__(self, msg: Any) -> None:
        """Subscription callback."""
        with self._cond:
            self.messages.append(msg)
            self.arrivals.append(time.monotonic())
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[Any], bool] = lambda m: True,
                 timeout: float = 10.0, start: int = 0) -> Optional[Any]:
        """First message from index ``start`` on satisfying ``predicate``, or None."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for msg in self.messages[start:]:
                    if predicate(msg):
                        return msg
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 0.1))

    def count(self) -> int:
        """Messages received so far."""
        with self._cond:
            return len(self.messages)

    def clear(self) -> None:
        """Forget what was received."""
        with self._cond:
            self.messages.clear()
            self.arrivals.clear()


class RosPeer:
    """A test-side rclpy node spinning in a thread, on its own context and domain."""

    def __init__(self, domain: int, name: str = 'test_peer', use_sim_time: bool = False) -> None:
        """Create the context, node and executor and start spinning."""
        import rclpy
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.parameter import Parameter

        os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node(name, context=self.context)
        if use_sim_time:
            self.node.set_parameters([Parameter('use_sim_time', Parameter.Type.BOOL, True)])
        self.executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()
        self.collectors: Dict[str, Collector] = {}
        self._param_clients: Dict[str, Any] = {}

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - context shut down under us during teardown
            pass

    def publisher(self, msg_type: Any, topic: str, reliable: bool = True,
                  depth: int = 10) -> Any:
        """Create a reliable publisher by default, so tests do not lose frames."""
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        qos = QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE if reliable
                         else ReliabilityPolicy.BEST_EFFORT)
        return self.node.create_publisher(msg_type, topic, qos)

    def collect(self, msg_type: Any, topic: str, depth: int = 50,
                reliable: bool = True) -> Collector:
        """Subscribe and keep every message in a ``Collector``."""
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        collector = Collector(topic)
        qos = QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE if reliable
                         else ReliabilityPolicy.BEST_EFFORT)
        self.node.create_subscription(msg_type, topic, collector, qos)
        self.collectors[topic] = collector
        return collector

    def wait_for_subscribers(self, publisher: Any, count: int = 1,
                             timeout: float = 20.0) -> bool:
        """Block until ``publisher`` is matched by ``count`` subscriptions (discovery)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if publisher.get_subscription_count() >= count:
                return True
            time.sleep(0.05)
        return False

    def wait_for_publishers(self, topic: str, count: int = 1, timeout: float = 20.0) -> bool:
        """Block until ``topic`` has ``count`` publishers (the node under test is up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.node.count_publishers(topic) >= count:
                return True
            time.sleep(0.05)
        return False

    def call(self, srv_type: Any, name: str, request: Any = None,
             timeout: float = 10.0) -> Any:
        """Call a service and return its response (raises TimeoutError with the name)."""
        client = self.node.create_client(srv_type, name)
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                raise TimeoutError(f'service {name} did not appear within {timeout} s')
            future = client.call_async(request if request is not None else srv_type.Request())
            deadline = time.monotonic() + timeout
            while not future.done() and time.monotonic() < deadline:
                time.sleep(0.01)
            if not future.done():
                raise TimeoutError(f'service {name} did not answer within {timeout} s')
            return future.result()
        finally:
            self.node.destroy_client(client)

    def wait_for_lifecycle_state(self, node_fqn: str, label: str, timeout: float = 60.0,
                                 alive: Callable[[], bool] = lambda: True) -> str:
        """Poll ``<node>/get_state`` until its label is ``label``; returns the last label.

        Gives up early when ``alive()`` turns false (the node process exited).
        """
        from lifecycle_msgs.srv import GetState
        deadline = time.monotonic() + timeout
        last = ''
        while time.monotonic() < deadline and alive():
            try:
                resp = self.call(GetState, f'{node_fqn}/get_state',
                                 timeout=min(2.0, max(0.5, deadline - time.monotonic())))
                last = resp.current_state.label
                if last == label:
                    return last
            except TimeoutError:
                pass
            time.sleep(0.1)
        return last

    def _param_client(self, node_fqn: str, timeout: float) -> Any:
        from rclpy.parameter_client import AsyncParameterClient
        client = self._param_clients.get(node_fqn)
        if client is None:
            client = AsyncParameterClient(self.node, node_fqn)
            self._param_clients[node_fqn] = client
        if not client.wait_for_services(timeout_sec=timeout):
            raise TimeoutError(f'parameter services of {node_fqn} did not appear')
        return client

    def _result(self, future: Any, what: str, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not future.done():
            raise TimeoutError(f'{what} did not answer within {timeout} s')
        return future.result()

    def set_parameters(self, node_fqn: str, params: Dict[str, Any],
                       timeout: float = 10.0) -> List[Any]:
        """Set parameters of a remote node (rclpy's parameter client); return the results."""
        from rclpy.parameter import Parameter
        client = self._param_client(node_fqn, timeout)
        future = client.set_parameters([Parameter(k, value=v) for k, v in params.items()])
        return list(self._result(future, f'{node_fqn} set_parameters', timeout).results)

    def get_parameters(self, node_fqn: str, names: Sequence[str],
                       timeout: float = 10.0) -> Dict[str, Any]:
        """Return the current values of remote parameters, as Python values."""
        from rclpy.parameter import parameter_value_to_python
        client = self._param_client(node_fqn, timeout)
        resp = self._result(client.get_parameters(list(names)),
                            f'{node_fqn} get_parameters', timeout)
        return {n: parameter_value_to_python(v) for n, v in zip(names, resp.values)}

    def close(self) -> None:
        """Tear down in the order that avoids aborts: executor, thread, node, context."""
        import rclpy
        self.executor.shutdown()
        self._thread.join(5)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    def __enter__(self) -> 'RosPeer':
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_until(predicate: Callable[[], bool], timeout: float, period: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(period)
    return bool(predicate())


class SimClock:
    """Publishes ``/clock`` at 20 Hz from a thread, at a time the test sets (sim time)."""

    def __init__(self, peer: RosPeer, start_ns: int = 0, period_s: float = 0.05) -> None:
        """Start publishing ``start_ns``."""
        from rosgraph_msgs.msg import Clock
        self._msg_type = Clock
        self._pub = peer.publisher(Clock, '/clock', reliable=True, depth=1)
        self._ns = int(start_ns)
        self._period = period_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def set(self, ns: int) -> None:
        """Publish ``ns`` from now on (immediately once, then periodically)."""
        with self._lock:
            self._ns = int(ns)
        self._publish()

    @property
    def ns(self) -> int:
        """Return the time being published."""
        with self._lock:
            return self._ns

    def _publish(self) -> None:
        from builtin_interfaces.msg import Time
        ns = self.ns
        self._pub.publish(self._msg_type(clock=Time(sec=ns // 1_000_000_000,
                                                    nanosec=ns % 1_000_000_000)))

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            try:
                self._publish()
            except Exception:  # noqa: BLE001 - context shut down during teardown
                return

    def stop(self) -> None:
        """Stop publishing."""
        self._stop.set()
        self._thread.join(2)


# --- the planner node under test ------------------------------------------------------------

#: The node's fully qualified name with the default parameters.
NODE = '/cosmos_planner'
NS = 1_000_000_000


def status_data(msg: Any) -> Dict[str, Any]:
    """Return a ``~/status`` message as its JSON object."""
    import json
    return json.loads(msg.data)


def is_final(msg: Any, task_id: str) -> bool:
    """Whether ``msg`` says how the request of ``task_id`` ended (not a progress event)."""
    data = status_data(msg)
    return (data.get('task_id') == task_id
            and data.get('status') not in (None, *PROGRESS_STATUSES))


def diag_dict(msg: Any) -> Dict[str, Dict[str, str]]:
    """Return a DiagnosticArray as {status name: {key: value, '_message', '_level'}}."""
    return {s.name: dict({kv.key: kv.value for kv in s.values}, _message=s.message,
                         _level=str(int.from_bytes(s.level, 'little')))
            for s in msg.status}


class NodeHarness:
    """The planner node in its own process plus this process's peer, clock and collectors.

    Why one class: every node test needs the same start (a params file, the console script,
    a private ROS domain), the same teardown order (clock, peer, process, domain) even when
    an assertion fails, the same sim clock the node is known to have seen, and the same
    waits for a status or a diagnostics counter. Each wait is bounded and says what it
    missed, so a slow machine fails a test instead of passing it without testing anything.

    ``clock_ns`` starts ``/clock`` at once; ``set_clock`` starts it on first use otherwise
    (sim time before the first ``/clock``). ``extra_args`` go after ``--ros-args``.
    """

    def __init__(self, tmp: Path, params: Dict[str, Any], sim_time: bool = False,
                 clock_ns: Optional[int] = None, extra_args: Sequence[str] = (),
                 env: Optional[Dict[str, str]] = None, status_depth: int = 200,
                 diagnostics_depth: int = 100) -> None:
        """Start the node process and the peer; collect ``~/status`` and ``/diagnostics``."""
        from diagnostic_msgs.msg import DiagnosticArray
        from std_msgs.msg import String

        self.domain = claim_domain_id()
        self.clock: Optional[SimClock] = None
        self.peer: Optional[RosPeer] = None
        params_file = write_params_file(Path(tmp) / 'params.yaml', 'cosmos_planner', params)
        cmd = node_command('planner_node', 'cosmos_planner.ros.planner_node') + [
            '--ros-args', '--params-file', str(params_file)]
        if sim_time:
            cmd += ['-p', 'use_sim_time:=true']
        self.node = NodeProcess(cmd + list(extra_args), self.domain, Path(tmp) / 'node.log',
                                env)
        try:
            self.node.start()
            self.peer = RosPeer(self.domain)
            if clock_ns is not None:
                self.clock = SimClock(self.peer, clock_ns)
            self.status = self.peer.collect(String, NODE + '/status', depth=status_depth)
            self.diagnostics = self.peer.collect(DiagnosticArray, '/diagnostics',
                                                 depth=diagnostics_depth)
            self.task_pub = self.peer.publisher(String, NODE + '/task')
        except BaseException:
            self.close()
            raise

    # -- start and stop ----------------------------------------------------------------------
    def wait_active(self, publishers: Sequence[Any] = (), outputs: Sequence[str] = ()) -> None:
        """Wait until the node is active, subscribed and publishing.

        ``publishers`` (and the task publisher) must be matched by the node's subscriptions;
        ``outputs`` are private output names (``'plan'``) this peer must see published.
        """
        state = self.peer.wait_for_lifecycle_state(NODE, 'active', 60, self.node.alive)
        assert state == 'active', f'node not active ({state!r}):\n{self.output()}'
        for pub in (*publishers, self.task_pub):
            assert self.peer.wait_for_subscribers(pub), \
                f'node never subscribed to {pub.topic_name}'
        for name in outputs:
            assert self.peer.wait_for_publishers(NODE + '/' + name), name

    def close(self) -> None:
        """Stop the clock, the peer and the node, and give the domain back (always all)."""
        try:
            if self.clock is not None:
                self.clock.stop()
            if self.peer is not None:
                self.peer.close()
        finally:
            self.node.stop()
            release_domain_id(self.domain)

    def __enter__(self) -> 'NodeHarness':
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def output(self, chars: int = 3000) -> str:
        """Return the end of the node's log (for assertion messages)."""
        return self.node.output()[-chars:]

    # -- time --------------------------------------------------------------------------------
    def set_clock(self, ns: int) -> int:
        """Publish ``ns`` on /clock and wait until the node's diagnostics are stamped with it.

        The stamp is the node's ROS time when it published them, so this proves the node
        saw the new time (forwards or back) before the test goes on.
        """
        if self.clock is None:
            self.clock = SimClock(self.peer, ns)
        self.clock.set(ns)
        col = self.diagnostics
        msg = col.wait_for(lambda d: d.header.stamp.sec * NS + d.header.stamp.nanosec == ns,
                           10, start=max(0, col.count() - 1))
        assert msg is not None, f'the node never saw the sim clock at {ns} ns'
        return ns

    # -- tasks and statuses ------------------------------------------------------------------
    def send(self, task_id: str, text: str = 'put the block on the plate') -> None:
        """Publish a task with its id."""
        import json

        from std_msgs.msg import String
        self.task_pub.publish(String(data=json.dumps({'task': text, 'task_id': task_id})))

    def wait_status(self, task_id: str, *statuses: str, timeout: float = 10.0,
                    start: int = 0) -> Optional[Dict[str, Any]]:
        """First status of ``task_id`` among ``statuses`` (from index ``start``), or None."""
        def match(msg: Any) -> bool:
            data = status_data(msg)
            return data.get('task_id') == task_id and data.get('status') in statuses
        msg = self.status.wait_for(match, timeout, start)
        return None if msg is None else status_data(msg)

    def final_status(self, task_id: str, timeout: float = 20.0,
                     start: int = 0) -> Dict[str, Any]:
        """Return the status that ends the request of ``task_id`` (asserts it came)."""
        msg = self.status.wait_for(lambda m: is_final(m, task_id), timeout, start)
        assert msg is not None, f'no final status for {task_id}:\n{self.output()}'
        return status_data(msg)

    def task(self, task_id: str, text: str = 'put the block on the plate') -> Dict[str, Any]:
        """Send a task and return its final status."""
        self.send(task_id, text)
        return self.final_status(task_id)

    def wait_generating(self, task_id: str, timeout: float = 30.0,
                        start: int = 0) -> Dict[str, Any]:
        """Wait until the node says the backend started generating for ``task_id``.

        Asserts the request has not ended yet, so "generating" is still true afterwards
        for a backend that does not answer by itself (a hang).
        """
        started = self.wait_status(task_id, 'generating', timeout=timeout, start=start)
        seen = [m.data for m in self.status.messages[start:] if f'"{task_id}"' in m.data]
        assert started is not None, \
            f'{task_id} never reached the backend; its statuses: {seen}\n{self.output()}'
        final = self.status.wait_for(lambda m: is_final(m, task_id), 0, start)
        assert final is None, f'{task_id} ended instead of generating: {final.data}'
        return started

    # -- diagnostics -------------------------------------------------------------------------
    def diag(self, timeout: float = 10.0,
             pred: Callable[[Dict[str, Dict[str, str]]], bool] = lambda d: True
             ) -> Dict[str, Dict[str, str]]:
        """Return the next /diagnostics (the newest on) satisfying ``pred``, as ``diag_dict``."""
        col = self.diagnostics
        msg = col.wait_for(lambda m: pred(diag_dict(m)), timeout,
                           start=max(0, col.count() - 1))
        assert msg is not None, 'no matching /diagnostics'
        return diag_dict(msg)

    def diag_value(self, part: str, key: str) -> int:
        """Return an integer of the newest /diagnostics (0 when absent).

        ``part`` and ``key`` as in ``('camera cam0', 'frames')`` or
        ``('planner', 'outcome.ok')``.
        """
        status = self.diag().get(f'cosmos_planner: {part}', {})
        return int(status.get(key, 0))

    def wait_diag_value(self, part: str, key: str, at_least: int,
                        timeout: float = 10.0) -> int:
        """Wait until a diagnostics counter reaches ``at_least``; return its value then.

        On timeout, return the newest value instead, for the caller's assertion message.
        """
        name = f'cosmos_planner: {part}'
        col = self.diagnostics
        msg = col.wait_for(lambda m: int(diag_dict(m).get(name, {}).get(key, 0)) >= at_least,
                           timeout, start=max(0, col.count() - 1))
        if msg is None:
            return self.diag_value(part, key)
        return int(diag_dict(msg)[name][key])

    def wait_outcome_counted(self, status: str, at_least: int,
                             timeout: float = 10.0) -> Dict[str, str]:
        """Wait until the node counted ``at_least`` outcomes ``status``.

        Returns the planner's diagnostics then; its ``outcome.ok`` says how many plans the
        node ever published, which is how a test proves that nothing was published.
        """
        key = f'outcome.{status}'
        found = self.diag(timeout, lambda d: int(d['cosmos_planner: planner']
                                                 .get(key, 0)) >= at_least)
        return found['cosmos_planner: planner']
