"""Find the package's share files (config, prompts, schemas) however it was installed.

Order: ``COSMOS_PLANNER_SHARE``; the ament index (colcon install: ``share/cosmos_planner``);
``sys.prefix/share/cosmos_planner`` (pip wheel install); the source tree (editable install).
"""

import os
import sys
from pathlib import Path

PACKAGE = 'cosmos_planner'


def share_dir() -> Path:
    """Directory holding ``config/`` (and ``launch/``) for this installation."""
    env = os.environ.get('COSMOS_PLANNER_SHARE')
    candidates = [Path(env)] if env else []
    try:
        from ament_index_python.packages import get_package_share_directory
        candidates.append(Path(get_package_share_directory(PACKAGE)))
    except Exception:  # noqa: BLE001 - not a ROS install, or package not in the index
        pass
    candidates.append(Path(sys.prefix) / 'share' / PACKAGE)
    candidates.append(Path(__file__).resolve().parent.parent)
    for cand in candidates:
        if (cand / 'config').is_dir():
            return cand
    raise FileNotFoundError(
        f'cannot find the {PACKAGE} config directory; looked in '
        + ', '.join(str(c) for c in candidates) + ' (set COSMOS_PLANNER_SHARE)')


def config_path(*parts: str) -> Path:
    """Path of a file below ``config/``; raises FileNotFoundError naming it if absent."""
    path = share_dir().joinpath('config', *parts)
    if not path.exists():
        raise FileNotFoundError(f'config file not found: {path}')
    return path
