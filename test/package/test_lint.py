"""ament_flake8 and ament_pep257 over the package, the tests, the benchmarks and launch.

The same linters ``colcon test`` runs in a ROS workspace, called through their Python entry
points so they also run on pip-only machines.

One deliberate choice: pep257 runs with the "ament" convention plus ``D213`` ignored. The
ament convention ignores D212 and so demands the summary on the *second* line of a
multi-line docstring (rclpy's layout); this project writes it on the first line, as PEP
257's own examples do and as docs/style.md asks. Every other ament check (imperative mood,
periods, blank lines, ...) applies.

Runtime: about 10-20 s.
"""

from pathlib import Path
from typing import List

import pytest

ROOT = Path(__file__).resolve().parents[2]
PATHS = [ROOT / name for name in ('cosmos_planner', 'test', 'bench', 'launch')]


def _paths() -> List[str]:
    return [str(p) for p in PATHS if p.exists()]


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8() -> None:
    from ament_flake8.main import main_with_errors
    rc, errors = main_with_errors(argv=_paths())
    assert rc == 0, f'Found {len(errors)} code style errors / warnings:\n' + '\n'.join(errors)


@pytest.mark.pep257
@pytest.mark.linter
def test_pep257() -> None:
    from ament_pep257.main import main
    rc = main(argv=['--add-ignore', 'D213', '--'] + _paths())
    assert rc == 0, 'Found code style errors / warnings (see the output above)'
