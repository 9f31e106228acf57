"""Run the planner as its own process against the simulator, as it would run against Isaac.

The closed loop tests the real deployment shape: the ``planner_node`` console script, its
parameters from a YAML file, ``use_sim_time``, camera topics, ``/clock`` and the controller
topics over DDS. This module writes that parameter file for the sim (camera topics with
Isaac's names, the camera pose as the static camera-to-world transform, plane grounding on
the table, workspace limits of the table) and owns the child process (start, readiness
through ``~/status``, stop by its own PID).
"""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, BinaryIO, Dict, List, Mapping, Optional

from cosmos_planner.errors import ConfigError
# The one writer of parameter files (re-exported for the episode runner).
from cosmos_planner.sim.camera import OpticalPose
from cosmos_planner.sim.config import SimConfig
from cosmos_planner.sim.ground_truth import GROUND_TRUTH_ENV

PLANNER_NODE_NAME = 'cosmos_planner'
#: Camera name used in the planner's ``cameras.*`` parameters for the sim camera.
CAMERA = 'sim'
#: Where the sim controller publishes the tool pose (the planner's ``ee_pose.topic``).
EE_POSE_TOPIC = '/ee_pose'
#: Finger opening (m) published by the planner for open/closed; the controller uses the same.
GRIPPER_OPEN = 0.04
GRIPPER_CLOSED = 0.0


GROUNDINGS = ('plane', 'depth')


def planner_parameters(cfg: SimConfig, pose: OpticalPose, backend: str,
                       backend_options: Optional[Mapping[str, Any]] = None,
                       preset: str = 'plan', ground_truth: str = '',
                       extra: Optional[Mapping[str, Any]] = None,
                       grounding: str = 'plane') -> Dict[str, Any]:
    """Return flat ROS parameters of ``planner_node`` for the tabletop (``extra`` wins).

    Plans are published in ``world``: the static transform is the camera's optical pose,
    exactly what a TF lookup would return on a ROS machine with Isaac's TF publisher.
    ``grounding='plane'`` intersects pixel rays with the table; ``'depth'`` reads the depth
    image, whose surface under an object's pixel is its top, so the grasp goes half the
    target's height below the surface.
    """
    if grounding not in GROUNDINGS:
        raise ConfigError(f'grounding must be one of {GROUNDINGS}, got {grounding!r}')
    tx, ty = cfg.table_half
    params: Dict[str, Any] = {
        'use_sim_time': True,
        'backend.kind': backend,
        'prompt.preset': preset,
        'cameras.names': [CAMERA],
        f'cameras.{CAMERA}.image_topic': '/rgb',
        f'cameras.{CAMERA}.info_topic': '/camera_info',
        f'cameras.{CAMERA}.depth_topic': '/depth',
        'qos.reliable': True,
        'qos.depth': 10,
        'ee_pose.enabled': True,
        'ee_pose.topic': EE_POSE_TOPIC,
        'tf.use_tf': False,
        'ground.mode': 'plane',
        'ground.plane': [0.0, 0.0, 1.0, 0.0],
        'target.frame': cfg.world_frame_id,
        'target.translation': [float(v) for v in pose.translation],
        'target.rotation_xyzw': [float(v) for v in pose.quaternion_xyzw()],
        'safety.workspace_min': [-tx, -ty, -0.02],
        'safety.workspace_max': [tx, ty, 0.5],
        'safety.max_step_m': 0.9,
        'timing.nominal_speed_mps': 0.15,
        'gripper.open_position': GRIPPER_OPEN,
        'gripper.closed_position': GRIPPER_CLOSED,
        'replan_period_s': 0.0,
    }
    if grounding == 'depth':
        params['ground.mode'] = 'depth'
        params['heights.grasp_offset_m'] = -float(cfg.target_spec.half_height)
    if backend == 'expert' and ground_truth:
        params['backend.expert_ground_truth'] = str(ground_truth)
    for key, value in (backend_options or {}).items():
        if value is not None:
            params[f'backend.{key}'] = value
    params.update(extra or {})
    return params


def isaac_bridge_parameters(cfg: Optional[SimConfig] = None) -> Dict[str, Any]:
    """Return the planner preset for Isaac's bridge topics (``config/isaac_bridge.yaml``).

    The embedded default model, Isaac's topic names and QoS, sim time, and the camera
    pose of the tabletop scene (the standalone Isaac script places its camera the same
    way), so the same file serves Isaac Sim and the MuJoCo sim node.
    """
    from cosmos_planner.sim.camera import look_at_optical_pose

    cfg = cfg or SimConfig()
    pose = look_at_optical_pose(cfg.camera_pos, cfg.camera_target)
    params = planner_parameters(cfg, pose, 'local')
    params['backend.model'] = ''
    params['tf.use_tf'] = True  # on ROS machines: Isaac's TF tree, if published, wins
    return params


def planner_command(params_file: Path) -> List[str]:
    """Return the console script ``planner_node`` beside this Python, else ``python -m``."""
    script = Path(sys.executable).parent / 'planner_node'
    found = str(script) if script.exists() else shutil.which('planner_node')
    base = [found] if found else [sys.executable, '-m', 'cosmos_planner.ros.planner_node']
    return base + ['--ros-args', '--params-file', str(params_file)]


class PlannerProcess:
    """The planner node as a child process; output goes to ``log_path``."""

    def __init__(self, params_file: Path, log_path: Path,
                 env: Optional[Mapping[str, str]] = None, ground_truth: str = '') -> None:
        self.command = planner_command(params_file)
        self.log_path = Path(log_path)
        self.env = dict(os.environ)
        self.env.update(env or {})
        if ground_truth:
            self.env[GROUND_TRUTH_ENV] = str(ground_truth)
        self.env.setdefault('PYTHONUNBUFFERED', '1')
        self.proc: Optional[subprocess.Popen] = None
        self._log: Optional[BinaryIO] = None

    def start(self) -> 'PlannerProcess':
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, 'ab')
        try:
            self.proc = subprocess.Popen(self.command, stdout=self._log,
                                         stderr=subprocess.STDOUT, env=self.env)
        except OSError as exc:
            self._log.close()
            raise ConfigError(f'cannot start the planner node {self.command[0]}: {exc}') \
                from None
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def returncode(self) -> Optional[int]:
        return None if self.proc is None else self.proc.poll()

    def tail(self, n: int = 20) -> str:
        """Return the last lines of the planner's log, for error messages."""
        try:
            lines = self.log_path.read_text(errors='replace').splitlines()
        except OSError:
            return ''
        return '\n'.join(lines[-n:])

    def stop(self, timeout_s: float = 15.0) -> Optional[int]:
        """SIGINT (the node's clean shutdown), then SIGKILL this PID if it hangs."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5.0)
        if self._log is not None:
            self._log.close()
            self._log = None
        return None if proc is None else proc.returncode

    def __enter__(self) -> 'PlannerProcess':
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
