"""Parameters declared once: the one spec class, settings fields, parameter files, NAME=VALUE.

Why one module at the bottom of the layering: the node's parameters (``ros.params``), the
pipeline's flat parameters (``pipeline.config``) and the OpenAI backend's settings
(``backends.openai.config``) are all declared with the same ``ParamSpec``, so a range, a
choice list or a type is checked by exactly one piece of code with one wording, whichever
layer declared it. Nothing here imports ROS: ``ros.params`` turns a spec into a
``ParameterDescriptor``.

- ``ParamSpec``: name, default, description and range/choices/length of one parameter;
  ``check`` (ROS-strict types) and ``coerce`` (core configs: integral floats, tuples and
  arrays accepted) share the range and choice checks.
- ``setting`` / ``settings_specs`` / ``check_settings``: a dataclass field that carries its
  own description and range, so a backend's config is its own declaration; ``node=True``
  marks the fields the node exposes as ``backend.NAME`` parameters.
- ``render_params_file`` / ``write_params_file``: the one writer of ROS 2 parameter files
  (flat dotted names, which rcl reads like nested ones), used for ``config/planner.yaml``,
  the bag replay's ``params.yaml``, the simulator's planner parameters and the tests.
- ``parse_assignment``: the one ``NAME=VALUE`` parser of command lines (see its docstring for
  the ``:=`` rule).
"""

from dataclasses import dataclass, field, fields, MISSING, replace
import json
import math
from pathlib import Path
import re
import textwrap
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from cosmos_planner.errors import ConfigError

#: Parameter value types, named as ROS 2 parameter types (``dict`` only for settings that
#: are never node parameters).
TYPES = ('bool', 'integer', 'double', 'string', 'double_array', 'string_array', 'dict')
#: Node name of the planner in every parameter file this package writes.
PLANNER_NODE = 'cosmos_planner'
_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$')


def type_of(value: Any) -> str:
    """ROS 2 parameter type name of a default value (lists: by their first element)."""
    if isinstance(value, bool):
        return 'bool'
    if isinstance(value, int):
        return 'integer'
    if isinstance(value, float):
        return 'double'
    if isinstance(value, str):
        return 'string'
    if isinstance(value, dict):
        return 'dict'
    if isinstance(value, (list, tuple)):
        return 'string_array' if value and isinstance(value[0], str) else 'double_array'
    raise ConfigError(f'no parameter type for {value!r}')


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter: default, description, range or choices, and its type.

    ``type`` is one of ``TYPES``; empty means "the type of the default". ``optional``
    allows None (settings such as "no API key"; never a node parameter).
    """

    name: str
    default: Any
    description: str
    min: Optional[float] = None
    max: Optional[float] = None
    choices: Tuple[str, ...] = ()
    read_only: bool = False
    length: Optional[int] = None
    type: str = ''
    optional: bool = False

    def __post_init__(self) -> None:
        if not self.type:
            object.__setattr__(self, 'type', type_of(self.default))
        if self.type not in TYPES:
            raise ConfigError(f'{self.name}: unknown parameter type {self.type!r}')

    def check(self, value: Any) -> Optional[str]:
        """Why ``value`` is refused as a ROS parameter value, or None when it is acceptable.

        ROS-strict: an integer parameter takes no float (rcl would refuse its type).
        """
        try:
            self.coerce(value, strict=True)
        except ConfigError as exc:
            return str(exc)
        return None

    def coerce(self, value: Any, strict: bool = False) -> Any:
        """Return ``value`` as this parameter's type, or raise ConfigError naming it.

        Doubles come back as float, integers as int, arrays as tuples. Not strict (the core
        configs): an integral float is accepted for an integer, and arrays may be any
        sequence of numbers (``array.array`` from rclpy, numpy).
        """
        name, kind = self.name, self.type
        if value is None and self.optional:
            return None
        if kind == 'bool':
            if not isinstance(value, bool):
                raise ConfigError(f'{name} must be a bool, got {value!r}')
            return value
        if kind == 'string':
            if not isinstance(value, str):
                raise ConfigError(f'{name} must be a string, got {value!r}')
            if self.choices and value not in self.choices:
                raise ConfigError(f'{name} must be one of {list(self.choices)}, got {value!r}')
            return value
        if kind == 'dict':
            if not isinstance(value, dict):
                raise ConfigError(f'{name} must be a mapping, got {value!r}')
            return value
        if kind == 'integer':
            integral = isinstance(value, float) and value.is_integer() and not strict
            if isinstance(value, bool) or not (isinstance(value, int) or integral):
                raise ConfigError(f'{name} must be an integer, got {value!r}')
            return self._in_range(int(value))
        if kind == 'double':
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise ConfigError(f'{name} must be a finite number, got {value!r}')
            return self._in_range(float(value))
        if kind == 'string_array':
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str)
                                                               for v in value):
                raise ConfigError(f'{name} must be a list of strings, got {value!r}')
            return self._of_length(tuple(value))
        what = f'a list of {self.length} numbers' if self.length else 'a list of numbers'
        try:
            seq = tuple(float(v) for v in value)  # lists, tuples, array.array, numpy arrays
        except (TypeError, ValueError):
            raise ConfigError(f'{name} must be {what}, got {value!r}') from None
        if isinstance(value, (str, bytes)) or any(isinstance(v, bool) for v in value):
            raise ConfigError(f'{name} must be {what}, got {value!r}')
        if not all(math.isfinite(v) for v in seq):
            raise ConfigError(f'{name} contains a non-finite number: {value!r}')
        return self._of_length(seq)

    def _of_length(self, seq: Tuple[Any, ...]) -> Tuple[Any, ...]:
        if self.length is not None and len(seq) != self.length:
            noun = 'numbers' if self.type == 'double_array' else 'strings'
            raise ConfigError(f'{self.name} must be a list of {self.length} {noun}, '
                              f'got {len(seq)}')
        return seq

    def _in_range(self, value: float) -> Any:
        """Refuse a value outside [min, max]: the one range check of the package."""
        if (self.min is not None and value < self.min) or \
                (self.max is not None and value > self.max):
            lo = '-inf' if self.min is None else f'{self.min:g}'
            hi = 'inf' if self.max is None else f'{self.max:g}'
            raise ConfigError(f'{self.name} = {value!r} is outside [{lo}, {hi}]')
        return value

    def notes(self) -> str:
        """Range, choices and read-only flag as written in parameter files and tables."""
        notes = []
        if self.min is not None and self.max is not None:
            notes.append(f'range {self.min:g} to {self.max:g}')
        if self.choices:
            notes.append('one of ' + ', '.join(self.choices))
        if self.read_only:
            notes.append('read-only')
        return '; '.join(notes)


# --- settings: dataclass fields that declare themselves ------------------------------------

_SETTING = 'cosmos_planner.setting'


@dataclass(frozen=True)
class _Setting:
    spec: ParamSpec
    node: bool
    node_default: Any


def setting(default: Any, description: str, *, node: bool = False,
            node_default: Any = MISSING, type: str = '', min: Optional[float] = None,
            max: Optional[float] = None, choices: Tuple[str, ...] = (),
            optional: bool = False) -> Any:
    """Declare a config dataclass field with its description, range and default.

    ``node=True``: the node declares it as a read-only ``backend.NAME`` parameter, with
    ``node_default`` when the node's default differs from the constructor's (a robot wants
    a shorter timeout than a script, and names the usual API key variable). A dict default
    is copied for every instance.
    """
    spec = ParamSpec('', default, description, min=min, max=max, choices=tuple(choices),
                     type=type, optional=optional or default is None)
    meta = {_SETTING: _Setting(spec, node, default if node_default is MISSING
                               else node_default)}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: _copy_default(default), metadata=meta)
    return field(default=default, metadata=meta)


def _copy_default(value: Any) -> Any:
    """Copy a mutable default for a new instance (dicts and lists, one level)."""
    return dict(value) if isinstance(value, dict) else list(value)


def settings_specs(cls: type) -> Tuple[ParamSpec, ...]:
    """Specs of the ``setting`` fields of a dataclass, named by field, in field order."""
    return tuple(replace(f.metadata[_SETTING].spec, name=f.name)
                 for f in fields(cls) if _SETTING in f.metadata)


def node_settings(cls: type, prefix: str) -> Tuple[ParamSpec, ...]:
    """Read-only node parameters ``PREFIX + NAME`` of the ``node=True`` fields (node defaults)."""
    out = []
    for f in fields(cls):
        meta = f.metadata.get(_SETTING)
        if meta is not None and meta.node:
            out.append(replace(meta.spec, name=prefix + f.name, default=meta.node_default,
                               optional=False, read_only=True))
    return tuple(out)


def check_settings(obj: Any) -> None:
    """Check every ``setting`` field of a dataclass instance (ConfigError names the field)."""
    for spec in settings_specs(type(obj)):
        spec.coerce(getattr(obj, spec.name))


def unknown_options(cls: type, options: Mapping[str, Any]) -> None:
    """Refuse option names that are not fields of ``cls``, listing the accepted ones."""
    known = [f.name for f in fields(cls)]
    bad = sorted(set(options) - set(known))
    if bad:
        raise ConfigError(f'unknown option(s) {", ".join(bad)}; accepted: {", ".join(known)}')


# --- NAME=VALUE -------------------------------------------------------------------------------

def parse_assignment(item: str, flag: str = '-p') -> Tuple[str, Any]:
    """``NAME:=VALUE`` or ``NAME=VALUE`` to ``(name, value)``; the value is YAML, as in ROS.

    The rule, the same for every command: NAME ends at the first ``=``; a ``:`` right
    before it belongs to the separator, so ``-p`` arguments copied from ``--ros-args -p
    name:=value`` work unchanged and ``NAME=VALUE`` is the short form. Everything after
    the separator is the value, ``=`` and ``:=`` included (``a=b:=c`` sets ``a`` to
    ``'b:=c'``). NAME must be a dotted parameter name; an empty VALUE is refused (write
    ``''`` for an empty string: no parameter takes null).
    """
    import yaml

    name, sep, raw = item.partition('=')
    if name.endswith(':'):
        name = name[:-1]
    name = name.strip()
    if not sep or not _NAME.match(name):
        raise ConfigError(f'{flag} takes NAME:=VALUE (or NAME=VALUE), not {item!r}')
    if not raw.strip():
        raise ConfigError(f"{flag} {item}: no value (write {name}:=\"''\" for an empty "
                          'string)')
    try:
        return name, yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f'{flag} {item}: bad value: {exc}') from None


def parse_assignments(items: Sequence[str], flag: str = '-p') -> Dict[str, Any]:
    """``parse_assignment`` over repeated flags; a later NAME wins."""
    return dict(parse_assignment(item, flag) for item in items)


# --- parameter files --------------------------------------------------------------------------

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


def _plain(value: Any) -> Any:
    """Plain Python value of a parameter (tuples, arrays and numpy scalars converted)."""
    if hasattr(value, 'tolist'):
        value = value.tolist()
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def yaml_value(value: Any) -> str:
    """One parameter value as YAML text (plain when unambiguous, JSON-quoted otherwise)."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, str):
        import yaml

        plain_ok = value and value == value.strip() and \
            not any(c in value for c in ':#,{}[]&*!|>\'"%@`') and \
            value.lower() not in ('true', 'false', 'yes', 'no', 'on', 'off', 'null', '~') \
            and isinstance(yaml.safe_load(value), str)   # '5', '1.0' stay strings
        return value if plain_ok else json.dumps(value)
    if isinstance(value, float):
        text = repr(value)
        if 'e' in text and '.' not in text:   # YAML 1.1 reads 1e-05 as a string
            text = text.replace('e', '.0e')
        return text
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(yaml_value(v) for v in value) + ']'
    return str(value)


def render_params_file(values: Mapping[str, Any], node: str = PLANNER_NODE, *,
                       header: Sequence[str] = (),
                       comments: Optional[Mapping[str, str]] = None) -> str:
    """Render a ROS 2 ``--params-file`` for ``node`` holding exactly ``values``.

    Keys are flat dotted names (nested mappings in ``values`` are flattened first), in the
    order given; ``comments`` puts a wrapped comment above a key, ``header`` comment lines
    on top. The text is read back before it is returned, so a value YAML would read
    differently (None, NaN, an unquotable string) raises ConfigError instead of reaching
    a node.
    """
    import yaml

    flat = {name: _plain(value) for name, value in flatten_params(dict(values)).items()}
    lines = ['# ' + line if line else '#' for line in header]
    lines += [f'{node}:', '  ros__parameters:']
    for name, value in flat.items():
        text = (comments or {}).get(name)
        if text:
            lines += ['    # ' + line for line in textwrap.wrap(text, 88)]
        lines.append(f'    {name}: {yaml_value(value)}')
    out = '\n'.join(lines) + '\n'
    back = (yaml.safe_load(out) or {}).get(node, {}).get('ros__parameters', {})
    for name, value in flat.items():
        if name not in back or back[name] != value or type(back[name]) is not type(value):
            raise ConfigError(f'parameter {name} = {value!r} cannot be written to a '
                              'parameters file')
    return out


def write_params_file(path: Path, values: Mapping[str, Any],
                      node: str = PLANNER_NODE) -> Path:
    """Write ``render_params_file(values, node)`` to ``path`` (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_params_file(values, node))
    return path


__all__ = ['ParamSpec', 'TYPES', 'PLANNER_NODE', 'check_settings', 'flatten_params',
           'node_settings', 'parse_assignment', 'parse_assignments', 'render_params_file',
           'setting', 'settings_specs', 'type_of', 'unknown_options', 'write_params_file',
           'yaml_value']
