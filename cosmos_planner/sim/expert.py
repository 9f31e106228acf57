"""``ScriptedExpertBackend``: a TEST ORACLE that answers like the model from sim ground truth.

It is not a planner anyone should deploy: it reads the simulator's ground truth (object,
basket and gripper poses) and writes the answer Cosmos Reason 2 is asked for, in the
model's own JSON format, so the closed loop (parse, ground, gate, publish, controller,
success check) can be validated end to end without a trained model. Its answers take the
same path as a model's: the planner parses, grounds and gates them like any other text.

Formats (chosen from the request's response schema, else its preset name):

- ``plan`` preset: ``{"next_action": ..., "steps": [...], "trajectory": [points]}``;
- ``trajectory`` preset: NVIDIA's bare list of points.

Each point is ``{"point_2d": [x, y], "label": "gripper trajectory", "gripper": ...}`` in
0-1000 image coordinates of the frame the clip ends with. The plan is pick and place:
current gripper, the object (``close``), the object again (lift: held points are carried
high by the grounding's lift rule), the basket, the basket (``open``).

Which pixels it names depends on how the planner grounds them (``grounding``):

- ``plane`` (default; the sim's planner setup): the grounding intersects the pixel's ray
  with the table plane, so the expert names the pixel *below* each target on that plane
  (the projection of ``(x, y, plane_z)``), which grounds back to the target's exact x, y.
- ``depth``: the grounding reads the depth image, so the expert names the visible top
  centre of objects and the basket floor (occlusion by the gripper is not modelled).

Ground truth comes from ``cosmos_planner.sim.ground_truth`` (a state file keyed by frame
stamp; see that module for why this channel).
"""

import json
import os
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from cosmos_planner.model.cancel import CancelToken, token_or_new
from cosmos_planner.model.protocol import Completion, GenerationRequest
from cosmos_planner.errors import BackendError, ConfigError, GenerationCancelled
from cosmos_planner.sim.camera import Intrinsics, OpticalPose, pixel_to_model, project
from cosmos_planner.sim.camera import quat_xyzw_to_matrix
from cosmos_planner.sim.ground_truth import GroundTruthReader

GROUNDINGS = ('plane', 'depth')
FORMS = ('auto', 'plan', 'trajectory')
LABEL = 'gripper trajectory'
MODEL_NAME = 'scripted-expert (test oracle)'
#: Environment variable with the default ``delay_s`` (the planner node passes no such option).
DELAY_ENV = 'COSMOS_PLANNER_EXPERT_DELAY_S'

Point = Tuple[float, float, Optional[str]]


def _camera(truth: Dict[str, Any]) -> Tuple[OpticalPose, Intrinsics]:
    cam = truth['camera']
    k = np.asarray(cam['K'], float)
    intr = Intrinsics(int(cam['width']), int(cam['height']), float(k[0, 0]), float(k[1, 1]),
                      float(k[0, 2]), float(k[1, 2]))
    pose = OpticalPose(quat_xyzw_to_matrix(cam['quaternion_xyzw']),
                       np.asarray(cam['translation'], float))
    return pose, intr


def _to_model(world: Sequence[float], pose: OpticalPose, intr: Intrinsics) -> Tuple[int, int]:
    """World point to integer 0-1000 coordinates (clamped: the schema bounds them)."""
    px, depth = project(np.asarray(world, float), pose, intr)
    if not depth[0] > 0:
        raise BackendError(f'expert: point {list(world)} is behind the camera')
    xy = pixel_to_model(px, intr)[0]
    return int(round(min(max(xy[0], 0.0), 1000.0))), int(round(min(max(xy[1], 0.0), 1000.0)))


def expert_points(truth: Dict[str, Any], grounding: str = 'plane',
                  plane_z: float = 0.0) -> Tuple[str, List[str], List[Point]]:
    """Return the oracle's next action, steps and labelled points for one frame's truth."""
    if grounding not in GROUNDINGS:
        raise ConfigError(f'expert grounding must be one of {GROUNDINGS}, got {grounding!r}')
    pose, intr = _camera(truth)
    target = truth['target']
    obj = truth['objects'][target]
    label = obj['label']
    gripper = truth['gripper']
    basket = truth['basket']
    state = truth.get('state', {})

    def anchor(pos: Sequence[float], top: float) -> Tuple[int, int]:
        x, y, z = (float(v) for v in pos)
        return _to_model((x, y, plane_z) if grounding == 'plane' else (x, y, z + top), pose,
                         intr)

    g_xy = anchor(gripper['position'], 0.0)
    floor = float(basket.get('floor', 0.0))
    b_xy = anchor(basket['position'], floor)
    if state.get('in_basket') and gripper.get('grasped') != target:
        return (f'Nothing: the {label} is already in the basket.', ['hold position'],
                [(g_xy[0], g_xy[1], 'open')])
    o_xy = anchor(obj['position'], float(obj['half_height']))
    points: List[Point] = [
        (g_xy[0], g_xy[1], None),
        (o_xy[0], o_xy[1], 'close'),
        (o_xy[0], o_xy[1], None),
        (b_xy[0], b_xy[1], None),
        (b_xy[0], b_xy[1], 'open'),
    ]
    steps = [f'move above the {label}', f'grasp the {label}', f'lift the {label}',
             'move it over the basket', f'release the {label} into the basket']
    return f'Pick up the {label} and place it in the basket.', steps, points


def _point_json(point: Point) -> Dict[str, Any]:
    out: Dict[str, Any] = {'point_2d': [point[0], point[1]], 'label': LABEL}
    if point[2] is not None:
        out['gripper'] = point[2]
    return out


def answer_text(truth: Dict[str, Any], form: str, grounding: str = 'plane',
                plane_z: float = 0.0) -> str:
    """Write the answer as the model would (``form``: plan or trajectory)."""
    action, steps, points = expert_points(truth, grounding, plane_z)
    traj = [_point_json(p) for p in points]
    if form == 'trajectory':
        return json.dumps(traj)
    if form != 'plan':
        raise ConfigError(f'expert form must be plan or trajectory, got {form!r}')
    return json.dumps({'next_action': action, 'steps': steps, 'trajectory': traj})


def form_for(request: GenerationRequest) -> str:
    """Bare list when the response schema (or the preset) asks for one, else the object."""
    schema = request.response_schema or {}
    if schema.get('type') == 'array':
        return 'trajectory'
    if schema.get('type') == 'object' or schema.get('properties'):
        return 'plan'
    return 'trajectory' if request.preset == 'trajectory' else 'plan'


class ScriptedExpertBackend:
    """TEST ORACLE backend: model-format answers computed from the simulator's ground truth.

    ``ground_truth``: the sim's state file (default: ``$COSMOS_PLANNER_GROUND_TRUTH``);
    ``grounding``/``plane_z``: how the planner grounds pixels (see the module doc);
    ``form``: force ``plan`` or ``trajectory`` instead of following the request;
    ``tolerance_s``: how far a ground-truth frame may be from the clip's newest stamp;
    ``delay_s``: wall seconds each answer takes, like a model's latency (default
    ``$COSMOS_PLANNER_EXPERT_DELAY_S`` or 0); cancelling the job's token cuts it short with
    GenerationCancelled, so tests can reset the sim while a plan is in flight.
    """

    name = 'expert'

    def __init__(self, ground_truth: Optional[str] = None, grounding: str = 'plane',
                 plane_z: float = 0.0, form: str = 'auto', tolerance_s: float = 0.001,
                 delay_s: Optional[float] = None) -> None:
        if grounding not in GROUNDINGS:
            raise ConfigError(f'expert grounding must be one of {GROUNDINGS}, got {grounding!r}')
        if form not in FORMS:
            raise ConfigError(f'expert form must be one of {FORMS}, got {form!r}')
        if not tolerance_s >= 0:
            raise ConfigError(f'expert tolerance_s must be >= 0, got {tolerance_s!r}')
        if delay_s is None:
            try:
                delay_s = float(os.environ.get(DELAY_ENV, '0') or 0)
            except ValueError:
                raise ConfigError(f'{DELAY_ENV} must be a number of seconds') from None
        if not 0 <= delay_s <= 3600:
            raise ConfigError(f'expert delay_s must be within 0-3600, got {delay_s!r}')
        self.delay_s = float(delay_s)
        self._reader = GroundTruthReader(ground_truth)
        self._grounding = grounding
        self._plane_z = float(plane_z)
        self._form = form
        self._tolerance_ns = int(round(tolerance_s * 1e9))
        self.calls = 0

    def generate(self, request: GenerationRequest,
                 cancel: Optional[CancelToken] = None) -> Completion:
        """Answer for the clip's newest frame, or BackendError when its truth is unknown.

        ``cancel`` (the job's token) ends the ``delay_s`` wait with GenerationCancelled.
        """
        token = token_or_new(cancel)
        start = time.perf_counter()
        stamp_ns = request.clip.newest.stamp_ns
        truth = self._reader.lookup(stamp_ns, self._tolerance_ns)
        form = form_for(request) if self._form == 'auto' else self._form
        text = answer_text(truth, form, self._grounding, self._plane_z)
        if self.delay_s > 0:
            token.wait(self.delay_s)
        if token.cancelled:
            raise GenerationCancelled('expert generation cancelled')
        self.calls += 1
        return Completion(
            text=text, finish_reason='stop', model=MODEL_NAME, backend=self.name,
            generate_ms=(time.perf_counter() - start) * 1e3,
            meta={'oracle': True, 'episode': truth.get('episode'),
                  'ground_truth_stamp_ns': truth.get('stamp_ns'), 'form': form})

    def health(self) -> Dict[str, Any]:
        try:
            doc = self._reader.read()
        except BackendError as exc:
            return {'ok': False, 'detail': str(exc), 'oracle': True}
        return {'ok': True, 'detail': f'test oracle on {self._reader.path} '
                f'(episode {doc.get("episode")}, {len(doc.get("frames", []))} frames)',
                'oracle': True}
