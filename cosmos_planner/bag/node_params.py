"""ROS 2 parameter files read without rclpy, for the offline replay.

The replay configures the planner core exactly as the node does, from the node's
parameters; ``load_params_file`` reads a ``--params-file`` YAML (``/**`` and the node's own
section, nested or dotted keys) into flat dotted names. Writing parameter files and parsing
``-p NAME:=VALUE`` overrides are ``cosmos_planner.settings.write_params_file`` /
``parse_assignment``, shared with the node's shipped file, the simulator and the tests.
"""

from pathlib import Path
from typing import Any, Dict

from cosmos_planner.errors import ConfigError
from cosmos_planner.settings import flatten_params


def load_params_file(path: Path, node: str = 'cosmos_planner') -> Dict[str, Any]:
    """Flat parameters of ``node`` (and of ``/**``) from a ROS 2 ``--params-file`` YAML."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f'cannot read parameters file {path}: {exc}') from None
    out: Dict[str, Any] = {}
    for key in ('/**', '**', node, '/' + node):
        section = data.get(key) if isinstance(data, dict) else None
        if isinstance(section, dict) and isinstance(section.get('ros__parameters'), dict):
            out.update(flatten_params(section['ros__parameters']))
    if not out and isinstance(data, dict) and data:
        raise ConfigError(f'{path} has no ros__parameters for {node} or /**')
    return out
