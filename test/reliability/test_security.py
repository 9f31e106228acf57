"""Security: secrets, model loading, paths and message content cannot be turned against us.

What is proved, and how (behaviour first, a grep where behaviour cannot reach):

- API keys come from the environment only: no constructor argument or node parameter takes
  a key (signature and parameter table), the key in the named variable reaches the server
  (its ``Authorization`` header, captured), and it appears in no log record at DEBUG level
  (every logger, the openai/httpx ones included), no error message, ``repr`` or ``health()``;
  the node process, run against a header-capturing server with the key in its environment,
  never writes it to its log, ``~/status`` or ``/diagnostics``.
- ``trust_remote_code`` is off: every occurrence in the package, scripts, launch and config
  files sets it to False and no ``--trust-remote-code`` flag exists (grep), the local backend
  passes ``trust_remote_code=False``, ``use_safetensors=True`` and ``local_files_only=True``
  to both Auto classes (recorded at the call), and a checkpoint whose ``auto_map`` points at
  repository code that would create a canary file loads without running it.
- Only safetensors weights: a checkpoint with only ``pytorch_model.bin`` is refused with a
  typed error before anything is unpickled, and a booby-trapped ``pytorch_model.bin`` lying
  next to the safetensors (a pickle that creates a canary file when loaded, proved live
  here) is never loaded.
- Paths from parameters are validated: missing, directory-instead-of-file and unwritable
  paths give typed errors naming the path. At the node (``check_paths``, run at start), a
  missing or directory ``backend.replay_path`` and a ``backend.record_path`` in a missing
  directory stop the real ``planner_node`` process with exit code 2 and a message naming
  the parameter, creating nothing; symlinked/directory/device record paths, bad model
  folders, a directory as ground truth and bad preset files are refused naming the
  parameter too; and a running node refuses every path parameter set at run time
  (read-only), keeping its values.
- Message content has no effect on the filesystem: tasks (and task ids, frame ids) full of
  paths, ``../``, shell syntax and JSONL line breaks change nothing on disk but the one
  configured recording, where they stay one escaped JSON line each.
- The replay command never overwrites an existing output without ``--force`` (and never
  deletes a directory that is not a replay run, even with it).

Runtime: about 20-30 s (one tiny-checkpoint load per behavioural load test, two node
starts, three node processes that exit at start).
Rerun: ``python -m pytest test/reliability/test_security.py -q``.
"""

import inspect
import io
import json
import logging
from pathlib import Path
import re
import shutil
import time
from typing import Any, Dict, Iterator, List

import pytest

from planner_helpers import one_frame_clip

from cosmos_planner.model.protocol import Completion
from cosmos_planner.backends.faults import Fault, FaultInjectingBackend
from cosmos_planner.backends.openai.client import OpenAICompatBackend
from cosmos_planner.backends.recording import RecordingBackend, ReplayBackend
from cosmos_planner.errors import BackendError, ModelNotFoundError, PlannerError
from cosmos_planner.pipeline.planner import Planner
from cosmos_planner.model.prompts import build_request
from cosmos_planner.pipeline.publishing import PROGRESS_STATUSES
from fault_server import FaultServer, free_port

ROOT = Path(__file__).resolve().parents[2]
CANARY_KEY = 'sk-canary-0123456789abcdef'
HOSTILE_TASKS = [
    '../../../../etc/passwd', '/tmp/cosmos_planner_canary_task', 'write ./pwned.txt',
    '$(touch pwned_shell)', '`touch pwned_tick`; rm -rf ~', '..\\..\\windows\\system32',
    'line one\n{"v": 1, "fingerprint": "forged", "text": "[[1, 2]]"}\nline three',
    '\x00/etc/shadow', 'file:///etc/hosts', '%2e%2e%2f%2e%2e%2fetc', '~/.ssh/id_rsa',
]


def _tree(root: Path) -> Dict[str, int]:
    """Return every file under ``root`` with its size (what a write would change)."""
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob('*'))
            if p.is_file()}


# --- API keys ---------------------------------------------------------------------------------

class HeaderCapturingServer(FaultServer):
    """The fault server, also recording the ``Authorization`` header of every request."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Start empty; headers are appended per request."""
        super().__init__(*args, **kwargs)
        self.authorizations: List[str] = []

    def _handler_class(self) -> type:
        base = super()._handler_class()
        server = self

        class Handler(base):  # type: ignore[valid-type, misc]
            def parse_request(self) -> bool:
                ok = super().parse_request()
                if ok:
                    server.authorizations.append(self.headers.get('Authorization', ''))
                return ok

        return Handler


@pytest.fixture
def all_logs() -> Iterator[io.StringIO]:
    """Capture every log record of every logger at DEBUG, as a deployment might."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)


def test_no_constructor_or_parameter_takes_a_key() -> None:
    import dataclasses
    from cosmos_planner.backends.openai.config import OpenAICompatConfig

    # The constructor takes its own options plus every field of its config as keywords.
    params = list(inspect.signature(OpenAICompatBackend).parameters) + [
        f.name for f in dataclasses.fields(OpenAICompatConfig)]
    assert 'api_key_env' in params
    assert not [n for n in params if 'key' in n.lower() and n != 'api_key_env'], params
    from cosmos_planner.pipeline.node_config import all_specs

    names = [n for n in all_specs(['cam0']) if re.search(r'key|token|secret|passw', n, re.I)]
    assert names == ['backend.api_key_env'], names


def test_api_key_from_the_environment_reaches_the_server_and_nothing_else(
        monkeypatch: pytest.MonkeyPatch, all_logs: io.StringIO) -> None:
    monkeypatch.setenv('COSMOS_TEST_KEY', CANARY_KEY)
    request = build_request('plan', one_frame_clip(), 'pick up the cube', False)
    seen: List[str] = []
    with HeaderCapturingServer() as server:
        backend = OpenAICompatBackend(server.url, api_key_env='COSMOS_TEST_KEY', timeout_s=2,
                                      max_retries=1, backoff_s=0.01, backoff_max_s=0.02)
        assert backend.generate(request).text
        for fault in ('status:401', 'status:500', 'garbage', 'half_close'):
            server.default = fault
            with pytest.raises(BackendError) as info:
                backend.generate(request)
            seen += [str(info.value), repr(info.value)]
        server.default = 'ok'
        seen += [repr(backend), json.dumps(backend.health(), default=str)]
        assert f'Bearer {CANARY_KEY}' in server.authorizations
    dead = OpenAICompatBackend(f'http://127.0.0.1:{free_port()}/v1', model='m',
                               api_key_env='COSMOS_TEST_KEY', probe=False, max_retries=0,
                               timeout_s=1)
    with pytest.raises(BackendError) as info:
        dead.generate(request)
    seen += [str(info.value), json.dumps(dead.health(), default=str)]
    logs = all_logs.getvalue()
    assert logs, 'nothing was logged: the capture is broken'
    for text in seen + [logs]:
        assert CANARY_KEY not in text and CANARY_KEY[3:] not in text


def test_an_unset_key_variable_is_named_in_a_warning_and_no_key_is_sent(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv('COSMOS_TEST_KEY', raising=False)
    request = build_request('plan', one_frame_clip(), 'pick up the cube', False)
    with HeaderCapturingServer() as server, caplog.at_level(logging.WARNING):
        backend = OpenAICompatBackend(server.url, api_key_env='COSMOS_TEST_KEY', timeout_s=2,
                                      max_retries=0)
        assert backend.generate(request).text
    assert 'COSMOS_TEST_KEY' in caplog.text
    assert server.authorizations and all(a == 'Bearer EMPTY' for a in server.authorizations)


# --- trust_remote_code and weights ----------------------------------------------------------

SOURCE_GLOBS = ('cosmos_planner/**/*.py', 'scripts/*', 'launch/*', 'config/**/*.yaml',
                'setup.py', 'bench/*.py')


def test_trust_remote_code_is_never_enabled_in_the_sources() -> None:
    files = [p for g in SOURCE_GLOBS for p in ROOT.glob(g) if p.is_file()]
    assert len(files) > 20
    setting = re.compile(r'trust[_-]remote[_-]code\s*[=:]\s*([A-Za-z0-9_]+)', re.I)
    found = 0
    for path in files:
        text = path.read_text(errors='replace')
        assert '--trust-remote-code' not in text, path
        for match in setting.finditer(text):
            found += 1
            assert match.group(1) in ('False', 'false'), f'{path}: {match.group(0)}'
    assert found >= 2, 'the local backend no longer says trust_remote_code=False explicitly'


class _Canary:
    """Unpickling this object creates a file: a stand-in for a malicious checkpoint."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (Path.touch, (Path(self.path),))


def _copy_checkpoint(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope='module')
def local_module() -> Any:
    pytest.importorskip('torch')
    import torch

    torch.set_num_threads(1)
    return pytest.importorskip('cosmos_planner.backends.local.backend')


def test_local_backend_loads_safetensors_only_without_remote_code(
        tiny_checkpoint: Path, tmp_path: Path, local_module: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    import transformers

    ckpt = _copy_checkpoint(tiny_checkpoint, tmp_path / 'ckpt')
    # Booby trap 1: a pickled .bin next to the safetensors (proved live on a copy).
    trap = tmp_path / 'bin_was_unpickled'
    torch.save({'weight': _Canary(trap)}, ckpt / 'pytorch_model.bin')
    probe = tmp_path / 'probe.bin'
    shutil.copy(ckpt / 'pytorch_model.bin', probe)
    torch.load(probe, weights_only=False)
    assert trap.exists(), 'the booby trap does not work; the test would prove nothing'
    trap.unlink()
    # Booby trap 2: repository code named by auto_map, which would run at import.
    code_ran = tmp_path / 'remote_code_ran'
    (ckpt / 'evil_model.py').write_text(
        f'from pathlib import Path\nPath({str(code_ran)!r}).touch()\n'
        'from transformers import Qwen3VLForConditionalGeneration as EvilModel\n'
        'from transformers import Qwen3VLProcessor as EvilProcessor\n')
    config = json.loads((ckpt / 'config.json').read_text())
    config['auto_map'] = {'AutoModelForImageTextToText': 'evil_model.EvilModel',
                          'AutoProcessor': 'evil_model.EvilProcessor'}
    (ckpt / 'config.json').write_text(json.dumps(config))
    calls: List[Dict[str, Any]] = []
    for cls in (transformers.AutoProcessor, transformers.AutoModelForImageTextToText):
        real = cls.from_pretrained.__func__

        def recording(klass: Any, *args: Any, _real: Any = real, **kwargs: Any) -> Any:
            calls.append({'class': klass.__name__, **kwargs})
            return _real(klass, *args, **kwargs)

        monkeypatch.setattr(cls, 'from_pretrained', classmethod(recording))
    try:
        backend = local_module.LocalBackend(str(ckpt), device='cpu', dtype='float32')
    except BackendError as exc:
        print(f'checkpoint refused: {exc}')
        backend = None      # refusing the checkpoint outright is also safe
    assert not trap.exists(), 'pytorch_model.bin was unpickled'
    assert not code_ran.exists(), 'repository code from auto_map was executed'
    assert {c['class'] for c in calls} == {'AutoProcessor', 'AutoModelForImageTextToText'}
    for call in calls:
        assert call.get('trust_remote_code') is False, call
        assert call.get('local_files_only') is True, call
    model_call = [c for c in calls if c['class'] == 'AutoModelForImageTextToText'][0]
    assert model_call.get('use_safetensors') is True
    if backend is not None:
        assert backend.health()['ok'] is True


def test_a_checkpoint_with_only_pytorch_bin_is_refused_before_unpickling(
        tiny_checkpoint: Path, tmp_path: Path, local_module: Any) -> None:
    import torch

    ckpt = _copy_checkpoint(tiny_checkpoint, tmp_path / 'bin_only')
    trap = tmp_path / 'bin_was_unpickled'
    for file in ckpt.glob('*.safetensors'):
        file.unlink()
    (ckpt / 'model.safetensors.index.json').unlink(missing_ok=True)
    torch.save({'weight': _Canary(trap)}, ckpt / 'pytorch_model.bin')
    with pytest.raises(ModelNotFoundError, match='safetensors') as info:
        local_module.LocalBackend(str(ckpt), device='cpu', dtype='float32')
    assert 'bin' in str(info.value)
    assert not trap.exists()


# --- paths from parameters --------------------------------------------------------------------

def test_paths_from_parameters_are_validated(tmp_path: Path) -> None:
    from cosmos_planner.backends.registry import make_backend
    from cosmos_planner.model.prompts import load_preset

    a_file = tmp_path / 'a_file.txt'
    a_file.write_text('not a directory')
    cases = [
        lambda: make_backend('replay', path=str(tmp_path / 'missing.jsonl')),
        lambda: make_backend('replay', path=str(tmp_path)),
        lambda: ReplayBackend(tmp_path / 'missing.jsonl'),
        lambda: RecordingBackend(FaultInjectingBackend(None), tmp_path),
        lambda: RecordingBackend(FaultInjectingBackend(None), a_file / 'sub' / 'r.jsonl'),
        lambda: load_preset(str(tmp_path / 'missing.yaml')),
        lambda: load_preset('../../etc/passwd'),
        lambda: load_preset(str(a_file)),
    ]
    for i, case in enumerate(cases):
        with pytest.raises(PlannerError) as info:
            case()
        assert str(info.value), i
    local = pytest.importorskip('cosmos_planner.backends.local.backend')
    for model in (str(a_file), str(tmp_path / 'nope'), '../../../etc', str(tmp_path)):
        with pytest.raises(ModelNotFoundError):
            local.LocalBackend(model, device='cpu')
    assert _tree(tmp_path) == {'a_file.txt': len('not a directory')}


def test_node_path_check_names_each_parameter(tmp_path: Path) -> None:
    """``check_paths`` (what the node runs at start) on the cases the node tests leave out."""
    from cosmos_planner.errors import ConfigError
    from cosmos_planner.pipeline.node_config import check_paths, node_config_from_values

    good = tmp_path / 'answers.jsonl'
    good.write_text('')
    (tmp_path / 'link.jsonl').symlink_to('/etc/hostname')
    replay = {'backend.kind': 'replay', 'backend.replay_path': str(good)}
    bad = [
        (dict(replay, **{'backend.record_path': str(tmp_path / 'link.jsonl')}),
         'backend.record_path'),
        (dict(replay, **{'backend.record_path': str(tmp_path)}), 'backend.record_path'),
        (dict(replay, **{'backend.record_path': '/dev/null'}), 'backend.record_path'),
        ({'backend.kind': 'local', 'backend.model': '../../../etc'}, 'backend.model'),
        ({'backend.kind': 'local', 'backend.model': str(tmp_path)}, 'backend.model'),
        ({'backend.kind': 'expert', 'backend.expert_ground_truth': str(tmp_path)},
         'backend.expert_ground_truth'),
        (dict(replay, **{'prompt.preset': str(tmp_path / 'missing.yaml')}), 'prompt.preset'),
        (dict(replay, **{'prompt.preset': '../../etc/passwd'}), 'prompt.preset'),
    ]
    for values, name in bad:
        with pytest.raises(ConfigError, match='^' + re.escape(name + ':')):
            check_paths(node_config_from_values(values))
    # Accepted: a new file in an existing directory, a Hugging Face id (resolved offline at
    # configure), a ground-truth file the simulator has not written yet, and paths the
    # chosen backend does not use.
    for values in (dict(replay, **{'backend.record_path': str(tmp_path / 'new.jsonl')}),
                   {'backend.kind': 'local', 'backend.model': 'nvidia/Cosmos-Reason2-2B'},
                   {'backend.kind': 'expert',
                    'backend.expert_ground_truth': str(tmp_path / 'later.json')},
                   {'backend.kind': 'openai', 'backend.replay_path': str(tmp_path),
                    'backend.model': 'served/name'}):
        check_paths(node_config_from_values(values))
    assert sorted(p.name for p in tmp_path.iterdir()) == ['answers.jsonl', 'link.jsonl']


# --- paths from parameters, at the node ------------------------------------------------------

def _planner_cmd(*overrides: str) -> List[str]:
    from ros_helpers import node_command

    cmd = node_command('planner_node', 'cosmos_planner.ros.planner_node') + ['--ros-args']
    for override in overrides:
        cmd += ['-p', override]
    return cmd


def test_node_refuses_bad_path_parameters_at_start(tmp_path: Path) -> None:
    """Each bad path stops the node with exit 2 and a message naming the parameter."""
    pytest.importorskip('rclpy')
    from ros_helpers import claim_domain_id, NodeProcess, release_domain_id

    work = tmp_path / 'work'
    work.mkdir()
    good = work / 'answers.jsonl'
    good.write_text('')
    cases = {
        'missing_replay': ('backend.replay_path', [f'backend.replay_path:={work}/no.jsonl']),
        'dir_replay': ('backend.replay_path', [f'backend.replay_path:={work}']),
        'record_no_dir': ('backend.record_path', [f'backend.replay_path:={good}',
                                                  f'backend.record_path:={work}/no/r.jsonl']),
    }
    before = _tree(work)
    domain = claim_domain_id()   # they exit before discovery, so they can share it
    nodes = {name: NodeProcess(_planner_cmd('backend.kind:=replay', *overrides), domain,
                               tmp_path / f'{name}.log').start()
             for name, (_, overrides) in cases.items()}
    try:
        for name, (param, _) in cases.items():
            node = nodes[name]
            assert node.wait(60) == 2, (name, node.output()[-2000:])
            assert f'invalid configuration: {param}' in node.output(), (name, node.output())
    finally:
        for node in nodes.values():
            node.stop()
        release_domain_id(domain)
    assert _tree(work) == before   # nothing was created, not even the record directory


def test_path_parameters_cannot_be_changed_at_run_time(tmp_path: Path) -> None:
    """Path parameters are read-only: a running node refuses new values and keeps its own."""
    pytest.importorskip('rclpy')
    from ros_helpers import claim_domain_id, NodeProcess, release_domain_id, RosPeer

    good = tmp_path / 'answers.jsonl'
    good.write_text('')
    record = tmp_path / 'record.jsonl'
    domain = claim_domain_id()
    node = NodeProcess(_planner_cmd('backend.kind:=replay', f'backend.replay_path:={good}',
                                    f'backend.record_path:={record}'),
                       domain, tmp_path / 'node.log').start()
    bad = {'backend.replay_path': str(tmp_path / 'missing.jsonl'),
           'backend.record_path': '/etc/cosmos_planner_pwned.jsonl',
           'backend.model': '../../../etc', 'backend.expert_ground_truth': str(tmp_path),
           'prompt.preset': '/etc/passwd'}
    try:
        with RosPeer(domain) as peer:
            state = peer.wait_for_lifecycle_state('/cosmos_planner', 'active', 60, node.alive)
            assert state == 'active', node.output()[-3000:]
            for name, value in bad.items():
                [result] = peer.set_parameters('/cosmos_planner', {name: value})
                assert not result.successful, name
                assert name in result.reason, (name, result.reason)
            now = peer.get_parameters('/cosmos_planner', list(bad))
            assert now['backend.replay_path'] == str(good)
            assert now['backend.record_path'] == str(record)
            assert now['prompt.preset'] == 'plan'
            assert node.alive()
    finally:
        node.stop()
        release_domain_id(domain)
    assert not Path('/etc/cosmos_planner_pwned.jsonl').exists()


# --- message content and the filesystem -------------------------------------------------------

def test_task_text_cannot_read_or_write_files(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / 'work'
    work.mkdir()
    monkeypatch.chdir(work)
    record = tmp_path / 'answers.jsonl'
    answer = json.dumps({'trajectory': [{'point_2d': [500, 500]}]})
    inner = FaultInjectingBackend(None, then=Fault('garbage', text=answer))
    planner = Planner(RecordingBackend(inner, record), 'plan', max_attempts=1)
    outside = Path('/tmp/cosmos_planner_canary_task')
    outside.unlink(missing_ok=True)
    for i, task in enumerate(HOSTILE_TASKS):
        frame_id = ['../../etc', '/dev/null', 'cam'][i % 3]
        result = planner.plan(one_frame_clip(frame_id=frame_id), task)
        assert result.ok, result.error
    assert _tree(work) == {} and not outside.exists()
    lines = record.read_text().splitlines()
    assert len(lines) == len(HOSTILE_TASKS), 'a task broke the one-line-per-answer format'
    tasks = [json.loads(line)['task'] for line in lines]
    assert tasks == [build_request('plan', one_frame_clip(), t.strip(), False).task
                     for t in HOSTILE_TASKS]
    assert all(json.loads(line)['fingerprint'] != 'forged' for line in lines)
    # The recording replays the same answers for the same requests, the forged line aside.
    replay = ReplayBackend(record)
    request = build_request('plan', one_frame_clip(frame_id='cam'),
                            HOSTILE_TASKS[6].strip(), False)
    assert isinstance(replay.generate(request), Completion)


# --- replay output --------------------------------------------------------------------------

def test_replay_command_never_overwrites_without_force(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from cosmos_planner.bag.scenes import SceneSpec, write_scene_bag
    from cosmos_planner.cli.main import main

    bag = write_scene_bag(tmp_path / 'bag', SceneSpec(duration_s=0.6)).path
    args = [str(bag), '--task', 'pick the cube', '--no-progress', '--no-video']
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'plans.jsonl').write_text('precious results\n')
    before = _tree(tmp_path)
    assert main(['replay', *args, '--out', str(out)]) != 0
    assert '--force' in capsys.readouterr().err
    assert _tree(tmp_path) == before
    # --force deletes only replay runs: a directory that is not one survives, as does a file.
    assert main(['replay', *args, '--out', str(out), '--force']) != 0
    assert 'not a replay run' in capsys.readouterr().err
    a_file = tmp_path / 'a_file'
    a_file.write_text('keep')
    assert main(['replay', *args, '--out', str(a_file), '--force']) != 0
    assert _tree(tmp_path) == {**before, 'a_file': 4}


# --- the node: key in its environment, hostile tasks on ~/task ---------------------------------

def test_node_never_shows_the_key_and_tasks_touch_no_files(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    pytest.importorskip('rclpy')
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import String

    import node_scene as scene
    from ros_helpers import (claim_domain_id, NodeProcess, node_command, release_domain_id,
                             RosPeer, wait_until, write_params_file)

    work = tmp_path / 'node_cwd'
    work.mkdir()
    monkeypatch.chdir(work)     # the node process inherits it: relative writes land here
    outside = Path('/tmp/cosmos_planner_canary_task')
    outside.unlink(missing_ok=True)
    domain = claim_domain_id()
    with HeaderCapturingServer() as server:
        params = write_params_file(tmp_path / 'params.yaml', 'cosmos_planner', {
            'backend.kind': 'openai', 'backend.base_url': server.url,
            'backend.api_key_env': 'COSMOS_TEST_KEY', 'backend.timeout_s': 10.0,
            'cameras.names': ['cam0'], 'qos.reliable': True, 'buffer.fps': 0.0,
            'buffer.max_frames': 1, 'target.frame': 'world', 'tf.use_tf': False,
            'planner.max_attempts': 1, 'diagnostics.period_s': 0.2})
        cmd = node_command('planner_node', 'cosmos_planner.ros.planner_node') + [
            '--ros-args', '--params-file', str(params), '--log-level', 'debug']
        node = NodeProcess(cmd, domain, tmp_path / 'node.log',
                           env={'COSMOS_TEST_KEY': CANARY_KEY}).start()
        peer = RosPeer(domain)
        try:
            status = peer.collect(String, '/cosmos_planner/status', depth=100)
            diags = peer.collect(DiagnosticArray, '/diagnostics', depth=50)
            state = peer.wait_for_lifecycle_state('/cosmos_planner', 'active', 60, node.alive)
            assert state == 'active', node.output()[-3000:]
            image = peer.publisher(Image, 'cam0/image')
            info = peer.publisher(CameraInfo, 'cam0/camera_info')
            task_pub = peer.publisher(String, '/cosmos_planner/task')
            for pub in (image, info, task_pub):
                assert peer.wait_for_subscribers(pub)
            info.publish(scene.camera_info(0))
            sent = 0
            for i, task in enumerate(HOSTILE_TASKS):
                # Image and task travel on different topics with no order between them: a
                # task that overtakes the first frame ends as no_frames; send it again.
                for attempt in range(5):
                    image.publish(scene.raw_image(
                        scene.colour_image(i), time.time_ns(),
                        frame_id=['../../etc', 'cam0_optical'][i % 2]))
                    sent += 1
                    # The frame is buffered once /diagnostics counts it: wait for that
                    # rather than a guessed pause before sending the task.
                    assert diags.wait_for(lambda d, n=sent: any(
                        kv.key == 'frames' and int(kv.value) >= n
                        for st in d.status for kv in st.values), 10) is not None
                    task_id = f'../../t{i}.{attempt}'
                    task_pub.publish(String(data=json.dumps({'task': task,
                                                             'task_id': task_id})))
                    done = status.wait_for(lambda msg, t=task_id: _ended(msg, t), 20)
                    assert done is not None, node.output()[-3000:]
                    if json.loads(done.data).get('status') != 'no_frames':
                        break
            assert wait_until(lambda: diags.count() > 3, 10)
            assert node.alive()
        finally:
            peer.close()
            node.stop()
            release_domain_id(domain)
        assert f'Bearer {CANARY_KEY}' in server.authorizations
        assert server.chat_count >= len(HOSTILE_TASKS)
    texts = [node.output()] + [m.data for m in status.messages] + [
        str(m) for m in diags.messages]
    assert 'DEBUG' in texts[0] or '[debug]' in texts[0].lower(), 'not at debug level'
    for text in texts:
        assert CANARY_KEY not in text and CANARY_KEY[3:] not in text
    assert _tree(work) == {} and not outside.exists()


def _ended(msg: Any, task_id: str) -> bool:
    data = json.loads(msg.data)
    return (data.get('task_id') == task_id
            and data.get('status') not in (*PROGRESS_STATUSES, None))
