"""Fault injection: a small OpenAI-compatible HTTP server on 127.0.0.1 that fails on cue.

Not a model: it answers ``/v1/chat/completions`` with a fixed plan, or with the next fault
from a script (HTTP errors, slow or dripping bodies, truncated or garbage JSON, a connection
closed mid-body, ``content: null`` with reasoning only, ...), in both the plain JSON and the
streamed (server-sent events) form. It counts and records every request, so tests can see
the client's retries at the server. Only the loopback interface is ever bound.
"""

import json
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Deque, Dict, List, Optional

#: A schema-valid ``plan`` answer (cosmos_planner.model.plan_schema.ModelAnswer).
PLAN_ANSWER = json.dumps({
    'next_action': 'pick up the red cube',
    'steps': ['reach the cube', 'grasp it'],
    'trajectory': [
        {'point_2d': [500, 600], 'label': 'gripper trajectory'},
        {'point_2d': [520, 400], 'label': 'gripper trajectory'},
        {'point_2d': [700, 300], 'label': 'gripper trajectory'},
    ],
})
THINKING = 'The cube is left of the gripper, so the gripper moves left and down first.'

#: Every fault the server knows; ``status:<code>`` and ``slow:<seconds>`` take a value.
FAULTS = (
    'ok', 'status:<code>', 'slow:<seconds>', 'drip', 'half_close', 'reset',
    'truncated_json', 'garbage', 'reasoning_only', 'reasoning_split', 'inline_think',
    'empty', 'length', 'mm_untrusted', 'stream_error:<code>',
)


def free_port() -> int:
    """Return a loopback port with nothing listening on it (refused connections)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class FaultServer:
    """OpenAI-compatible fault injection server; use as a context manager.

    ``script(*faults)`` queues faults for the next chat requests, one each; when the queue is
    empty every request gets ``default`` (``'ok'`` unless changed).
    """

    def __init__(self, model: str = 'fault-model', port: int = 0,
                 answer: str = PLAN_ANSWER) -> None:
        self.model = model
        self.answer = answer
        self.default = 'ok'
        self.models_fault: Optional[str] = None
        self.requests: List[Dict[str, Any]] = []
        #: HTTP headers of each chat request, in the order of ``requests``.
        self.request_headers: List[Dict[str, str]] = []
        self.model_requests = 0
        self._queue: Deque[str] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(('127.0.0.1', port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: Optional[threading.Thread] = None

    # -- control --------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """Return the base URL as OpenAI clients want it (with ``/v1``)."""
        return f'http://127.0.0.1:{self.port}/v1'

    @property
    def chat_count(self) -> int:
        with self._lock:
            return len(self.requests)

    def script(self, *faults: str) -> None:
        with self._lock:
            self._queue.extend(faults)

    def clear(self) -> None:
        """Forget queued faults and go back to answering ``ok``."""
        with self._lock:
            self._queue.clear()
            self.default = 'ok'

    def start(self) -> 'FaultServer':
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={'poll_interval': 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> 'FaultServer':
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _next_fault(self, body: Dict[str, Any], headers: Dict[str, str]) -> str:
        with self._lock:
            self.requests.append(body)
            self.request_headers.append(headers)
            return self._queue.popleft() if self._queue else self.default

    # -- HTTP -----------------------------------------------------------------------------
    def _handler_class(self) -> type:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server naming
                if self.path.rstrip('/') in ('/v1/models', '/models'):
                    with server._lock:
                        server.model_requests += 1
                    fault = server.models_fault
                    if fault and fault.startswith('status:'):
                        return self._error(int(fault.split(':')[1]))
                    if fault == 'reset':
                        return self._reset()
                    return self._json(200, {'object': 'list', 'data': [
                        {'id': server.model, 'object': 'model', 'owned_by': 'fault'}]})
                if self.path == '/health':
                    return self._json(200, {})
                self._error(404)

            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                length = int(self.headers.get('Content-Length') or 0)
                raw = self.rfile.read(length)
                if not self.path.rstrip('/').endswith('/chat/completions'):
                    return self._error(404)
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self._error(400)
                fault = server._next_fault(body, {k.lower(): v for k, v in self.headers.items()})
                stream = bool(body.get('stream'))
                self._serve(fault, body, stream)

            # -- responses ----------------------------------------------------------------
            def _serve(self, fault: str, body: Dict[str, Any], stream: bool) -> None:
                answer = server.answer
                if fault.startswith('status:'):
                    return self._error(int(fault.split(':')[1]))
                if fault == 'mm_untrusted':  # vLLM without --trust-request-mm-kwargs
                    if 'mm_processor_kwargs' in body:
                        return self._error(400, (
                            'Per-request mm_processor_kwargs are disabled by default because '
                            'they can change multimodal preprocessing resource usage. Start '
                            'the server with --trust-request-mm-kwargs only when clients are '
                            'trusted. (parameter=mm_processor_kwargs)'))
                    fault = 'ok'
                if fault.startswith('stream_error:'):  # error event mid-stream (vLLM)
                    return self._stream_error(int(fault.split(':')[1]))
                if fault.startswith('slow:'):
                    if server._stopping.wait(float(fault.split(':')[1])):
                        return
                    fault = 'ok'
                if fault == 'reset':
                    return self._reset()
                if fault == 'garbage':
                    return self._raw(200, b'<html>502 bad gateway</html> not json',
                                     'text/event-stream' if stream else 'application/json')
                if fault == 'drip':
                    return self._drip()
                parts = {
                    'ok': (answer, None, 'stop'),
                    'reasoning_only': (None, answer, 'stop'),
                    'reasoning_split': (answer, THINKING, 'stop'),
                    'inline_think': (f'<think>\n{THINKING}\n</think>\n\n{answer}', None, 'stop'),
                    'empty': ('', None, 'stop'),
                    'length': (answer[:len(answer) // 2], None, 'length'),
                    'truncated_json': (answer, None, 'stop'),
                    'half_close': (answer, None, 'stop'),
                }
                if fault not in parts:
                    return self._error(500, f'fault server: unknown fault {fault!r}')
                content, reasoning, finish = parts[fault]
                if stream:
                    return self._sse(body, content, reasoning, finish, fault)
                payload = json.dumps(self._completion(content, reasoning, finish)).encode()
                if fault == 'truncated_json':
                    return self._raw(200, payload[:len(payload) // 2], 'application/json')
                if fault == 'half_close':
                    return self._half_close(payload)
                self._raw(200, payload, 'application/json')

            def _completion(self, content: Optional[str], reasoning: Optional[str],
                            finish: str) -> Dict[str, Any]:
                message: Dict[str, Any] = {'role': 'assistant', 'content': content}
                if reasoning is not None:
                    message['reasoning_content'] = reasoning
                return {
                    'id': 'chatcmpl-fault', 'object': 'chat.completion',
                    'created': int(time.time()), 'model': server.model,
                    'choices': [{'index': 0, 'message': message, 'finish_reason': finish}],
                    'usage': {'prompt_tokens': 123, 'completion_tokens': 45,
                              'total_tokens': 168},
                }

            def _chunk(self, delta: Dict[str, Any], finish: Optional[str] = None,
                       usage: bool = False) -> bytes:
                data: Dict[str, Any] = {
                    'id': 'chatcmpl-fault', 'object': 'chat.completion.chunk',
                    'created': int(time.time()), 'model': server.model,
                    'choices': [] if usage else [
                        {'index': 0, 'delta': delta, 'finish_reason': finish}],
                }
                if usage:
                    data['usage'] = {'prompt_tokens': 123, 'completion_tokens': 45,
                                     'total_tokens': 168}
                return b'data: ' + json.dumps(data).encode() + b'\n\n'

            def _sse(self, body: Dict[str, Any], content: Optional[str],
                     reasoning: Optional[str], finish: str, fault: str) -> None:
                self.send_response(200)
                self.send_header('Content-Type', 'text/event-stream')
                self.send_header('Connection', 'close')
                self.end_headers()
                self.close_connection = True
                events = [self._chunk({'role': 'assistant', 'content': ''})]
                if reasoning:
                    events += [self._chunk({'reasoning': reasoning[i:i + 16]})
                               for i in range(0, len(reasoning), 16)]
                if content:
                    events += [self._chunk({'content': content[i:i + 16]})
                               for i in range(0, len(content), 16)]
                events.append(self._chunk({}, finish))
                if (body.get('stream_options') or {}).get('include_usage'):
                    events.append(self._chunk({}, usage=True))
                events.append(b'data: [DONE]\n\n')
                if fault == 'truncated_json':
                    cut = events[2]
                    events = events[:2] + [cut[:len(cut) // 2] + b'\n\n']
                elif fault == 'half_close':
                    events = events[:len(events) // 2]
                try:
                    for event in events:
                        self.wfile.write(event)
                        self.wfile.flush()
                except OSError:
                    return
                if fault == 'half_close':
                    self._reset()

            def _stream_error(self, code: int) -> None:
                self.send_response(200)
                self.send_header('Content-Type', 'text/event-stream')
                self.send_header('Connection', 'close')
                self.end_headers()
                self.close_connection = True
                error = {'error': {'message': 'Internal server error', 'type': 'fault',
                                   'code': code}}
                try:
                    self.wfile.write(self._chunk({'role': 'assistant', 'content': '{"next'}))
                    self.wfile.write(b'data: ' + json.dumps(error).encode() + b'\n\n')
                    self.wfile.flush()
                except OSError:
                    pass

            def _json(self, status: int, data: Dict[str, Any]) -> None:
                self._raw(status, json.dumps(data).encode(), 'application/json')

            def _error(self, status: int, message: str = '') -> None:
                self._json(status, {'error': {
                    'message': message or f'fault server: injected HTTP {status}',
                    'type': 'fault', 'code': status}})

            def _raw(self, status: int, payload: bytes, ctype: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header('Content-Type', ctype)
                    self.send_header('Content-Length', str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    self.wfile.flush()
                except OSError:
                    pass

            def _half_close(self, payload: bytes) -> None:
                """Promise the whole body, send half, then close the connection."""
                try:
                    self.send_response(200)
                    self.send_header('Content-Type', 'application/json')
                    self.send_header('Content-Length', str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload[:len(payload) // 2])
                    self.wfile.flush()
                except OSError:
                    pass
                self._reset()

            def _drip(self) -> None:
                """Headers at once, then one byte every 0.2 s for up to 30 s: alive but slow."""
                try:
                    self.send_response(200)
                    self.send_header('Content-Type', 'application/json')
                    self.send_header('Content-Length', '100000')
                    self.end_headers()
                    for _ in range(150):
                        if server._stopping.wait(0.2):
                            break
                        self.wfile.write(b' ')
                        self.wfile.flush()
                except OSError:
                    pass
                self._reset()

            def _reset(self) -> None:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        return Handler
