"""``cosmos-planner plan``: run the planning core on image or video files.

The shortest path from files to a validated plan, as a user would try the package first:
files -> clip (``media``) -> backend (``backends.registry``) -> ``Planner`` -> ``PlanV1`` JSON
on stdout (pixels in the native image; ``position`` is None because nothing is grounded
without a camera model and depth) and, optionally, an annotated image. Anything that goes
wrong ends with a one-line reason on stderr and a non-zero exit code.

The helpers here (``open_backend``, ``plan_to_v1``, ``TINY_NOTICE``) are shared with
``cosmos-planner demo`` so both report backends, tiny checkpoints and plans the same way.
"""

import argparse
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

from cosmos_planner.model.protocol import Backend
from cosmos_planner.errors import ConfigError
from cosmos_planner.frames.types import Clip
from cosmos_planner.model.plan_schema import PlanV1, plan_from_answer
from cosmos_planner.model.results import PlanResult
from cosmos_planner.settings import ParamSpec

#: Printed to stderr whenever the tiny random checkpoint produced (or may produce) a plan.
TINY_NOTICE = (
    'NOTE: the model is the tiny RANDOM test checkpoint ({path}). It runs the real Qwen3-VL '
    'loading and generation code, but it was never trained: its plans are MEANINGLESS. For '
    'real plans pass --model with a Cosmos-Reason2 checkpoint (e.g. nvidia/Cosmos-Reason2-2B '
    'downloaded to a local folder).')
DEFAULT_VALID_FOR_S = 10.0


@dataclass
class OpenedBackend:
    """A backend and what to tell the user about it."""

    backend: Backend
    kind: str
    model: str
    is_tiny: bool


def add_backend_arguments(parser: argparse.ArgumentParser, default_preset: str) -> None:
    """Options shared by ``plan`` and ``demo``: backend, model, prompt and recording."""
    from cosmos_planner.backends.registry import backend_kinds
    group = parser.add_argument_group('model')
    group.add_argument('--backend', default='local', choices=backend_kinds(),
                       help='local: transformers in this process (default); replay: answers '
                            'from a --recording; openai: an OpenAI-compatible server')
    group.add_argument('--model', default=None,
                       help='local: checkpoint folder (default: Cosmos-Reason2 if found '
                            'offline, else the tiny random checkpoint); openai: served model')
    group.add_argument('--device', default=None, help="local: 'auto', 'cpu', 'cuda', ...")
    add_openai_arguments(group)
    group.add_argument('--recording', type=Path, default=None,
                       help='replay: JSONL file of recorded answers (made with --record)')
    group.add_argument('--record', type=Path, default=None,
                       help='append every raw model answer to this JSONL file')
    group.add_argument('--preset', default=default_preset,
                       help=f'prompt preset: plan or trajectory (default {default_preset})')
    group.add_argument('--reasoning', action='store_true',
                       help='let the model reason in <think> before answering (slower)')
    group.add_argument('--max-attempts', type=int, default=2,
                       help='answers asked for before giving up on unparsable ones')


#: Python types of the generated flags, by parameter type.
_FLAG_TYPES = {'double': float, 'integer': int, 'string': str}


def _openai_flag_specs() -> Tuple[ParamSpec, ...]:
    """Specs (constructor defaults) of the settings the node also exposes as parameters."""
    from cosmos_planner.backends.openai.config import OpenAICompatConfig
    from cosmos_planner.settings import node_settings, settings_specs

    node = {spec.name for spec in node_settings(OpenAICompatConfig, '')}
    return tuple(spec for spec in settings_specs(OpenAICompatConfig) if spec.name in node)


def add_openai_arguments(group: Any) -> None:
    """Add ``--NAME`` flags for the OpenAI settings, generated from ``OpenAICompatConfig``.

    The same fields make the node's ``backend.NAME`` parameters, so a new setting reaches
    the command line, the node and the backend from one declaration. A flag left out keeps
    the backend's own default (None is dropped by ``make_backend``).
    """
    for spec in _openai_flag_specs():
        group.add_argument(
            '--' + spec.name.replace('_', '-'), default=None, type=_FLAG_TYPES[spec.type],
            choices=spec.choices or None,
            help=f'openai: {spec.description} (default {spec.default})'.replace('%', '%%'))


def openai_options(args: argparse.Namespace) -> Dict[str, Any]:
    """Values of the generated OpenAI flags, by setting name (None: not given)."""
    return {spec.name: getattr(args, spec.name) for spec in _openai_flag_specs()}


def open_backend(args: argparse.Namespace) -> OpenedBackend:
    """Build the backend the options ask for; says whether it is the tiny checkpoint."""
    from cosmos_planner.backends.registry import make_backend
    kind = args.backend
    options: Dict[str, Any] = {'record_path': args.record}
    model_label = args.model or ''
    is_tiny = False
    if kind == 'local':
        if args.model:
            from cosmos_planner.backends.local.tiny_checkpoint import is_tiny_checkpoint
            model_path = str(args.model)
            is_tiny = is_tiny_checkpoint(model_path)
        else:
            from cosmos_planner.backends.local.resolve import resolve_default_model
            model_path, is_tiny = resolve_default_model()
        if is_tiny:
            print(TINY_NOTICE.format(path=model_path), file=sys.stderr)
        options.update(model=model_path, device=args.device)
        model_label = model_path
    elif kind == 'replay':
        if args.recording is None:
            raise ConfigError('--backend replay needs --recording FILE (made with --record)')
        options.update(path=args.recording)
        model_label = f'replay:{args.recording}'
    elif kind == 'openai':
        if not args.base_url:
            raise ConfigError('--backend openai needs --base-url URL (e.g. '
                              'http://127.0.0.1:8000/v1)')
        options.update(openai_options(args), model=args.model)
        model_label = args.model or args.base_url
    backend = make_backend(kind, **options)
    inner = getattr(backend, 'inner', backend)  # under a RecordingBackend
    return OpenedBackend(backend=backend, kind=kind, model=model_label,
                         is_tiny=bool(getattr(inner, 'is_tiny', is_tiny)))


def close_backend(opened: OpenedBackend) -> None:
    """Close the backend if it holds resources (files, connections, model memory)."""
    closer = getattr(opened.backend, 'close', None)
    if callable(closer):
        closer()


def answered_by_tiny(opened: OpenedBackend, result: PlanResult) -> bool:
    """Say whether the tiny checkpoint made this answer (also for replayed answers)."""
    if opened.is_tiny:
        return True
    if result.completion is None:
        return False
    if result.completion.meta.get('tiny_random') is True:
        return True
    model = result.completion.model
    if not model:
        return False
    from cosmos_planner.backends.local.tiny_checkpoint import is_tiny_checkpoint
    try:
        return is_tiny_checkpoint(model)
    except (OSError, ValueError):
        return False


def plan_with_args(args: argparse.Namespace,
                   clip: Clip) -> Tuple[OpenedBackend, PlanResult, bool]:
    """Open the backend the arguments name, plan once on ``clip``, close it.

    Returns the opened backend, the result and whether the tiny checkpoint answered.
    """
    from cosmos_planner.pipeline.planner import Planner
    opened = open_backend(args)
    try:
        planner = Planner(opened.backend, args.preset, reasoning=args.reasoning,
                          max_attempts=args.max_attempts)
        result = planner.plan(clip, args.task)
    finally:
        close_backend(opened)
    return opened, result, answered_by_tiny(opened, result)


def plan_to_v1(result: PlanResult, clip: Clip, task: str, *, task_id: str, model: str,
               preset: str, valid_for_s: float = DEFAULT_VALID_FOR_S) -> PlanV1:
    """Build the published plan of an OK result; not grounded: every position is None."""
    if not result.ok or result.answer is None:
        raise ConfigError(f'no plan to publish: {result.status.value}')
    newest = clip.newest
    return plan_from_answer(
        result.answer, task=task, task_id=task_id, plan_id=uuid.uuid4().hex,
        stamp=newest.stamp_s, frame_id=newest.frame_id or clip.camera,
        image_frame_id=newest.frame_id, image_size=newest.native_size,
        valid_until=newest.stamp_s + valid_for_s,
        model=(result.completion.model if result.completion and result.completion.model
               else model),
        preset=preset, timings_ms=result.timings_ms)


def failure_line(result: PlanResult) -> str:
    """One line saying why there is no plan."""
    return (f'no plan: {result.status.value} after {result.attempts} attempt(s): '
            f'{result.error or "no detail"}')


def model_fps(preset_name: str, default: float = 4.0) -> float:
    """Return the preset's sampling rate (NVIDIA samples video at 4 fps, 2 for paths)."""
    from cosmos_planner.model.prompts import load_preset
    fps = getattr(load_preset(preset_name), 'fps', None)
    return float(fps) if isinstance(fps, (int, float)) and fps > 0 else default


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cosmos-planner plan``."""
    from cosmos_planner.frames.resize import DEFAULT_MAX_PIXELS
    parser.add_argument('inputs', nargs='+', metavar='IMAGE_OR_VIDEO', type=Path,
                        help='image files (a clip, oldest first) or one video file')
    parser.add_argument('--task', required=True, help='the instruction, e.g. "Put the cube '
                                                      'in the basket"')
    add_backend_arguments(parser, default_preset='plan')
    media = parser.add_argument_group('input')
    media.add_argument('--fps', type=float, default=1.0,
                       help='rate the image files were taken at (their stamps); default 1')
    media.add_argument('--model-fps', type=float, default=None,
                       help="video sampling rate (default: the preset's, else 4)")
    media.add_argument('--max-frames', type=int, default=8,
                       help='frames per clip at most (newest kept); default 8')
    media.add_argument('--max-pixels', type=int, default=DEFAULT_MAX_PIXELS,
                       help=f'pixel budget of one frame as sent; default {DEFAULT_MAX_PIXELS}')
    media.add_argument('--camera', default='camera', help='camera name and frame id')
    out = parser.add_argument_group('output')
    out.add_argument('--annotated', type=Path, default=None,
                     help='write the newest frame with the plan drawn on it (PNG/JPEG)')
    out.add_argument('--out', type=Path, default=None, help='also write the plan JSON here')
    out.add_argument('--task-id', default='cli', help='task id put in the plan')


def run(args: argparse.Namespace) -> int:
    """Plan on the files; print the plan JSON; 0 if a valid plan came out, else 1."""
    from cosmos_planner.pipeline.annotate import draw_answer, draw_plan
    from cosmos_planner.frames.media import load_clip, write_image
    fps = args.model_fps or model_fps(args.preset)
    clip, native = load_clip(args.inputs, camera=args.camera, frame_id=args.camera,
                             image_fps=args.fps, model_fps=fps, max_frames=args.max_frames,
                             max_pixels=args.max_pixels)
    opened, result, tiny = plan_with_args(args, clip)
    if tiny and not opened.is_tiny and result.completion is not None:  # a replayed answer
        print(TINY_NOTICE.format(path=result.completion.model), file=sys.stderr)
    notes = ['tiny random checkpoint: this plan is meaningless'] if tiny else []
    if not result.ok or result.answer is None:
        print(f'cosmos-planner plan: error: {failure_line(result)}', file=sys.stderr)
        if args.annotated:
            write_image(args.annotated, draw_plan(native, [], None, None,
                                                  notes + [failure_line(result)]))
        return 1
    plan = plan_to_v1(result, clip, args.task, task_id=args.task_id, model=opened.model,
                      preset=args.preset)
    text = plan.to_json(indent=2)
    print(text)
    if args.out:
        _write_text(args.out, text + '\n')
    if args.annotated:
        write_image(args.annotated, draw_answer(native, result.answer, notes))
        print(f'annotated image: {args.annotated}', file=sys.stderr)
    return 0


def _write_text(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding='utf-8')
    except OSError as exc:
        raise ConfigError(f'cannot write {path}: {exc}') from None


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``plan`` directly (``python -m cosmos_planner.cli.plan ...``)."""
    from cosmos_planner.cli.main import main as cli_main
    return cli_main(['plan', *(sys.argv[1:] if argv is None else argv)])


if __name__ == '__main__':
    sys.exit(main())
