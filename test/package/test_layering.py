"""The package's layering holds: import-linter's contracts in ``.importlinter``, as a test.

Outer packages (cli, sim, bag, ros) import inner ones (pipeline, backends, model, geometry,
frames), never the reverse, and no package has an import cycle among its modules. Every
import counts, including those inside functions.
"""

import os
from pathlib import Path
import shutil
import subprocess
import sys

ROOT = Path(__file__).resolve().parents[2]


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    # In a subprocess: import-linter configures logging (dictConfig disables every existing
    # logger), which would silence the log captures of later tests in this process.
    code = ('import sys; from importlinter.cli import lint_imports; '
            'sys.exit(lint_imports(config_filename=".importlinter", no_cache=True))')
    env = {**os.environ, 'PYTHONPATH': str(cwd)}
    return subprocess.run([sys.executable, '-c', code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_import_contracts_are_kept() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'Contracts: 2 kept, 0 broken.' in result.stdout


def test_a_reversed_import_breaks_the_contract(tmp_path: Path) -> None:
    # The check itself must be able to fail: an inner module naming an outer one is caught.
    copy = tmp_path / 'cosmos_planner'
    shutil.copytree(ROOT / 'cosmos_planner', copy,
                    ignore=shutil.ignore_patterns('__pycache__'))
    with open(copy / 'frames' / 'types.py', 'a') as f:
        f.write('\n\ndef _bad():\n    from cosmos_planner.ros import planner_node  # noqa\n')
    shutil.copy(ROOT / '.importlinter', tmp_path / '.importlinter')
    result = _lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'Outer packages import inner ones, never the reverse BROKEN' in result.stdout
    assert 'cosmos_planner.frames.types -> cosmos_planner.ros.planner_node' in result.stdout


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
