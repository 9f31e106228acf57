"""A pip (wheel) install finds its config, prompts and schemas in ``<prefix>/share``.

The editable install (the project venv) and the colcon install (``scripts/colcon_check.sh``)
are exercised elsewhere; this covers the third way users install: a plain wheel into a fresh
virtual environment. About 10 s.
"""

import json
import os
from pathlib import Path
import subprocess
import sys
import sysconfig
import venv

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_install_resolves_share_files_from_its_own_prefix(tmp_path: Path) -> None:
    wheels = tmp_path / 'wheels'
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
                    '--no-build-isolation', str(ROOT), '-w', str(wheels)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob('cosmos_planner-*.whl')
    env_dir = tmp_path / 'venv'
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / 'bin' / 'python'
    subprocess.run([sys.executable, '-m', 'pip', '--python', str(python), 'install', '-q',
                    '--no-deps', str(wheel)], check=True, capture_output=True, timeout=300)
    env = {k: v for k, v in os.environ.items()
           if k not in ('COSMOS_PLANNER_SHARE', 'AMENT_PREFIX_PATH', 'PYTHONPATH')}
    # Third-party dependencies come from the project venv; cosmos_planner from the wheel
    # (the editable install's path hook is a .pth file, which PYTHONPATH does not run).
    env['PYTHONPATH'] = sysconfig.get_paths()['purelib']
    probe = ('import json, cosmos_planner, cosmos_planner.resources as r\n'
             'from cosmos_planner.model.prompts import load_preset\n'
             'print(json.dumps({"module": cosmos_planner.__file__, "share": str(r.share_dir()),'
             ' "schema": str(r.config_path("plan_v1.schema.json")),'
             ' "preset": load_preset("trajectory").name}))\n')
    out = subprocess.run([str(python), '-c', probe], env=env, cwd=tmp_path, check=True,
                         capture_output=True, text=True, timeout=120)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(found['module']).is_relative_to(env_dir), found
    assert Path(found['share']) == env_dir / 'share' / 'cosmos_planner', found
    assert Path(found['schema']).is_file()
    assert found['preset'] == 'trajectory'
    assert (env_dir / 'share' / 'cosmos_planner' / 'launch' / 'planner.launch.py').is_file()
    assert (env_dir / 'share' / 'ament_index' / 'resource_index' / 'packages'
            / 'cosmos_planner').is_file()
