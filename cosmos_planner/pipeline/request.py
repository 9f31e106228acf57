"""One planning request, built the same way by the node and by the offline bag replay.

A request is what the inputs hold when it is made: the primary camera's clip (with the
context cameras), its camera model, the registered depth image nearest to the newest frame
(within the tolerance grounding checks, so the lookup never picks a depth image grounding
must then refuse), and the end-effector position when it is known, fresh and in the output
frame. The node adds a TF transform through ``transform``; the replay uses the parameters'
static transform. Tasks arrive as plain text or JSON on ``~/task`` and are parsed here too.
"""

from dataclasses import dataclass
import json
from typing import Callable, Dict, Optional, Tuple, TYPE_CHECKING

from cosmos_planner.errors import ConfigError
from cosmos_planner.pipeline.plan_pipeline import PipelineInputs

if TYPE_CHECKING:
    from cosmos_planner.frames.buffer import CameraBuffers
    from cosmos_planner.frames.types import Clip, DepthFrame
    from cosmos_planner.geometry.camera_model import CameraModel
    from cosmos_planner.pipeline.config import PipelineConfig
    from cosmos_planner.pipeline.inputs import SensorInputs
    from cosmos_planner.pipeline.node_config import NodeConfig

#: Characters of a refused task echoed on ``~/status`` (the rest is cut).
TASK_ECHO_CHARS = 80
#: ``(camera model, clip) -> (pipeline config, transform source)``: the node's TF lookup.
TransformLookup = Callable[[Optional['CameraModel'], Optional['Clip']],
                           Tuple['PipelineConfig', str]]


@dataclass(frozen=True)
class Request:
    """A request ready for ``PlanPipeline.run``, with the config it must run with."""

    inputs: PipelineInputs
    config: 'PipelineConfig'
    clip: Optional['Clip']
    transform_source: str


def build_request(cfg: 'NodeConfig', sensors: 'SensorInputs', task: str, task_id: str,
                  now_ns: int, *, transform: Optional[TransformLookup] = None,
                  resolve_depth: Optional[Callable[[Optional['DepthFrame']],
                                                   Optional['DepthFrame']]] = None,
                  on_ee_ignored: Optional[Callable[[str], None]] = None) -> Request:
    """Snapshot the inputs into one request at ROS time ``now_ns``.

    ``resolve_depth`` turns a buffered depth image into the one to use (the replay decodes
    its lazily buffered stand-ins); ``on_ee_ignored(why)`` hears why a known end-effector
    pose was not used.
    """
    clip = sensors.buffers.snapshot(cfg.primary, context=list(cfg.context_cameras))
    camera = sensors.camera_model(cfg.primary)
    pipeline_cfg, source = (transform(camera, clip) if transform is not None
                            else (cfg.pipeline, 'static'))
    depth = None
    if clip is not None:
        tolerance_s = pipeline_cfg.grounding.depth_sync_tolerance_s
        depth = sensors.buffers.nearest_depth(cfg.primary, clip.newest.stamp_ns,
                                              int(tolerance_s * 1e9))
        if resolve_depth is not None:
            depth = resolve_depth(depth)
    ee = ee_position(cfg, sensors, now_ns, pipeline_cfg.grounding.target_frame, on_ee_ignored)
    return Request(PipelineInputs(clip=clip, task=task, task_id=task_id, camera=camera,
                                  depth=depth, now_ns=now_ns, ee_position=ee),
                   pipeline_cfg, clip, source)


def ee_position(cfg: 'NodeConfig', sensors: 'SensorInputs', now_ns: int, target_frame: str,
                on_ignored: Optional[Callable[[str], None]] = None
                ) -> Optional[Tuple[float, float, float]]:
    """Return the gripper position in the output frame, when known and fresh."""
    if not cfg.ee_pose_enabled:
        return None
    ee = sensors.ee_pose_latest()
    if ee is None:
        return None
    stamp_ns, frame, pos, _ = ee
    if now_ns - stamp_ns > cfg.ee_pose_max_age_s * 1e9:
        return None
    if target_frame and frame and frame != target_frame:
        if on_ignored is not None:
            on_ignored(f'end-effector pose is in {frame!r}, plans are in {target_frame!r}: '
                       'pose ignored')
        return None
    x, y, z = (float(v) for v in pos)
    return (x, y, z)


def make_buffers(cfg: 'NodeConfig') -> 'CameraBuffers':
    """Build the per-camera frame buffers of ``cfg``."""
    from cosmos_planner.frames.buffer import CameraBuffers

    return CameraBuffers([c.name for c in cfg.cameras], max_frames=cfg.buffer_max_frames,
                         window_s=cfg.buffer_window_s, fps=cfg.buffer_fps,
                         depth_window_s=max(2.0, cfg.buffer_window_s))


# -- tasks ------------------------------------------------------------------------------------

def parse_task(data: str, new_id: Callable[[], str]) -> Tuple[str, str]:
    """``(task text, task id)`` from ``~/task``: plain text, or JSON with task/task_id."""
    text = (data or '').strip()
    if text.startswith('{'):
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and isinstance(obj.get('task'), str):
            task_id = obj.get('task_id')
            return obj['task'].strip(), str(task_id) if task_id else new_id()
    return text, new_id()


def task_problem(text: str) -> Optional[str]:
    """Why the prompt would refuse ``text`` (empty, over the length limit), else None.

    Checked when the task arrives so that a task no request could carry is refused as
    ``bad_task`` at once instead of failing later through the worker's error path.
    """
    from cosmos_planner.model.prompts import normalize_task

    try:
        normalize_task(text)
    except ConfigError as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class TaskIntake:
    """A task as it arrived on ``~/task``: accepted, or refused with its ``bad_task`` fields."""

    text: str
    task_id: str
    #: ``~/status`` fields of the ``bad_task`` refusal; None when the task is accepted.
    refusal: Optional[Dict[str, str]] = None


def intake_task(data: str, new_id: Callable[[], str]) -> TaskIntake:
    """Parse a ``~/task`` message and refuse what no request could carry, for node and replay.

    Empty and over-long tasks are refused here, before any request exists, so both the
    node and the offline replay answer ``bad_task`` and go on instead of failing a request.
    """
    text, task_id = parse_task(data, new_id)
    if not text:
        return TaskIntake('', task_id, {'reason': 'empty task; publish an instruction on ~/task'})
    problem = task_problem(text)
    if problem is not None:
        # The echo is cut so ~/status stays small.
        return TaskIntake(text, task_id, {'reason': problem, 'task_id': task_id,
                                          'task': task_echo(text)})
    return TaskIntake(text, task_id)


def task_echo(text: str, limit: int = TASK_ECHO_CHARS) -> str:
    """``text`` cut to ``limit`` characters plus an ellipsis, for a refused task's status."""
    return text if len(text) <= limit else text[:limit] + '\u2026'
