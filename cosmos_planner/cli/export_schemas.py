"""Export the plan and model-answer JSON Schemas to ``config/`` (``export-schemas``).

The committed files are what consumers of ``~/plan`` and model servers read without
importing this package, so they must match the pydantic models exactly: the files are
rendered deterministically (sorted keys, two-space indent, trailing newline), ``--check``
exits non-zero when they are out of date, and a test does the same check.
"""

import argparse
import json
from pathlib import Path
from typing import Callable, Dict, List

from cosmos_planner.model.plan_schema import answer_json_schema, plan_json_schema

#: File name in ``config/`` -> function returning the schema.
SCHEMA_FILES: Dict[str, Callable[[], dict]] = {
    'plan_v1.schema.json': plan_json_schema,
    'model_answer.schema.json': answer_json_schema,
}


def source_config_dir() -> Path:
    """``config/`` of the source tree this module was imported from."""
    return Path(__file__).resolve().parents[2] / 'config'


def render_schemas() -> Dict[str, str]:
    """File name -> exact file text, as committed."""
    return {name: json.dumps(build(), indent=2, sort_keys=True, ensure_ascii=True) + '\n'
            for name, build in SCHEMA_FILES.items()}


def stale_schemas(config_dir: Path) -> List[str]:
    """Names of schema files in ``config_dir`` that are missing or differ from the models."""
    stale = []
    for name, text in render_schemas().items():
        path = config_dir / name
        if not path.is_file() or path.read_text(encoding='utf-8') != text:
            stale.append(name)
    return stale


def export_schemas(config_dir: Path) -> List[Path]:
    """Write every schema file into ``config_dir``; returns the paths written."""
    config_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas().items():
        path = config_dir / name
        path.write_text(text, encoding='utf-8')
        written.append(path)
    return written


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cosmos-planner export-schemas``."""
    parser.add_argument('--out', type=Path, default=None,
                        help='directory to write into (default: the source tree config/)')
    parser.add_argument('--check', action='store_true',
                        help='write nothing; exit 1 if the files are missing or out of date')


def run(args: argparse.Namespace) -> int:
    """Write (or check) the schema files."""
    config_dir = args.out or source_config_dir()
    if args.check:
        stale = stale_schemas(config_dir)
        if stale:
            print(f'out of date in {config_dir}: {", ".join(stale)} '
                  '(run: cosmos-planner export-schemas)')
            return 1
        print(f'schemas in {config_dir} are up to date')
        return 0
    for path in export_schemas(config_dir):
        print(f'wrote {path}')
    return 0
