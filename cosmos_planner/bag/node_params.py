"""ROS 2 parameter files and ``-p`` overrides, read and written without rclpy.

The replay configures the planner core exactly as the node does, from the node's
parameters; these helpers read a ``--params-file`` YAML (``/**`` and the node's own section,
nested or dotted keys) into flat dotted names, parse ``NAME:=VALUE`` overrides as ROS does
(YAML values), and write the parameters back as a file the live node accepts.
"""

from pathlib import Path
from typing import Any, Dict, Tuple

from cosmos_planner.errors import ConfigError


def flatten_params(tree: Any, prefix: str = '') -> Dict[str, Any]:
    """Nested YAML mappings to dotted ROS parameter names."""
    out: Dict[str, Any] = {}
    for key, value in (tree or {}).items():
        name = f'{prefix}{key}'
        if isinstance(value, dict):
            out.update(flatten_params(value, name + '.'))
        else:
            out[name] = value
    return out


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


def parse_param(item: str) -> Tuple[str, Any]:
    """``name:=value`` (YAML value, like ``--ros-args -p``) to a pair."""
    import yaml

    name, sep, raw = item.partition(':=')
    if not sep:
        name, sep, raw = item.partition('=')
    if not sep or not name:
        raise ConfigError(f'-p takes NAME:=VALUE, not {item!r}')
    try:
        return name.strip(), yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f'-p {item}: bad value: {exc}') from None


def params_yaml(values: Dict[str, Any], node: str = 'cosmos_planner') -> str:
    """Write a ``--params-file`` for the live node with exactly these flat values."""
    import yaml

    nested: Dict[str, Any] = {}
    for key, value in sorted(values.items()):
        *parents, leaf = key.split('.')
        cur = nested
        for part in parents:
            cur = cur.setdefault(part, {})
        cur[leaf] = value
    return yaml.safe_dump({node: {'ros__parameters': nested}}, sort_keys=False)
