"""``cosmos-planner``: one command with lazily loaded subcommands.

Each subcommand is a ``'module:function'`` string; only the chosen one is imported, so
``cosmos-planner --help`` and light subcommands never import torch, rclpy or mujoco. A
subcommand module exposes ``add_arguments(parser)`` and the named function (normally
``run(args) -> int``, the exit code). Typed planner errors (and OS errors such as an
unwritable output folder) are reported as one clear line on stderr with exit code 1; usage
errors exit with 2 (argparse's convention); Ctrl-C with 130.
"""

import argparse
import importlib
import logging
import sys
from typing import Dict, List, Optional, Sequence, Tuple

from cosmos_planner import __version__
from cosmos_planner.errors import PlannerError

# ---------------------------------------------------------------------------------------
# SUBCOMMAND REGISTRY: extend here. name -> ('module:function', one-line help).
# The module must expose add_arguments(parser) and function(args) -> int, and must not
# import heavy dependencies at module level (import them inside the function).
# Owners: plan/demo/export-schemas (parser-planner), make-tiny-checkpoint (model),
# replay/play/diff (bag), sim (sim), vllm-* (remote).
# ---------------------------------------------------------------------------------------
SUBCOMMANDS: Dict[str, Tuple[str, str]] = {
    'plan': ('cosmos_planner.cli.plan:run',
             'plan from image or video files and print the validated plan JSON'),
    'demo': ('cosmos_planner.cli.demo:run',
             'plan on a synthetic tabletop scene with the embedded default model'),
    'export-schemas': ('cosmos_planner.cli.export_schemas:run',
                       'write the plan and model-answer JSON Schemas to config/'),
    'make-tiny-checkpoint': ('cosmos_planner.backends.local.tiny_checkpoint:run',
                             'build the tiny random Qwen3-VL test checkpoint'),
    'replay': ('cosmos_planner.bag.replay:run',
               'replay a rosbag2 bag through the planner offline (bag time): output bag, '
               'MP4, plans'),
    'play': ('cosmos_planner.bag.play:run',
             'publish a bag live with /clock (pure-Python stand-in for ros2 bag play)'),
    'diff': ('cosmos_planner.bag.diff:run',
             "compare two runs' plans frame by frame"),
    'sim': ('cosmos_planner.cli.sim:run',
            'closed-loop tabletop episodes (MuJoCo) with the planner node in the loop'),
    'vllm-serve': ('cosmos_planner.backends.openai.vllm_server:run',
                   'start/stop/status a local vLLM server (.venv-vllm) for the openai backend'),
}


def _top_parser() -> argparse.ArgumentParser:
    width = max(len(name) for name in SUBCOMMANDS)
    listing = '\n'.join(f'  {name:<{width}}  {help_text}'
                        for name, (_, help_text) in SUBCOMMANDS.items())
    parser = argparse.ArgumentParser(
        prog='cosmos-planner',
        description='Plan robot gripper trajectories with NVIDIA Cosmos Reason 2.',
        epilog=f'commands:\n{listing}\n\nRun "cosmos-planner COMMAND --help" for its options.',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--version', action='version', version=f'%(prog)s {__version__}')
    parser.add_argument('command', nargs='?', help='one of the commands below')
    return parser


def _load(name: str):
    spec, help_text = SUBCOMMANDS[name]
    module_name, _, func_name = spec.partition(':')
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PlannerError(f'command {name!r} is not available: {exc}') from exc
    func = getattr(module, func_name or 'run', None)
    add_arguments = getattr(module, 'add_arguments', None)
    if not callable(func) or not callable(add_arguments):
        raise PlannerError(f'command {name!r}: {module_name} lacks add_arguments() or '
                           f'{func_name or "run"}()')
    parser = argparse.ArgumentParser(prog=f'cosmos-planner {name}', description=help_text)
    add_arguments(parser)
    return parser, func


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``cosmos-planner`` console script; returns the exit code."""
    args: List[str] = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(name)s: %(message)s')
    top = _top_parser()
    if not args or args[0].startswith('-'):
        top.parse_args(args[:1])  # handles --help / --version and exits
        top.print_help(sys.stderr)
        return 2
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        print(f'cosmos-planner: unknown command {name!r}; valid: '
              + ', '.join(SUBCOMMANDS), file=sys.stderr)
        return 2
    try:
        parser, func = _load(name)
        return int(func(parser.parse_args(rest)) or 0)
    except (PlannerError, OSError) as exc:  # OSError: unwritable output folder, full disk
        print(f'cosmos-planner {name}: error: {exc}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f'cosmos-planner {name}: interrupted', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
