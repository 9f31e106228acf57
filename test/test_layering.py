"""The package's layering holds: import-linter's contracts in ``.importlinter``, as a test.

Outer packages (cli, sim, bag, ros) import inner ones (pipeline, backends, model, geometry,
frames), never the reverse, and no package has an import cycle among its modules. Every
import counts, including those inside functions.
"""

from pathlib import Path
import shutil
import sys

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlinter.cli import lint_imports

    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename=str(ROOT / '.importlinter'), no_cache=True) == 0


def test_a_reversed_import_breaks_the_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capfd: pytest.CaptureFixture) -> None:
    # The check itself must be able to fail: an inner module naming an outer one is caught.
    from importlinter.cli import lint_imports

    copy = tmp_path / 'cosmos_planner'
    shutil.copytree(ROOT / 'cosmos_planner', copy,
                    ignore=shutil.ignore_patterns('__pycache__'))
    with open(copy / 'frames' / 'types.py', 'a') as f:
        f.write('\n\ndef _bad():\n    from cosmos_planner.ros import planner_node  # noqa\n')
    shutil.copy(ROOT / '.importlinter', tmp_path / '.importlinter')
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m.startswith('cosmos_planner')]:
        monkeypatch.delitem(sys.modules, name)
    assert lint_imports(config_filename=str(tmp_path / '.importlinter'), no_cache=True) == 1
    out = capfd.readouterr().out
    assert 'Outer packages import inner ones, never the reverse BROKEN' in out
    assert 'cosmos_planner.frames.types -> cosmos_planner.ros.planner_node' in out


def test_the_readme_layout_names_every_module_in_its_folder() -> None:
    # The README's layout table is how a newcomer finds a module: each one is listed in the
    # row of the folder it lives in.
    readme = (ROOT / 'README.md').read_text()
    layout = readme[readme.index('## Layout'):readme.index('## Limits, stated honestly')]
    rows = {}
    for line in layout.splitlines():
        cells = line.split('|')
        if len(cells) > 2 and cells[1].strip().startswith('`cosmos_planner/'):
            rows[cells[1].strip().strip('`')] = cells[2]
    missing = []
    for path in sorted((ROOT / 'cosmos_planner').rglob('*.py')):
        if path.name == '__init__.py':
            continue
        rel = path.relative_to(ROOT)
        folder = f'{rel.parts[0]}/{rel.parts[1]}/' if len(rel.parts) > 2 else 'cosmos_planner/'
        if f'`{path.stem}`' not in rows.get(folder, ''):
            missing.append(str(rel))
    assert not missing, f'modules missing from the README layout table: {missing}'
