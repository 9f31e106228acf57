"""Start and stop a local vLLM OpenAI-compatible server, for tests, benchmarks and demos.

vLLM runs from its own venv (``.venv-vllm``, made by ``scripts/setup_vllm.sh``; its CPU build
pins torch and transformers versions that clash with the project venv), as a child process
in its own session, so ``stop()`` ends the API server *and* its engine workers by killing the
process group. Readiness is ``GET /v1/models`` listing the served model name.

The flags are the ones that matter on vLLM >= 0.12 (docs/serving.md says why):
``--structured-outputs-config`` with ``disable_any_whitespace`` (otherwise an untrained or
weak model can emit whitespace forever inside JSON), ``--trust-request-mm-kwargs`` (vLLM
refuses per-request ``mm_processor_kwargs`` without it, HTTP 400), ``--enforce-eager`` (no
compile step: start in ~50 s on CPU), and on CPU ``VLLM_CPU_KVCACHE_SPACE`` (GiB of KV cache)
and a temporary ``VLLM_CACHE_ROOT``.

Command line (``python -m cosmos_planner.backends.openai.vllm_server``, wrapped by
``scripts/vllm_server.sh``):
``start --model DIR --port 8000 --pidfile F`` starts a detached server and returns when it is
ready; ``stop --pidfile F`` stops it.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from cosmos_planner.errors import BackendUnavailable, ConfigError

VENV_NAME = '.venv-vllm'
VENV_ENV = 'COSMOS_PLANNER_VLLM_VENV'
DEFAULT_SERVED_NAME = 'cosmos-reason2'


def find_vllm_python(venv: Optional[os.PathLike] = None) -> Optional[Path]:
    """Find the Python of the vLLM venv; None when there is none.

    Looked for in order: ``venv``, ``$COSMOS_PLANNER_VLLM_VENV``, ``.venv-vllm`` beside the
    source tree, ``.venv-vllm`` in the current directory.
    """
    candidates = [Path(venv)] if venv else []
    if os.environ.get(VENV_ENV):
        candidates.append(Path(os.environ[VENV_ENV]))
    candidates += [Path(__file__).resolve().parents[3] / VENV_NAME, Path.cwd() / VENV_NAME]
    for cand in candidates:
        python = cand / 'bin' / 'python'
        if python.exists():
            return python
    return None


def free_port(host: str = '127.0.0.1') -> int:
    """Return a port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class VLLMServerConfig:
    """What to serve and how; defaults suit a tiny checkpoint on a 2-core CPU machine."""

    model: str
    served_model_name: str = DEFAULT_SERVED_NAME
    host: str = '127.0.0.1'
    port: int = 0
    max_model_len: int = 4096
    max_num_seqs: int = 8
    kv_cache_gib: int = 1
    structured_backend: str = 'xgrammar'
    disable_any_whitespace: bool = True
    trust_request_mm_kwargs: bool = True
    reasoning_parser: Optional[str] = None
    enforce_eager: bool = True
    omp_threads_bind: str = 'nobind'
    extra_args: Tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not Path(self.model).is_dir():
            raise ConfigError(f'vLLM model folder {self.model} does not exist')
        if self.max_model_len < 256 or self.max_num_seqs < 1 or self.kv_cache_gib < 1:
            raise ConfigError('need max_model_len >= 256, max_num_seqs >= 1, kv_cache_gib >= 1')


def build_command(cfg: VLLMServerConfig, python: os.PathLike, port: int) -> List[str]:
    """Return the server's command line.

    The module is started directly: the ``vllm`` console script cannot find the metadata of
    the ``vllm-cpu`` distribution.
    """
    cmd = [str(python), '-m', 'vllm.entrypoints.openai.api_server',
           '--model', str(cfg.model), '--served-model-name', cfg.served_model_name,
           '--host', cfg.host, '--port', str(port),
           '--max-model-len', str(cfg.max_model_len), '--max-num-seqs', str(cfg.max_num_seqs),
           '--structured-outputs-config', json.dumps(
               {'backend': cfg.structured_backend,
                'disable_any_whitespace': cfg.disable_any_whitespace})]
    if cfg.enforce_eager:
        cmd.append('--enforce-eager')
    if cfg.trust_request_mm_kwargs:
        cmd.append('--trust-request-mm-kwargs')
    if cfg.reasoning_parser:
        cmd += ['--reasoning-parser', cfg.reasoning_parser]
    return cmd + list(cfg.extra_args)


def build_env(cfg: VLLMServerConfig, cache_root: os.PathLike) -> Dict[str, str]:
    """Environment of the server: CPU KV cache size, cache folder, offline, no telemetry."""
    env = dict(os.environ)
    for key in ('PYTHONPATH', 'VIRTUAL_ENV', 'PYTHONHOME'):
        env.pop(key, None)  # the project venv's packages must not leak into vLLM's
    env.update({
        'VLLM_CPU_KVCACHE_SPACE': str(cfg.kv_cache_gib),
        'VLLM_CPU_OMP_THREADS_BIND': cfg.omp_threads_bind,
        'VLLM_CACHE_ROOT': str(cache_root),
        'HF_HUB_OFFLINE': '1', 'TRANSFORMERS_OFFLINE': '1',
        'VLLM_NO_USAGE_STATS': '1', 'DO_NOT_TRACK': '1',
    })
    return env


def served_models(url: str, timeout_s: float = 2.0) -> List[str]:
    """Ids listed at ``{url}/models``; raises OSError/ValueError when not answering."""
    with urllib.request.urlopen(f'{url}/models', timeout=timeout_s) as response:
        return [m['id'] for m in json.loads(response.read())['data']]


def kill_group(pid: int, timeout_s: float = 20.0) -> bool:
    """SIGTERM the process group led by ``pid``, SIGKILL it if still alive after the wait.

    Returns True when something was running. Only this group is signalled.
    """
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return True
        try:  # reap the leader if it is our child, so it does not linger as a zombie
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True


def group_rss_mib(pid: int) -> float:
    """Resident memory of every process in the group led by ``pid`` (Linux /proc)."""
    total = 0
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pid:
                continue
            for line in (entry / 'status').read_text().splitlines():
                if line.startswith('VmRSS:'):
                    total += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total / 1024.0


class VLLMServer:
    """A vLLM server child process, stopped whatever happens when used with ``with``.

    ``url`` is the OpenAI base URL (``http://127.0.0.1:PORT/v1``).
    """

    def __init__(self, cfg: VLLMServerConfig, python: Optional[os.PathLike] = None,
                 log_path: Optional[os.PathLike] = None) -> None:
        found = Path(python) if python else find_vllm_python()
        if found is None or not Path(found).exists():
            raise ConfigError(f'no vLLM venv found (looked for {VENV_NAME}); '
                              'run scripts/setup_vllm.sh')
        self.cfg = cfg
        self.python = Path(found)
        self.port = cfg.port or free_port(cfg.host)
        self.url = f'http://{cfg.host}:{self.port}/v1'
        self._tmp = Path(tempfile.mkdtemp(prefix='cosmos_vllm_'))
        self.log_path = Path(log_path) if log_path else self._tmp / 'server.log'
        self.process: Optional[subprocess.Popen] = None
        self.start_s: Optional[float] = None

    @property
    def pid(self) -> Optional[int]:
        return self.process.pid if self.process else None

    def start(self, timeout_s: float = 300.0) -> 'VLLMServer':
        """Start the server and wait until it lists the model; stops it again on failure."""
        cmd = build_command(self.cfg, self.python, self.port)
        env = build_env(self.cfg, self._tmp / 'cache')
        t0 = time.perf_counter()
        with open(self.log_path, 'ab') as log:
            self.process = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, cwd=str(self._tmp))
        try:
            self._wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise
        self.start_s = time.perf_counter() - t0
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise BackendUnavailable(
                    f'vLLM exited with code {self.process.returncode} while starting; '
                    f'log tail:\n{self.log_tail()}')
            try:
                if self.cfg.served_model_name in served_models(self.url):
                    return
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.5)
        raise BackendUnavailable(f'vLLM not ready after {timeout_s:g} s; log tail:\n'
                                 f'{self.log_tail()}')

    def log_tail(self, lines: int = 30) -> str:
        try:
            return '\n'.join(self.log_path.read_text(errors='replace').splitlines()[-lines:])
        except OSError:
            return '(no log)'

    def rss_mib(self) -> float:
        return group_rss_mib(self.pid) if self.pid else 0.0

    def stop(self) -> None:
        """Stop the server and its workers (process group), then remove the temp folder."""
        if self.process is not None:
            kill_group(self.process.pid)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(self._tmp / 'cache', ignore_errors=True)

    def __enter__(self) -> 'VLLMServer':
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- command line ------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``vllm-serve`` (start/stop a detached local vLLM server)."""
    parser.add_argument('action', choices=('start', 'stop', 'status'))
    parser.add_argument('--model', help='checkpoint folder (default: the tiny checkpoint)')
    parser.add_argument('--served-model-name', default=DEFAULT_SERVED_NAME)
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=8000)
    parser.add_argument('--max-model-len', type=int, default=4096)
    parser.add_argument('--max-num-seqs', type=int, default=8)
    parser.add_argument('--kv-cache-gib', type=int, default=1)
    parser.add_argument('--reasoning-parser', default=None, help='e.g. qwen3')
    parser.add_argument('--venv', default=None, help=f'vLLM venv (default {VENV_NAME})')
    parser.add_argument('--pidfile', default='runs/vllm_server.pid')
    parser.add_argument('--log', default='runs/vllm_server.log')
    parser.add_argument('--timeout', type=float, default=300.0, help='start timeout, s')


def run(args: argparse.Namespace) -> int:
    """Start (detached, returns when ready), stop (by the pidfile's process group), status."""
    pidfile = Path(args.pidfile)
    if args.action == 'stop':
        if not pidfile.exists():
            print(f'no pidfile {pidfile}: nothing to stop')
            return 0
        pid = int(pidfile.read_text().split()[0])
        print(f'stopped vLLM (pid {pid})' if kill_group(pid) else f'pid {pid} was not running')
        pidfile.unlink()
        return 0
    if args.action == 'status':
        url = f'http://{args.host}:{args.port}/v1'
        try:
            print(f'{url}: serving {served_models(url)}')
            return 0
        except (OSError, ValueError, KeyError) as exc:
            print(f'{url}: not answering ({exc})')
            return 1
    model = args.model
    if not model:
        from cosmos_planner.backends.local.tiny_checkpoint import ensure_tiny_checkpoint
        model = str(ensure_tiny_checkpoint())
    cfg = VLLMServerConfig(
        model=model, served_model_name=args.served_model_name, host=args.host,
        port=args.port, max_model_len=args.max_model_len, max_num_seqs=args.max_num_seqs,
        kv_cache_gib=args.kv_cache_gib, reasoning_parser=args.reasoning_parser)
    python = find_vllm_python(args.venv)
    if python is None:
        print(f'no vLLM venv ({VENV_NAME}); run scripts/setup_vllm.sh', file=sys.stderr)
        return 2
    if pidfile.exists():
        pid = int(pidfile.read_text().split()[0] or 0)
        try:
            os.killpg(pid, 0)
            print(f'a vLLM server (pid {pid}) from {pidfile} is still running; stop it first',
                  file=sys.stderr)
            return 1
        except (ProcessLookupError, PermissionError):
            pidfile.unlink()
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    server = VLLMServer(cfg, python=python, log_path=args.log)
    try:
        server.start(args.timeout)
    except BackendUnavailable as exc:
        print(str(exc), file=sys.stderr)
        return 1
    pidfile.write_text(f'{server.pid}\n')
    print(f'vLLM ready at {server.url} (model {cfg.served_model_name}, pid {server.pid}, '
          f'{server.start_s:.0f} s); stop: --pidfile {pidfile} stop')
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m cosmos_planner.backends.openai.vllm_server',
                                     description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
