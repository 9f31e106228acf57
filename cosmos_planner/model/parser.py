"""Turn a model's raw answer into a validated plan with points in native image pixels.

A pure module (no I/O, no model): whatever text arrives, the result is a ``ParsedAnswer`` or
an ``errors.ParseError`` carrying the raw text, never another exception. What it handles and
why:

- Reasoning: Cosmos Reason 2 writes ``<think>...</think>`` before the answer, and the
  reasoning quotes bracketed numbers that look like waypoints but are not the final ones, so
  only what follows the *last* ``</think>`` is parsed. An opened but unclosed ``<think>``
  means the answer was cut off (max_tokens) and is refused.
- Fences: answers often sit inside ```` ```json ```` fences; prose around the JSON is skipped.
- Forms: NVIDIA's trajectory answer is a bare list of ``{"point_2d": [x, y], "label": ...}``;
  the ``plan`` preset answers an object ``{"next_action", "steps", "trajectory"}``. Both are
  accepted, as are comma-separated point objects without the enclosing list (the prompt shows
  a single object as the example) and bare ``[x, y]`` pairs.
- Hostile or broken text: NaN/Infinity (which ``json`` accepts by default), numbers that
  overflow to infinity, absurdly long integers, deep nesting, oversized answers, non-UTF-8
  bytes and wrong types are refused with a message that says which.
- Pixels: coordinates are 0-1000 per axis whatever size the model saw, so pixel =
  value / 1000 * native size (continuous coordinates, 0 at the left/top edge of the image).
"""

import json
import math
import re
from typing import Any, Iterator, List, Optional, Tuple, Union

import pydantic

from cosmos_planner.errors import ConfigError, ParseError
from cosmos_planner.model.plan_schema import COORD_MAX, MAX_POINTS, ModelAnswer
from cosmos_planner.model.results import ParsedAnswer

#: Longest answer parsed (characters). Reasoning at max_tokens 4096 is about 20 k characters;
#: anything far beyond is runaway generation or an attack, not a plan.
MAX_TEXT_CHARS = 256 * 1024
#: Deepest JSON nesting accepted; the plan object is 4 levels deep.
MAX_DEPTH = 16
#: Most places in the answer tried as the start of the JSON value.
MAX_CANDIDATES = 32
#: Longest integer literal accepted (digits); coordinates need 4.
MAX_INT_DIGITS = 32

THINK_OPEN = '<think>'
THINK_CLOSE = '</think>'
_FENCE = re.compile(r'```[ \t]*[A-Za-z0-9_+.-]*[ \t]*\r?\n?(.*?)```', re.DOTALL)
_OPEN_FENCE = re.compile(r'```[ \t]*[A-Za-z0-9_+.-]*[ \t]*\r?\n?')
_OPENER = re.compile(r'[\[{]')
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|["\[\]{}]', re.DOTALL)
_GRIPPER_WORDS = {'open': 'open', 'opened': 'open', 'close': 'close', 'closed': 'close'}


class _Reject(ValueError):
    """A JSON literal the decoder must not accept (raised from the decoder hooks)."""


def _reject_constant(name: str) -> Any:
    raise _Reject(f'{name} is not a finite number')


def _parse_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _Reject(f'number {literal[:40]} is not finite')
    return value


def _parse_int(literal: str) -> int:
    if len(literal.lstrip('-')) > MAX_INT_DIGITS:
        raise _Reject(f'integer with {len(literal)} digits')
    return int(literal)


_DECODER = json.JSONDecoder(
    parse_constant=_reject_constant, parse_float=_parse_float, parse_int=_parse_int)


def parse_answer(text: Union[str, bytes], image_size: Tuple[int, int],
                 reasoning: Optional[str] = None) -> ParsedAnswer:
    """Parse and validate one raw answer; pixels are in the ``image_size`` (w, h) image.

    ``reasoning`` is reasoning the backend already split off (vLLM's reasoning parser); it
    is kept when the text itself carries no ``<think>`` block. Raises ParseError (with
    ``.raw``) for any text that is not a valid plan, ConfigError for a bad ``image_size``.
    """
    width, height = _check_size(image_size)
    raw = _as_text(text)
    think, answer_text = split_reasoning(raw)
    if think is None and isinstance(reasoning, str) and reasoning.strip():
        think = reasoning.strip()
    answer = _first_valid_answer(answer_text, raw)
    points_model = tuple((float(p.point_2d[0]), float(p.point_2d[1]))
                         for p in answer.trajectory)
    points_px = tuple((x / COORD_MAX * width, y / COORD_MAX * height)
                      for x, y in points_model)
    next_action = answer.next_action.strip() if answer.next_action else None
    return ParsedAnswer(
        next_action=next_action or None,
        steps=tuple(s.strip() for s in answer.steps if s.strip()),
        points_model=points_model,
        points_px=points_px,
        gripper=tuple(p.gripper for p in answer.trajectory),
        labels=tuple(p.label for p in answer.trajectory),
        reasoning=think,
        raw=raw)


def split_reasoning(text: str) -> Tuple[Optional[str], str]:
    """Split ``<think>reasoning</think>answer`` into (reasoning or None, answer).

    The split is at the last ``</think>``: reasoning can mention the tag, the answer cannot
    contain reasoning. Chat templates that open ``<think>`` in the prompt produce text with
    only the closing tag, which is handled the same way. Raises ParseError when a
    ``<think>`` block is opened and never closed (the answer was truncated).
    """
    end = text.rfind(THINK_CLOSE)
    if end < 0:
        if THINK_OPEN in text:
            raise ParseError('the <think> reasoning block is never closed '
                             '(answer truncated? raise max_tokens)', raw=text)
        return None, text
    before = text[:end]
    start = before.find(THINK_OPEN)
    if start >= 0:
        before = before[start + len(THINK_OPEN):]
    return before.strip() or None, text[end + len(THINK_CLOSE):]


def _check_size(image_size: Any) -> Tuple[int, int]:
    try:
        width, height = image_size
        width_i, height_i = int(width), int(height)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f'image_size must be (width, height), got {image_size!r}') from exc
    if width_i != width or height_i != height or width_i <= 0 or height_i <= 0:
        raise ConfigError(f'image_size must be positive integers, got {image_size!r}')
    return width_i, height_i


def _as_text(text: Any) -> str:
    if isinstance(text, (bytes, bytearray, memoryview)):
        data = bytes(text)
        try:
            text = data.decode('utf-8')
        except UnicodeDecodeError as exc:
            raise ParseError(f'answer is not UTF-8 ({exc.reason} at byte {exc.start})',
                             raw=data[:MAX_TEXT_CHARS].decode('utf-8', 'replace')) from None
    if not isinstance(text, str):
        raise ParseError(f'answer must be text, got {type(text).__name__}',
                         raw=repr(text)[:1000])
    if len(text) > MAX_TEXT_CHARS:
        raise ParseError(f'answer has {len(text)} characters, more than {MAX_TEXT_CHARS}',
                         raw=text[:MAX_TEXT_CHARS])
    try:
        text.encode('utf-8')
    except UnicodeEncodeError:
        raise ParseError('answer contains unpaired surrogates (not valid Unicode)',
                         raw=text.encode('utf-8', 'replace').decode('utf-8')) from None
    return text


def _first_valid_answer(answer_text: str, raw: str) -> ModelAnswer:
    """Validate the JSON values found in the answer; the first valid one wins."""
    if not answer_text.strip():
        raise ParseError('empty answer' if answer_text is raw
                         else 'nothing follows the </think> reasoning', raw=raw)
    first_error: Optional[str] = None
    found_json = False
    for value in _json_values(answer_text, raw):
        found_json = True
        try:
            return _validate(value)
        except _Invalid as exc:
            first_error = first_error or str(exc)
    if found_json:
        raise ParseError(f'answer is not a valid plan: {first_error}', raw=raw)
    raise ParseError(f'no JSON list or object in the answer: {_excerpt(answer_text)}', raw=raw)


class _Invalid(ValueError):
    """A decoded JSON value that is not a plan (message says why)."""


def _json_values(answer_text: str, raw: str) -> Iterator[Any]:
    """Yield decodable JSON lists/objects, fenced blocks first, then bare ones in order.

    After a value decodes, scanning resumes after it; after a bracket that does not decode,
    scanning resumes after its balanced span. So a fragment inside a broken or truncated
    value is never taken for the answer (a cut-off list must not become a shorter plan).
    """
    regions: List[str] = [m.group(1) for m in _FENCE.finditer(answer_text)]
    if not regions:
        opened = _OPEN_FENCE.search(answer_text)
        regions = [answer_text[opened.end():] if opened else answer_text]
    first_error = ''
    yielded = False
    for region in regions:
        pos = 0
        for _ in range(MAX_CANDIDATES):
            match = _OPENER.search(region, pos)
            if match is None:
                break
            start = match.start()
            span_end, depth, closed = _scan_span(region, start)
            if depth > MAX_DEPTH:
                raise ParseError(f'answer JSON is nested deeper than {MAX_DEPTH} levels',
                                 raw=raw)
            try:
                value, end = _DECODER.raw_decode(region, start)
            except _Reject as exc:
                raise ParseError(f'answer has an invalid number: {exc}', raw=raw) from None
            except RecursionError:
                raise ParseError('answer JSON is nested too deeply', raw=raw) from None
            except ValueError as exc:  # JSONDecodeError, or int() refusing huge literals
                if not closed:
                    first_error = first_error or 'the JSON is never closed (answer truncated?)'
                    break
                first_error = first_error or _decode_message(exc)
                pos = span_end
                continue
            if isinstance(value, dict) and 'point_2d' in value:
                try:
                    value, end = _gather_points(value, region, end)
                except _Invalid as exc:
                    first_error = first_error or str(exc)
                    break
            yielded = True
            yield value
            pos = end
    if not yielded and first_error:
        raise ParseError(f'answer is not valid JSON: {first_error}', raw=raw)


def _scan_span(text: str, start: int) -> Tuple[int, int, bool]:
    """(end, max depth, closed) of the bracketed span opening at ``start``; strings skipped."""
    depth = deepest = 0
    for token in _TOKENS.finditer(text, start):
        char = token.group()
        if char in '[{':
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                return len(text), deepest, False
        elif char in ']}':
            depth -= 1
            if depth == 0:
                return token.end(), deepest, True
        elif char == '"':  # a string that never ends
            return len(text), deepest, False
    return len(text), deepest, False


def _gather_points(first: dict, region: str, end: int) -> Tuple[List[Any], int]:
    """Collect ``{...}, {...}`` point objects written without the enclosing list."""
    points: List[Any] = [first]
    pos = end
    while len(points) <= MAX_POINTS:
        nxt = pos
        while nxt < len(region) and region[nxt] in ' \t\r\n,':
            nxt += 1
        if nxt >= len(region) or region[nxt] != '{':
            break
        if _scan_span(region, nxt)[1] > MAX_DEPTH:
            break
        try:
            value, nxt = _DECODER.raw_decode(region, nxt)
        except (ValueError, RecursionError):
            # A cut-off next point: refuse the whole answer rather than drop the point.
            raise _Invalid(f'point {len(points)} is not valid JSON (answer truncated?)') \
                from None
        if not isinstance(value, dict):
            break
        points.append(value)
        pos = nxt
    return points, pos


def _validate(value: Any) -> ModelAnswer:
    if isinstance(value, list):
        data: Any = {'trajectory': value}
    elif isinstance(value, dict) and 'trajectory' in value:
        data = dict(value)
    elif isinstance(value, dict):
        raise _Invalid('object has no "trajectory" (keys: '
                       + ', '.join(sorted(str(k) for k in value)[:8]) + ')')
    else:
        raise _Invalid(f'expected a list of points or an object, got {type(value).__name__}')
    if isinstance(data['trajectory'], list):
        data['trajectory'] = [_normalise_point(p) for p in data['trajectory']]
    try:
        return ModelAnswer.model_validate(data)
    except pydantic.ValidationError as exc:
        raise _Invalid(_summarise(exc)) from None


def _normalise_point(point: Any) -> Any:
    """Accept ``[x, y]`` pairs and 'closed'/'opened'; everything else is left to the schema."""
    if isinstance(point, list) and len(point) == 2:
        return {'point_2d': point}
    if isinstance(point, dict) and isinstance(point.get('gripper'), str):
        word = point['gripper'].strip().lower()
        point = dict(point, gripper=_GRIPPER_WORDS.get(word, point['gripper']))
    return point


def _summarise(exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:3]:
        loc = '.'.join(str(p) for p in err.get('loc', ())) or 'answer'
        parts.append(f'{loc}: {err.get("msg", "invalid")}')
    more = exc.error_count() - len(parts)
    return '; '.join(parts) + (f' (+{more} more)' if more > 0 else '')


def _decode_message(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f'{exc.msg} at line {exc.lineno} column {exc.colno}'
    return str(exc)[:200]


def _excerpt(text: str, limit: int = 80) -> str:
    flat = ' '.join(text.split())
    return repr(flat if len(flat) <= limit else flat[:limit] + '...')
