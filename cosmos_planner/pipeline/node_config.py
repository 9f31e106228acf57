"""The planner's parameters, and the ONE place they map onto the core configs.

Every knob is a ``ParamSpec`` (``cosmos_planner.settings``, the package's one spec class):
name, default, a description saying why it exists, and a range or a list of choices. The
OpenAI backend's ``backend.*`` parameters are generated from ``OpenAICompatConfig``, whose
fields declare them, and mapped back onto its options by ``OPENAI_OPTIONS``.
``check_parameter`` validates a value both at start and when it is changed at run time; a
bad value is refused with a message that names the parameter.
``node_config_from_values`` turns the flat values into one frozen ``NodeConfig`` holding the
core configs (backend options, prompt preset, ingest, buffers, cameras, ``PipelineConfig``),
so no other module reads parameters. It is plain Python because the node
(:mod:`cosmos_planner.ros.params` declares these on rclpy) and the offline bag replay (which
runs without ROS) build the same config from the same values.

Structural parameters (backend, cameras, ingest, buffers, QoS) are read-only at run time:
they define what the node loaded and subscribed to. Change them in ``config/planner.yaml``
and restart. Behavioural ones (pipeline limits, timing, replan period, watchdog) apply to the
next plan.

Cameras: ``cameras.names`` lists them; each camera ``NAME`` then has ``cameras.NAME.*``
parameters (image topic, compressed flag, camera_info topic, optional depth topic, whether it
is sent to the model as context). The primary camera (``cameras.primary``, default the first
name) defines the plan's coordinates, stamp and grounding; the others, when
``cameras.NAME.context`` is true, go to the model as ``Clip.context`` clips after the primary
clip (the prompt builder places their media after the primary's, before the text).
"""

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from cosmos_planner.backends.openai.config import OpenAICompatConfig
from cosmos_planner.errors import ConfigError, PlannerError
from cosmos_planner.pipeline.config import PipelineConfig
from cosmos_planner.pipeline.outputs import GripperSpec
from cosmos_planner.settings import node_settings, ParamSpec, render_params_file

#: Backend kinds the node accepts. ``faults`` is TEST-ONLY: it wraps ``replay`` in
#: ``FaultInjectingBackend`` (delay/hang/error/garbage) to exercise cancel and failures.
BACKEND_KINDS = ('local', 'replay', 'openai', 'expert', 'faults')


def _s(name: str, default: Any, description: str, **kw: Any) -> ParamSpec:
    return ParamSpec(name, default, description, **kw)


#: Node-level parameters (cameras and pipeline parameters are added per camera / from
#: ``PipelineConfig.flat_defaults()``).
NODE_PARAMS: Tuple[ParamSpec, ...] = (
    _s('autostart', True, 'Configure and activate at start (pip-only machines have no '
       '"ros2 lifecycle" to do it); false waits for lifecycle transitions.', read_only=True),
    # backend
    _s('backend.kind', 'local', 'Model backend: local (transformers, embedded), openai '
       '(OpenAI-compatible server: vLLM, NIM), replay (recorded answers, deterministic), '
       'expert (scripted oracle for simulation), faults (TEST-ONLY: replay wrapped in fault '
       'injection).', choices=BACKEND_KINDS, read_only=True),
    _s('backend.model', '', 'Model path or id (local: checkpoint directory, empty = Cosmos '
       'Reason 2 when found offline else the tiny test checkpoint; openai: served model '
       'name).', read_only=True),
    _s('backend.device', 'auto', 'Torch device of the local backend (auto, cpu, cuda, '
       'cuda:N).', read_only=True),
    _s('backend.dtype', 'auto', 'Torch dtype of the local backend (auto, float16, bfloat16, '
       'float32).', choices=('auto', 'float16', 'bfloat16', 'float32'), read_only=True),
    _s('backend.constrained', True, 'Constrain local decoding to the answer schema '
       '(xgrammar), so answers always parse.', read_only=True),
    # backend.base_url ... backend.max_retries: declared by the OpenAI backend's config
    *node_settings(OpenAICompatConfig, 'backend.'),
    _s('backend.replay_path', '', 'JSONL of recorded answers (backend.kind replay/faults).',
       read_only=True),
    _s('backend.expert_ground_truth', '', 'Ground-truth state file of the simulator for '
       'backend.kind expert (TEST ORACLE; empty = the sim default).', read_only=True),
    _s('backend.record_path', '', 'Append every request/answer to this JSONL (empty = off); '
       'replay it later with backend.kind replay.', read_only=True),
    _s('backend.faults', '', 'TEST-ONLY (backend.kind faults): comma-separated faults for '
       'the 1st, 2nd, ... generation, e.g. "hang:30,error,garbage" (see '
       'cosmos_planner.backends.faults).', read_only=True),
    _s('backend.faults_then', 'pass', 'TEST-ONLY (backend.kind faults): fault for every '
       'later generation (pass = answer from the replayed recording).', read_only=True),
    # prompting
    _s('prompt.preset', 'plan', 'Prompt preset from config/prompts (trajectory: NVIDIA\'s '
       'prompt verbatim; plan: next action + steps + trajectory).', read_only=True),
    _s('prompt.reasoning', False, 'Ask for a <think> block before the answer (slower, '
       'published as the plan\'s reasoning).'),
    _s('planner.max_attempts', 2, 'Generations per request when an answer does not parse.',
       min=1, max=5),
    # ingest and buffers
    _s('ingest.max_pixels', 448 * 448, 'Pixel budget per frame sent to the model '
       '(resized once at ingest; one visual token is 32x32 pixels).',
       min=32 * 32, max=4096 * 4096, read_only=True),
    _s('buffer.max_frames', 8, 'Frames per camera sent to the model (1 = a single image).',
       min=1, max=64, read_only=True),
    _s('buffer.window_s', 4.0, 'Only frames this recent (header time) go into a clip.',
       min=0.01, max=600.0, read_only=True),
    _s('buffer.fps', 2.0, 'Sampling rate of the clip sent to the model (NVIDIA: 2-4; 0 '
       'keeps every frame).', min=0.0, max=60.0, read_only=True),
    _s('qos.reliable', False, 'Reliable QoS for camera topics (needed for bag play and '
       'Isaac Sim\'s bridge); false = sensor-data QoS (best effort, newest wins).',
       read_only=True),
    _s('qos.depth', 5, 'Camera subscription queue depth.', min=1, max=100, read_only=True),
    _s('executor.threads', 1, 'Executor threads. 1: every callback on one thread; more: '
       'each camera decodes on its own callback group in parallel (OpenCV releases the '
       'GIL), the rest stays serialised. Planning always has its own thread.',
       min=1, max=16, read_only=True),
    # cameras
    _s('cameras.names', ['camera'], 'Camera names; each has cameras.NAME.* parameters.',
       read_only=True),
    _s('cameras.primary', '', 'Camera that defines the plan\'s coordinates, stamp and '
       'grounding (empty = the first name).', read_only=True),
    # end effector, outputs
    _s('ee_pose.enabled', False, 'Subscribe to ee_pose (geometry_msgs/PoseStamped): the '
       'current gripper position starts the trajectory and is held on cancel.',
       read_only=True),
    _s('ee_pose.topic', 'ee_pose', 'End-effector pose topic.', read_only=True),
    _s('ee_pose.max_age_s', 1.0, 'An end-effector pose older than this is not used.',
       min=0.0, max=600.0),
    _s('output.ee_joint', 'end_effector', 'Joint name of ~/trajectory (the Cartesian '
       'end-effector of the controller).'),
    _s('output.debug_image', True, 'Publish ~/debug_image (drawn only when subscribed).'),
    # transforms
    _s('tf.use_tf', True, 'Look the camera-to-target transform (target.frame <- camera '
       'frame) up in TF when tf2_ros is importable; otherwise use the static transform '
       'target.translation / target.rotation_xyzw.'),
    _s('tf.timeout_s', 0.1, 'TF lookup timeout, seconds.', min=0.0, max=10.0),
    # timing of the node
    _s('replan_period_s', 0.0, 'Replan the current task every this many seconds of ROS '
       'time (0 = off).', min=0.0, max=3600.0),
    _s('watchdog.timeout_s', 2.0, 'A camera silent this long (ROS time) is reported stale '
       'in /diagnostics and ~/status.', min=0.05, max=3600.0),
    _s('diagnostics.period_s', 1.0, 'Period of /diagnostics, seconds (ROS time).',
       min=0.05, max=60.0),
)

_CAMERA_FIELDS: Tuple[Tuple[str, Any, str], ...] = (
    ('compressed', False, 'Subscribe to sensor_msgs/CompressedImage (jpeg/png) instead of '
     'sensor_msgs/Image.'),
    ('image_topic', '', 'Image topic (empty = NAME/image, or NAME/image/compressed when '
     'compressed).'),
    ('info_topic', '', 'CameraInfo topic (empty = NAME/camera_info).'),
    ('depth_topic', '', 'Registered depth topic (empty = no depth); 32FC1 metres or 16UC1 '
     'millimetres, or compressedDepth when depth_compressed.'),
    ('depth_compressed', False, 'Depth arrives as compressedDepth (CompressedImage).'),
    ('context', True, 'Send this (non-primary) camera to the model as context.'),
)


def camera_specs(name: str) -> Tuple[ParamSpec, ...]:
    """Return the ``cameras.NAME.*`` parameters of one camera."""
    return tuple(ParamSpec(f'cameras.{name}.{key}', default, desc, read_only=True)
                 for key, default, desc in _CAMERA_FIELDS)


def pipeline_specs() -> Tuple[ParamSpec, ...]:
    """One parameter per entry of ``PipelineConfig.flat_defaults()`` (same dotted names).

    Names, defaults, descriptions and ranges come from the pipeline config itself, so the
    node never drifts from what the core accepts.
    """
    return tuple(PipelineConfig.flat_defaults().values())


def pipeline_names() -> Tuple[str, ...]:
    """Names of the parameters that map onto ``PipelineConfig``."""
    return tuple(PipelineConfig.flat_defaults())


def all_specs(camera_names: Sequence[str]) -> Dict[str, ParamSpec]:
    """Every parameter the node declares, by name."""
    specs = list(NODE_PARAMS) + list(pipeline_specs())
    for name in camera_names:
        specs.extend(camera_specs(name))
    return {s.name: s for s in specs}


# --- the config the node runs with --------------------------------------------------------

@dataclass(frozen=True)
class CameraConfig:
    """One camera's topics and how its frames are used."""

    name: str
    image_topic: str
    info_topic: str
    compressed: bool = False
    depth_topic: str = ''
    depth_compressed: bool = False
    context: bool = True


@dataclass(frozen=True)
class NodeConfig:
    """Everything the node runs with, built and validated in one place from parameters."""

    autostart: bool
    backend_kind: str
    backend_options: Dict[str, Any]
    faults: Tuple[str, ...]
    faults_then: str
    preset: str
    reasoning: bool
    max_attempts: int
    max_pixels: int
    buffer_max_frames: int
    buffer_window_s: float
    buffer_fps: float
    qos_reliable: bool
    qos_depth: int
    executor_threads: int
    cameras: Tuple[CameraConfig, ...]
    primary: str
    ee_pose_enabled: bool
    ee_pose_topic: str
    ee_pose_max_age_s: float
    ee_joint: str
    debug_image: bool
    use_tf: bool
    tf_timeout_s: float
    replan_period_s: float
    watchdog_timeout_s: float
    diagnostics_period_s: float
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    values: Dict[str, Any] = field(default_factory=dict)

    @property
    def context_cameras(self) -> Tuple[str, ...]:
        """Non-primary cameras whose clips go to the model as context."""
        return tuple(c.name for c in self.cameras if c.name != self.primary and c.context)

    @property
    def gripper(self) -> GripperSpec:
        """Gripper joint and positions, from the pipeline's timing config."""
        return GripperSpec.from_timing(self.pipeline.timing)

    def camera(self, name: str) -> CameraConfig:
        """Return the camera called ``name`` (KeyError if unknown)."""
        for cam in self.cameras:
            if cam.name == name:
                return cam
        raise KeyError(name)


def check_parameter(spec: ParamSpec, value: Any) -> None:
    """Raise ``ConfigError`` naming the parameter when ``value`` is refused."""
    problem = spec.check(value)
    if problem:
        raise ConfigError(problem)


def _backend_options(v: Mapping[str, Any]) -> Dict[str, Any]:
    """Options for ``make_backend(kind, **options)`` from the ``backend.*`` parameters."""
    kind = v['backend.kind']
    opts: Dict[str, Any] = {}
    if kind == 'local':
        opts.update(model=v['backend.model'] or None, device=v['backend.device'],
                    dtype=v['backend.dtype'], constrained=v['backend.constrained'])
    elif kind in ('replay', 'faults'):
        if not v['backend.replay_path'] and kind == 'replay':
            raise ConfigError('backend.replay_path is required with backend.kind replay')
        opts.update(path=v['backend.replay_path'] or None)
    elif kind == 'expert':
        plane = [float(x) for x in v['ground.plane']]
        horizontal = plane[0] == 0.0 and plane[1] == 0.0 and plane[2] != 0.0
        opts.update(ground_truth=v['backend.expert_ground_truth'] or None,
                    grounding=v['ground.mode'],
                    plane_z=-plane[3] / plane[2] if horizontal else 0.0)
    elif kind == 'openai':
        opts.update(_openai_options(v))
    if v['backend.record_path']:
        opts['record_path'] = v['backend.record_path']
    return opts


#: ``backend.NAME`` parameters -> OpenAI backend option ``NAME``: the node-facing settings
#: of ``OpenAICompatConfig`` (``setting(..., node=True)``) plus the shared ``backend.model``.
OPENAI_OPTIONS: Tuple[str, ...] = ('model',) + tuple(
    spec.name[len('backend.'):] for spec in node_settings(OpenAICompatConfig, 'backend.'))


def _openai_options(v: Mapping[str, Any]) -> Dict[str, Any]:
    """Options of the OpenAI backend, one per entry of ``OPENAI_OPTIONS`` ('' model: None)."""
    opts = {name: v['backend.' + name] for name in OPENAI_OPTIONS}
    opts['model'] = opts['model'] or None
    return opts


def _faults(v: Mapping[str, Any]) -> Tuple[str, ...]:
    if v['backend.kind'] != 'faults':
        return ()
    from cosmos_planner.backends.faults import Fault

    faults = tuple(f.strip() for f in v['backend.faults'].split(',') if f.strip())
    for spec in faults + (v['backend.faults_then'],):
        try:
            Fault.parse(spec)
        except ConfigError as exc:
            raise ConfigError(f'backend.faults: {exc}') from None
    return faults


def node_config_from_values(values: Mapping[str, Any]) -> NodeConfig:
    """Validate flat parameter values and build the ``NodeConfig`` (raises ConfigError)."""
    names = [str(n) for n in values.get('cameras.names', ['camera'])]
    if not names or any(not n or not n.replace('_', '').isalnum() for n in names):
        raise ConfigError(f'cameras.names must be non-empty identifiers, got {names!r}')
    if len(set(names)) != len(names):
        raise ConfigError(f'cameras.names has duplicates: {names!r}')
    specs = all_specs(names)
    v: Dict[str, Any] = {name: spec.default for name, spec in specs.items()}
    for name, value in values.items():
        if name in specs:
            if isinstance(value, tuple) or hasattr(value, 'tolist'):
                value = list(value)
            check_parameter(specs[name], value)
            v[name] = value
    primary = v['cameras.primary'] or names[0]
    if primary not in names:
        raise ConfigError(f'cameras.primary={primary!r} is not in cameras.names {names!r}')
    cameras = []
    for name in names:
        p = f'cameras.{name}.'
        compressed = bool(v[p + 'compressed'])
        image_topic = v[p + 'image_topic'] or (
            f'{name}/image/compressed' if compressed else f'{name}/image')
        cameras.append(CameraConfig(
            name=name, image_topic=image_topic,
            info_topic=v[p + 'info_topic'] or f'{name}/camera_info', compressed=compressed,
            depth_topic=v[p + 'depth_topic'], depth_compressed=bool(v[p + 'depth_compressed']),
            context=bool(v[p + 'context'])))
    if v['backend.kind'] == 'faults' and not (v['backend.faults'] or v['backend.replay_path']
                                              or v['backend.faults_then'] != 'pass'):
        raise ConfigError('backend.kind faults needs backend.faults, backend.faults_then or '
                          'backend.replay_path (test-only backend)')
    pipeline = PipelineConfig.from_flat({k: v[k] for k in pipeline_names()})
    return NodeConfig(
        autostart=bool(v['autostart']), backend_kind=v['backend.kind'],
        backend_options=_backend_options(v), faults=_faults(v),
        faults_then=v['backend.faults_then'], preset=v['prompt.preset'],
        reasoning=bool(v['prompt.reasoning']), max_attempts=int(v['planner.max_attempts']),
        max_pixels=int(v['ingest.max_pixels']),
        buffer_max_frames=int(v['buffer.max_frames']),
        buffer_window_s=float(v['buffer.window_s']), buffer_fps=float(v['buffer.fps']),
        qos_reliable=bool(v['qos.reliable']), qos_depth=int(v['qos.depth']),
        executor_threads=int(v['executor.threads']),
        cameras=tuple(cameras), primary=primary,
        ee_pose_enabled=bool(v['ee_pose.enabled']), ee_pose_topic=v['ee_pose.topic'],
        ee_pose_max_age_s=float(v['ee_pose.max_age_s']), ee_joint=v['output.ee_joint'],
        debug_image=bool(v['output.debug_image']), use_tf=bool(v['tf.use_tf']),
        tf_timeout_s=float(v['tf.timeout_s']),
        replan_period_s=float(v['replan_period_s']),
        watchdog_timeout_s=float(v['watchdog.timeout_s']),
        diagnostics_period_s=float(v['diagnostics.period_s']),
        pipeline=pipeline, values=v)


def check_paths(cfg: NodeConfig) -> None:
    """Refuse path parameters that cannot work, naming the parameter (raises ConfigError).

    Why here and not only in the backends: a bad path should stop the node at start with
    exit code 2 and a message naming the parameter, instead of a configure failure that
    names only a file. Only the paths the chosen backend uses are checked (the launch files
    pass ``backend.model`` and ``backend.expert_ground_truth`` whatever the kind). This is
    about clear errors, not a sandbox: any real file the operator names is allowed, but
    nothing that arrives in a message ever becomes a path. Kept apart from
    ``node_config_from_values`` so the mapping stays pure (tests and the bag replay build
    configs for files that do not exist yet). The node calls it right after building its
    config, before anything is loaded.
    """
    from pathlib import Path

    v = cfg.values
    kind = cfg.backend_kind
    if kind in ('replay', 'faults') and v['backend.replay_path']:
        path = Path(v['backend.replay_path']).expanduser()
        if not path.exists():
            raise ConfigError(f'backend.replay_path: recording {path} does not exist')
        if not path.is_file():
            raise ConfigError(f'backend.replay_path: {path} is not a regular file '
                              '(give the JSONL recording itself)')
    if v['backend.record_path']:
        path = Path(v['backend.record_path']).expanduser()
        if path.is_symlink():
            raise ConfigError(f'backend.record_path: {path} is a symbolic link (to '
                              f'{path.resolve()}); give the real file path')
        if path.exists() and not path.is_file():
            raise ConfigError(f'backend.record_path: {path} exists and is not a regular '
                              'file (a directory or device cannot hold a recording)')
        if not path.parent.is_dir():
            raise ConfigError(f'backend.record_path: directory {path.parent} does not '
                              'exist (create it first)')
    if kind == 'local' and v['backend.model']:
        from cosmos_planner.backends.local.resolve import is_hf_id, locate_model

        model = str(v['backend.model']).strip()
        if not is_hf_id(model) or model.startswith(('.', '/', '~')) or Path(model).exists():
            try:
                locate_model(model)
            except PlannerError as exc:
                raise ConfigError(f'backend.model: {exc}') from None
    if kind == 'expert' and v['backend.expert_ground_truth']:
        path = Path(v['backend.expert_ground_truth']).expanduser()
        if path.exists() and not path.is_file():   # the sim may create it later
            raise ConfigError(f'backend.expert_ground_truth: {path} is not a regular file')
    from cosmos_planner.model.prompts import load_preset

    try:
        load_preset(cfg.preset)
    except ConfigError as exc:
        raise ConfigError(f'prompt.preset: {exc}') from None


# --- parameter changes at run time -------------------------------------------------------

def plain(value: Any) -> Any:
    """Convert a parameter value to plain Python (rclpy gives arrays as array.array)."""
    if isinstance(value, (list, tuple)) or hasattr(value, 'tolist'):
        return list(value)
    return value


def validate_changes(specs: Mapping[str, ParamSpec], current: Mapping[str, Any],
                     changes: Sequence[Tuple[str, Any]]) -> Optional[str]:
    """Why a set of parameter changes is refused (the message names the parameter), or None.

    Each value is checked on its own, then (once every parameter is declared) the whole
    config is rebuilt with the changes, so cross-field constraints refuse too. Undeclared
    names (``use_sim_time``, ...) are left to rclpy.
    """
    merged = dict(current)
    for name, value in changes:
        spec = specs.get(name)
        if spec is None:
            continue
        value = plain(value)
        problem = spec.check(value)
        if problem:
            return problem
        merged[name] = value
    if set(specs) - set(current):
        return None  # still declaring: cross-field checks happen when the config is built
    try:
        node_config_from_values(merged)
    except ConfigError as exc:
        return str(exc)
    return None


# --- the shipped params file ---------------------------------------------------------------

def render_params_yaml(camera_names: Sequence[str] = ('camera',)) -> str:
    """``config/planner.yaml``: every parameter with its default, description and range.

    Regenerate with ``python -m cosmos_planner.ros.params > config/planner.yaml``; a test
    fails when the file and the declarations drift apart.
    """
    header = [
        'Parameters of the cosmos_planner node (planner_node), generated by',
        '`python -m cosmos_planner.ros.params`. Every declared parameter is listed with its',
        'default; `ros2 param describe /cosmos_planner NAME` shows the same text and range.',
        'Read-only parameters (backend, cameras, ingest, buffer, qos) cannot change at run',
        'time. Write doubles with a decimal point (0.0, not 0): ROS refuses an integer for a',
        'double parameter. Add a camera by listing it in cameras.names and adding its',
        'cameras.NAME.* entries.',
    ]
    specs = all_specs(list(camera_names))
    comments = {name: spec.description + (f' [{spec.notes()}]' if spec.notes() else '')
                for name, spec in specs.items()}
    return render_params_file({name: spec.default for name, spec in specs.items()},
                              header=header, comments=comments)
