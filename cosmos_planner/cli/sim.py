"""``cosmos-planner sim``: closed-loop tabletop episodes with the planner in the loop.

Examples::

    # the scripted expert (TEST ORACLE) validates the loop end to end
    cosmos-planner sim --episodes 10 --backend expert --out runs/expert
    # the embedded default model, one recorded episode (the README's main job)
    cosmos-planner sim --main-job --out runs/main

Writes ``OUT/episodes.jsonl`` (one line per episode: seed, success, sim time, plans,
planner latency, plan-to-motion latency, final object error), ``OUT/summary.json``
(success rate), ``OUT/planner_node.log``, ``OUT/planner_params.yaml`` and, with
``--record``, ``OUT/episode_NNN_seed_S.mp4`` plus an MCAP bag folder per episode.
"""

import argparse
import json
import os
from pathlib import Path
import sys
from typing import Any, Dict

from cosmos_planner.cli.plan import add_openai_arguments, openai_options
from cosmos_planner.errors import ConfigError
from cosmos_planner.settings import parse_assignments

BACKENDS = ('expert', 'local', 'openai', 'replay')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``cosmos-planner sim``."""
    parser.add_argument('--episodes', type=int, default=None,
                        help='number of episodes (default 1; seeds S, S+1, ...)')
    parser.add_argument('--task', default='put the red cube in the basket',
                        help='instruction sent on ~/task')
    parser.add_argument('--backend', choices=BACKENDS, default=None,
                        help='planner backend: expert (scripted TEST ORACLE from sim ground '
                        'truth), local (embedded model), openai (server), replay')
    parser.add_argument('--model', default=None,
                        help='local: checkpoint folder (default: Cosmos Reason 2 when found '
                        'offline, else the tiny test checkpoint); openai: served model name')
    add_openai_arguments(parser)
    parser.add_argument('--replay-path', default=None, help='replay: recorded answers JSONL')
    parser.add_argument('--preset', default='plan', help='prompt preset (plan, trajectory)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the first episode')
    parser.add_argument('--out', type=Path, default=None, help='output folder (runs/sim)')
    parser.add_argument('--record', action='store_true',
                        help='record each episode: MP4 (mp4v) and an MCAP bag')
    parser.add_argument('--video', action='store_true', help='record the MP4 only')
    parser.add_argument('--time-limit', type=float, default=None,
                        help='sim seconds per episode (default from config/sim.yaml)')
    parser.add_argument('--rtf', type=float, default=None,
                        help='real-time factor (sim s per wall s; 0 = as fast as possible)')
    parser.add_argument('--width', type=int, default=None, help='camera width (pixels)')
    parser.add_argument('--height', type=int, default=None, help='camera height (pixels)')
    parser.add_argument('--camera-rate', type=float, default=None, help='camera rate (Hz)')
    parser.add_argument('--replan', choices=('idle', 'off'), default='idle',
                        help='idle: replan when a plan is done (or failed) and the task is '
                        'not; off: plan once')
    parser.add_argument('--max-requests', type=int, default=4,
                        help='planning requests per episode (task + replans)')
    parser.add_argument('--grounding', choices=('plane', 'depth'), default='plane',
                        help='how the planner puts pixels in 3D: plane (the table) or depth '
                        '(the depth image)')
    parser.add_argument('--config', type=Path, default=None,
                        help='sim config YAML (default: config/sim.yaml)')
    parser.add_argument('--param', action='append', default=[], metavar='NAME:=VALUE',
                        help='extra planner_node parameter (YAML value; NAME=VALUE works '
                        'too), repeatable')
    parser.add_argument('--main-job', action='store_true',
                        help='one recorded episode with the embedded default model into '
                        'runs/main (MP4 + summary)')


def run(args: argparse.Namespace) -> int:
    """Run the episodes; exit 0 when they ran (whatever the success rate), 1 on errors."""
    from cosmos_planner.sim.config import load_sim_config
    from cosmos_planner.sim.episode import EpisodeRunner, RunnerConfig

    main_job = bool(args.main_job)
    backend = args.backend or ('local' if main_job else 'expert')
    episodes = args.episodes if args.episodes is not None else 1
    out = args.out or Path('runs/main' if main_job else 'runs/sim')
    options: Dict[str, Any] = {}
    label, is_tiny = backend, False
    if backend == 'local':
        model = args.model
        if not model:
            from cosmos_planner.backends.local.resolve import resolve_default_model
            resolved = resolve_default_model()
            model, is_tiny = resolved.path, resolved.is_tiny
        else:
            from cosmos_planner.backends.local.tiny_checkpoint import is_tiny_checkpoint
            is_tiny = bool(is_tiny_checkpoint(model))
        options['model'] = str(model)
        label = f'local {Path(str(model)).name}'
        if is_tiny:
            print('NOTE: no Cosmos Reason 2 weights found; using the tiny RANDOM test '
                  f'checkpoint ({model}). The loop runs for real, but its plans are '
                  'meaningless: do not expect success. Set COSMOS_REASON2_MODEL to real '
                  'weights for a meaningful run.', flush=True)
    elif backend == 'openai':
        options.update(openai_options(args), model=args.model)
        label = f'openai {args.model or ""}'.strip()
    elif backend == 'replay':
        if not args.replay_path:
            raise ConfigError('--backend replay needs --replay-path')
        options['replay_path'] = args.replay_path
    else:
        label = 'scripted expert (TEST ORACLE from sim ground truth)'
    time_limit = args.time_limit
    if main_job and time_limit is None:
        time_limit = 30.0
    sim_cfg = load_sim_config(args.config, width=args.width, height=args.height,
                              camera_rate_hz=args.camera_rate, real_time_factor=args.rtf,
                              time_limit_s=time_limit)
    cfg = RunnerConfig(
        task=args.task, backend=backend, backend_options=options, preset=args.preset,
        episodes=episodes, seed=args.seed, out_dir=out,
        record_video=bool(args.record or args.video or main_job), record_bag=bool(args.record),
        replan=args.replan, max_requests=args.max_requests,
        planner_params=parse_assignments(args.param, '--param'), model_label=label,
        is_tiny=is_tiny, grounding=args.grounding)
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    with EpisodeRunner(sim_cfg, cfg) as runner:
        summary = runner.run()
    print(json.dumps(summary, indent=2))
    rate = summary['success_rate']
    print(f'{summary["successes"]}/{summary["episodes"]} episodes succeeded '
          f'({rate:.0%}) with {label}; results in {out}/episodes.jsonl and '
          f'{out}/summary.json' + (f', videos in {out}/*.mp4' if cfg.record_video else ''),
          file=sys.stderr)
    if is_tiny:
        print('The tiny random checkpoint is not expected to succeed.', file=sys.stderr)
    return 0
