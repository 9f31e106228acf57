"""The task's geometric success check, shared by the MuJoCo sim and the Isaac script (pure).

Success means the target object is at rest inside the basket's inner volume (centre within
the inner walls, between the floor and a little above the rim) and no longer held: a
check on poses, not on what the planner claims.
"""

from dataclasses import dataclass
from typing import Optional

import numpy as np

from cosmos_planner.geometry.transforms import Vector
from cosmos_planner.sim.config import SimConfig

#: Below this height (world z) an object has fallen off the table.
FALLEN_Z = -0.1
#: How far above the rim the object's centre may be and still count as inside.
RIM_MARGIN = 0.02


@dataclass(frozen=True)
class TaskState:
    """Geometric evaluation of the task at one instant."""

    time_s: float
    success: bool
    in_basket: bool
    at_rest: bool
    grasped: Optional[str]
    fallen: bool
    #: Horizontal distance of the target's centre from the basket centre (metres).
    object_error_m: float

    def as_dict(self) -> dict:
        """Return the JSON-ready form (episode records, ground truth)."""
        return {'time_s': self.time_s, 'success': self.success, 'in_basket': self.in_basket,
                'at_rest': self.at_rest, 'grasped': self.grasped, 'fallen': self.fallen,
                'object_error_m': self.object_error_m}


def in_basket(position: Vector, basket_center: Vector,
              cfg: SimConfig) -> bool:
    """Tell whether a point (an object's centre) is inside the basket's inner volume."""
    pos = np.asarray(position, float)
    centre = np.asarray(basket_center, float)
    hx, hy = cfg.basket_half
    height = pos[2] - centre[2]
    return bool(abs(pos[0] - centre[0]) <= hx and abs(pos[1] - centre[1]) <= hy
                and cfg.basket_wall_thickness <= height <= cfg.basket_wall + RIM_MARGIN)


def evaluate(time_s: float, position: Vector, speed: float,
             basket_center: Vector, grasped: Optional[str],
             cfg: SimConfig) -> TaskState:
    """Evaluate the target at ``position`` moving at ``speed`` (m/s)."""
    pos = np.asarray(position, float)
    inside = in_basket(pos, basket_center, cfg)
    rest = float(speed) <= cfg.rest_speed
    err = float(np.linalg.norm(pos[:2] - np.asarray(basket_center, float)[:2]))
    return TaskState(time_s=float(time_s), success=inside and rest and grasped != cfg.target,
                     in_basket=inside, at_rest=rest, grasped=grasped,
                     fallen=bool(pos[2] < FALLEN_Z), object_error_m=err)
