"""What decoding is constrained to: JSON Schemas of the answer and the reasoning grammar.

The schemas describe exactly the formats Cosmos Reason 2 was trained on (``point_2d`` objects
in 0-1000 coordinates, label ``gripper trajectory``), and they are tight on purpose: an
untrained or confused model must not be able to run away inside constrained decoding. So every
string is bounded by a ``pattern`` (xgrammar 0.2.8 can emit raw control characters inside
``maxLength``-limited strings), coordinates are integers 0-1000, lists have small
``maxItems``. Two answer formats:

- ``points``: a bare list of point objects (NVIDIA's trajectory prompt verbatim): a valid plan
  with no next action;
- ``plan``: ``{"next_action": ..., "steps": [...], "trajectory": [point objects]}``.

Servers get the schema in the request; the local backend compiles it with xgrammar (compact
JSON, ``any_whitespace=False``), and in reasoning mode prefixes a bounded ``<think>`` block.
The parser validates the result against ``plan_schema.ModelAnswer`` in every case.
"""

from dataclasses import dataclass
from typing import Any, Dict, Tuple

from cosmos_planner.errors import ConfigError
from cosmos_planner.model.plan_schema import MAX_POINTS, MAX_STEPS, MAX_TEXT

TRAJECTORY_LABEL = 'gripper trajectory'
COORD_MAX = 1000
RESPONSE_FORMATS: Tuple[str, ...] = ('points', 'plan')
#: First character of a free-text field, then letters, digits, spaces and light punctuation.
_TEXT_FIRST = "A-Za-z0-9"
_TEXT_REST = "A-Za-z0-9 ,.;:'()/-"


@dataclass(frozen=True)
class DecodingLimits:
    """Bounds of the answer; the defaults suit real models and keep random ones short."""

    min_points: int = 2
    max_points: int = 16
    max_steps: int = 6
    max_text_chars: int = 100
    allow_gripper: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.min_points <= self.max_points <= MAX_POINTS:
            raise ConfigError(f'decoding points bounds must satisfy 1 <= min_points '
                              f'({self.min_points}) <= max_points ({self.max_points}) '
                              f'<= {MAX_POINTS}')
        if not 1 <= self.max_steps <= MAX_STEPS:
            raise ConfigError(f'decoding max_steps ({self.max_steps}) must be 1-{MAX_STEPS}')
        if not 1 <= self.max_text_chars <= MAX_TEXT:
            raise ConfigError(
                f'decoding max_text_chars ({self.max_text_chars}) must be 1-{MAX_TEXT}')


def text_schema(max_chars: int) -> Dict[str, Any]:
    """Describe a short one-line text: starts with a letter or digit, bounded by a pattern."""
    return {'type': 'string',
            'pattern': f'^[{_TEXT_FIRST}][{_TEXT_REST}]{{0,{max_chars - 1}}}$'}


def point_schema(allow_gripper: bool = True) -> Dict[str, Any]:
    """Describe one ``{"point_2d": [x, y], "label": "gripper trajectory"}`` waypoint."""
    coord = {'type': 'integer', 'minimum': 0, 'maximum': COORD_MAX}
    properties: Dict[str, Any] = {
        'point_2d': {'type': 'array', 'items': coord, 'minItems': 2, 'maxItems': 2},
        'label': {'type': 'string', 'enum': [TRAJECTORY_LABEL]},
    }
    if allow_gripper:
        properties['gripper'] = {'type': 'string', 'enum': ['open', 'close']}
    return {'type': 'object', 'properties': properties, 'required': ['point_2d', 'label'],
            'additionalProperties': False}


def points_schema(limits: DecodingLimits = DecodingLimits()) -> Dict[str, Any]:
    """Describe the bare list of waypoints NVIDIA's trajectory prompt asks for."""
    return {'type': 'array', 'items': point_schema(limits.allow_gripper),
            'minItems': limits.min_points, 'maxItems': limits.max_points}


def plan_object_schema(limits: DecodingLimits = DecodingLimits()) -> Dict[str, Any]:
    """Describe next action, steps and the same waypoint objects in one object."""
    text = text_schema(limits.max_text_chars)
    return {
        'type': 'object',
        'properties': {
            'next_action': text,
            'steps': {'type': 'array', 'items': text, 'minItems': 1,
                      'maxItems': limits.max_steps},
            'trajectory': points_schema(limits),
        },
        'required': ['next_action', 'steps', 'trajectory'],
        'additionalProperties': False,
    }


def response_schema(answer_format: str,
                    limits: DecodingLimits = DecodingLimits()) -> Dict[str, Any]:
    """Return the schema of ``answer_format`` (``points`` or ``plan``); ConfigError lists both."""
    if answer_format == 'points':
        return points_schema(limits)
    if answer_format == 'plan':
        return plan_object_schema(limits)
    raise ConfigError(f'unknown answer format {answer_format!r}; choose one of '
                      + ', '.join(RESPONSE_FORMATS))


def think_ebnf(max_think_chars: int) -> str:
    """Write the EBNF of ``<think>``, text without ``<``, ``</think>``, up to 3 newlines.

    The length bound keeps an untrained model from thinking forever and bounds the latency
    of a real one; after it, only ``</think>`` can follow.
    """
    if max_think_chars < 1:
        raise ConfigError(f'max_think_chars must be positive, got {max_think_chars}')
    return (f'root ::= "<think>" [^<]{{0,{max_think_chars}}} "</think>" '
            '[ \\n]{0,3}')


def build_grammar(schema: Dict[str, Any], reasoning: bool, max_think_chars: int = 6000):
    """Build an ``xgrammar.Grammar`` for ``schema``; with ``reasoning`` a think block leads."""
    import json

    import xgrammar as xgr

    answer = xgr.Grammar.from_json_schema(json.dumps(schema), any_whitespace=False,
                                          strict_mode=True)
    if not reasoning:
        return answer
    return xgr.Grammar.concat(xgr.Grammar.from_ebnf(think_ebnf(max_think_chars)), answer)
