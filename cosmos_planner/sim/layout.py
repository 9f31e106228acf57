"""Per-seed random placement of the basket and objects on the table (pure numpy).

Kept apart from the MJCF text and from MuJoCo so a layout can be checked, logged in the
episode record and rebuilt exactly from its seed on any machine (numpy's PCG64 stream is
stable across platforms).
"""

import math
from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np

from cosmos_planner.errors import ConfigError
from cosmos_planner.sim.config import SimConfig

#: Free space kept between any two footprints (metres).
CLEARANCE = 0.03
MAX_TRIES = 2000


@dataclass(frozen=True)
class Placement:
    """Planar pose of an item on the table: centre (x, y) in ``world`` and yaw (radians)."""

    x: float
    y: float
    yaw: float = 0.0


@dataclass(frozen=True)
class SceneLayout:
    """Where everything starts for one episode; equal seeds give equal layouts."""

    seed: int
    basket: Placement
    objects: Dict[str, Placement]
    gripper_start: Tuple[float, float, float]

    def as_dict(self) -> dict:
        """JSON-ready form for episode records."""
        return {
            'seed': self.seed,
            'basket': [self.basket.x, self.basket.y, self.basket.yaw],
            'objects': {k: [p.x, p.y, p.yaw] for k, p in self.objects.items()},
            'gripper_start': list(self.gripper_start),
        }


def sample_layout(seed: int, cfg: SimConfig) -> SceneLayout:
    """Place the basket, then each object, uniformly in the table region without overlaps.

    Raises ConfigError when the region is too small to place everything (the message says
    which item did not fit), instead of looping forever.
    """
    if seed < 0:
        raise ConfigError(f'seed must be >= 0, got {seed}')
    rng = np.random.default_rng(seed)
    x0, x1, y0, y1 = cfg.table_region
    basket_r = math.hypot(*cfg.basket_half) + cfg.basket_wall_thickness
    placed: List[Tuple[float, float, float]] = []  # (x, y, radius)

    def draw(radius: float, what: str) -> Tuple[float, float]:
        for _ in range(MAX_TRIES):
            x = float(rng.uniform(x0 + radius, x1 - radius))
            y = float(rng.uniform(y0 + radius, y1 - radius))
            if all(math.hypot(x - px, y - py) >= radius + pr + CLEARANCE
                   for px, py, pr in placed):
                placed.append((x, y, radius))
                return x, y
        raise ConfigError(f'cannot place {what} in table_region {cfg.table_region}')

    if x1 - x0 < 2 * basket_r or y1 - y0 < 2 * basket_r:
        raise ConfigError('table_region is smaller than the basket')
    bx, by = draw(basket_r, 'the basket')
    basket = Placement(bx, by, 0.0)
    objects = {}
    for obj in cfg.objects:
        ox, oy = draw(obj.footprint_radius, obj.name)
        objects[obj.name] = Placement(ox, oy, float(rng.uniform(-math.pi / 4, math.pi / 4)))
    hx, hy, hz = cfg.gripper_home
    start = (hx + float(rng.uniform(-0.04, 0.04)), hy + float(rng.uniform(-0.02, 0.02)), hz)
    return SceneLayout(seed=seed, basket=basket, objects=objects, gripper_start=start)
