"""Parser cost per answer, against plain ``json.loads`` of the same JSON as the baseline.

Run: ``python bench/bench_parser.py``. Prints a markdown table: median time per call and
its ratio to the baseline measured in the same run. The parser does more than decode
(reasoning split, fence search, bracket scan, pydantic validation, pixel conversion), so
the interesting numbers are how much that costs on real answers and that hostile inputs
at the size bound stay bounded.
"""

import json
import statistics
import time
from typing import Callable, List, Tuple

from cosmos_planner.errors import ParseError
from cosmos_planner.model.parser import MAX_TEXT_CHARS, parse_answer

POINTS = [{'point_2d': [100 + 50 * i, 300 + 20 * i], 'label': 'gripper trajectory'}
          for i in range(8)]
BARE = json.dumps(POINTS)
FENCED = f'```json\n{json.dumps(POINTS, indent=2)}\n```'
PLAN = json.dumps({'next_action': 'Move the gripper above the red cube',
                   'steps': ['grasp the cube', 'carry it over the basket', 'release it'],
                   'trajectory': POINTS})
REASONING = ('<think>\n' + 'The cube is at [250, 600] and the basket at [700, 640]. ' * 40
             + '\n</think>\n\n' + FENCED)
HOSTILE_BRACKETS = '[x] ' * (MAX_TEXT_CHARS // 4)
HOSTILE_NESTING = '[' * (MAX_TEXT_CHARS // 2) + ']' * (MAX_TEXT_CHARS // 2)
SIZE = (1280, 720)


def _median_us(func: Callable[[], object], budget_s: float = 0.5) -> float:
    times: List[float] = []
    deadline = time.perf_counter() + budget_s
    while time.perf_counter() < deadline or len(times) < 5:
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def _parse_or_error(text: str) -> Callable[[], object]:
    def run() -> object:
        try:
            return parse_answer(text, SIZE)
        except ParseError as exc:
            return exc
    return run


def main() -> None:
    """Measure and print the table."""
    baseline = _median_us(lambda: json.loads(BARE))
    rows: List[Tuple[str, int, float]] = [('json.loads, bare list (baseline)', len(BARE),
                                           baseline)]
    cases = [('parse_answer, bare list', BARE), ('parse_answer, fenced list', FENCED),
             ('parse_answer, plan object', PLAN),
             ('parse_answer, 2 kB reasoning + fenced list', REASONING),
             ('parse_answer, 256 kB of "[x] " (refused)', HOSTILE_BRACKETS),
             ('parse_answer, 256 kB nesting (refused)', HOSTILE_NESTING)]
    for name, text in cases:
        rows.append((name, len(text), _median_us(_parse_or_error(text))))
    print('| case | chars | median us | x baseline |')
    print('|---|---:|---:|---:|')
    for name, chars, us in rows:
        print(f'| {name} | {chars} | {us:.1f} | {us / baseline:.1f} |')


if __name__ == '__main__':
    main()
