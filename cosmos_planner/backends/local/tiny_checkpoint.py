"""A tiny, randomly initialised Qwen3-VL checkpoint: the real loading path without weights.

No model weights can be downloaded on the machines this project is built and tested on, yet
the local backend, the prompt presets and the OpenAI-compatible backend (against vLLM's CPU
build) must be exercised through the real code: ``AutoProcessor``, ``AutoModelForImageTextToText``,
the real Qwen3-VL chat template, real image and video processors, real generation. This module
builds such a checkpoint in about a second:

- a byte-level BPE tokenizer trained locally (``tokenizers``) on a small fixed corpus, with
  Qwen's pre-tokenizer and every special token Qwen3-VL needs (``<|im_start|>``,
  ``<|vision_start|>``, ``<|video_pad|>``, ``<think>``, ...);
- the real Qwen3-VL Instruct chat template (``config/prompts/qwen3_vl_chat_template.jinja``,
  byte-identical to the template shipped with Qwen3-VL-8B-Instruct);
- a ``Qwen3VLProcessor`` with the real image and video processor settings;
- a 2-layer model whose head sizes are 32 for text and vision and whose vocabulary is padded
  to a multiple of 64, so vLLM's CPU attention can serve it too.

Its answers are random: the checkpoint is marked with ``TINY_RANDOM_CHECKPOINT.txt`` and the
config field ``cosmos_planner_tiny_random``, and every output made with it must say that its
plans are meaningless (``is_tiny_checkpoint``). Builds are deterministic for a given seed.
"""

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Union

from cosmos_planner.errors import ConfigError
from cosmos_planner.resources import config_path

#: File whose presence marks a tiny random checkpoint (read by humans and by code).
MARKER_FILE = 'TINY_RANDOM_CHECKPOINT.txt'
#: ``config.json`` field that marks a tiny random checkpoint.
CONFIG_FLAG = 'cosmos_planner_tiny_random'
#: Bump when the recipe changes, so cached builds of an older recipe are not reused.
RECIPE_VERSION = 1
DEFAULT_SEED = 0
CHAT_TEMPLATE_FILE = ('prompts', 'qwen3_vl_chat_template.jinja')

MARKER_TEXT = (
    'TINY RANDOM CHECKPOINT - ITS OUTPUTS ARE MEANINGLESS.\n\n'
    'This folder holds a randomly initialised Qwen3-VL model (about 0.3 M parameters) with a\n'
    'locally trained toy tokenizer, built by cosmos_planner.backends.local.tiny_checkpoint\n'
    'for tests, benchmarks of the code path, and demos on machines without real weights.\n'
    'It has the real\n'
    'Qwen3-VL architecture, chat template and processors, but it was never trained: every plan\n'
    'made with it is random. Use nvidia/Cosmos-Reason2-2B or -8B for real plans.\n'
)

# Qwen's pre-tokenizer split (the same expression Qwen2/Qwen3 tokenizers use).
_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")
# Added tokens in Qwen3-VL's order; the first 14 are special (dropped when decoding).
_SPECIAL_TOKENS = (
    '<|endoftext|>', '<|im_start|>', '<|im_end|>', '<|object_ref_start|>', '<|object_ref_end|>',
    '<|box_start|>', '<|box_end|>', '<|quad_start|>', '<|quad_end|>', '<|vision_start|>',
    '<|vision_end|>', '<|vision_pad|>', '<|image_pad|>', '<|video_pad|>')
_PLAIN_ADDED_TOKENS = (
    '<tool_call>', '</tool_call>', '<|fim_prefix|>', '<|fim_middle|>', '<|fim_suffix|>',
    '<|fim_pad|>', '<|repo_name|>', '<|file_sep|>', '<tool_response>', '</tool_response>',
    '<think>', '</think>')
_BPE_VOCAB = 448
_VOCAB_MULTIPLE = 64

_TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
             num_key_value_heads=1, head_dim=32, max_position_embeddings=32768,
             rms_norm_eps=1e-6, hidden_act='silu')
_ROPE = {'rope_type': 'default', 'rope_theta': 5000000.0, 'mrope_section': [6, 5, 5],
         'mrope_interleaved': True}
_VISION = dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=2, patch_size=16,
               spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=2304,
               deepstack_visual_indexes=[1], hidden_act='gelu_pytorch_tanh')
# The real Qwen3-VL / Cosmos-Reason2 processor settings.
_IMAGE_PROCESSOR = dict(patch_size=16, temporal_patch_size=2, merge_size=2,
                        image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
                        size={'shortest_edge': 65536, 'longest_edge': 16777216})
_VIDEO_PROCESSOR = dict(patch_size=16, temporal_patch_size=2, merge_size=2,
                        image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
                        size={'shortest_edge': 4096, 'longest_edge': 25165824}, fps=2,
                        min_frames=4, max_frames=768, do_sample_frames=True)


def _corpus() -> List[str]:
    """Return the training text of the toy tokenizer: prompts, JSON, numbers, words."""
    tasks = ['pick up the red cube', 'move the tape into the basket', 'open the drawer',
             'place the cup on the plate', 'push the block to the left', 'stack the bowls']
    lines = []
    for task in tasks:
        lines.append(
            f'You are given the task "{task}". Specify the 2D trajectory your end effector '
            'should follow in pixel space. Return the trajectory coordinates in JSON format '
            'like this: {"point_2d": [x, y], "label": "gripper trajectory"}.')
        lines.append(f'{{"next_action": "{task}", "steps": ["reach", "grasp", "lift", '
                     '"move", "release"], "trajectory": []}')
    lines.append('Answer the question using the following format:\n\n<think>\nYour reasoning.\n'
                 '</think>\n\nWrite your final answer immediately after the </think> tag.')
    lines.append('You are a helpful assistant. What can be the next immediate action?')
    for i in range(0, 1001, 7):
        gripper = ', "gripper": "open"' if i % 3 else ', "gripper": "close"'
        lines.append(f'{{"point_2d": [{i}, {1000 - i}], "label": "gripper trajectory"{gripper}}}')
    lines.append('The gripper moves above the object, lowers, grasps it, lifts it and carries '
                 'it to the target, then opens and retreats. Camera video image frame seconds.')
    return lines


def _train_tokenizer():
    """Train the toy byte-level BPE and wrap it as a Qwen2Tokenizer with Qwen3-VL's tokens."""
    from tokenizers import AddedToken, decoders, normalizers, pre_tokenizers, Regex, \
        Tokenizer, trainers
    from tokenizers.models import BPE
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_PRETOKENIZE_REGEX), behavior='isolated', invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=_BPE_VOCAB, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=[])
    bpe.train_from_iterator(_corpus(), trainer)
    model = json.loads(bpe.to_str())['model']
    vocab: Dict[str, int] = dict(model['vocab'])
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(' ')) for m in model['merges']]
    base = len(vocab)
    for offset, token in enumerate(_SPECIAL_TOKENS + _PLAIN_ADDED_TOKENS):
        vocab[token] = base + offset
    # transformers annotates merges as str/list[str] and unk_token as str; it takes both.
    tokenizer = Qwen2Tokenizer(
        vocab=vocab, merges=merges, unk_token=None, bos_token=None,  # type: ignore[arg-type]
        eos_token='<|im_end|>', pad_token='<|endoftext|>', model_max_length=262144)
    tokenizer.add_tokens([AddedToken(t, special=True, normalized=False)
                          for t in _SPECIAL_TOKENS], special_tokens=True)
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False)
                          for t in _PLAIN_ADDED_TOKENS])
    return tokenizer


def _padded_vocab(n: int) -> int:
    return -(-n // _VOCAB_MULTIPLE) * _VOCAB_MULTIPLE


def _write_into(folder: Path, seed: int) -> None:
    """Write the whole checkpoint into an existing empty folder."""
    import torch
    from transformers import GenerationConfig, Qwen2VLImageProcessor, Qwen3VLConfig, \
        Qwen3VLForConditionalGeneration, Qwen3VLProcessor, Qwen3VLVideoProcessor

    tokenizer = _train_tokenizer()
    ids = tokenizer.convert_tokens_to_ids
    chat_template = config_path(*CHAT_TEMPLATE_FILE).read_text(encoding='utf-8')
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(**_IMAGE_PROCESSOR), tokenizer=tokenizer,
        video_processor=Qwen3VLVideoProcessor(**_VIDEO_PROCESSOR), chat_template=chat_template)
    processor.save_pretrained(str(folder))

    eot, im_end = ids('<|endoftext|>'), ids('<|im_end|>')
    text = dict(_TEXT, vocab_size=_padded_vocab(len(tokenizer)), rope_parameters=dict(_ROPE),
                bos_token_id=eot, eos_token_id=im_end, pad_token_id=eot,
                tie_word_embeddings=True)
    config = Qwen3VLConfig(
        text_config=text, vision_config=dict(_VISION, out_hidden_size=_TEXT['hidden_size']),
        image_token_id=ids('<|image_pad|>'), video_token_id=ids('<|video_pad|>'),
        vision_start_token_id=ids('<|vision_start|>'), vision_end_token_id=ids('<|vision_end|>'),
        tie_word_embeddings=True)
    setattr(config, CONFIG_FLAG, True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen3VLForConditionalGeneration(config)
        model = model.to(torch.bfloat16).eval()  # type: ignore[arg-type]  # stub: device only
    model.generation_config = GenerationConfig(
        bos_token_id=eot, pad_token_id=eot, eos_token_id=[im_end, eot], do_sample=True,
        temperature=0.7, top_p=0.8, top_k=20, repetition_penalty=1.0)
    model.save_pretrained(str(folder), safe_serialization=True)
    _add_legacy_rope_keys(folder / 'config.json')
    (folder / MARKER_FILE).write_text(
        MARKER_TEXT + f'\nrecipe {RECIPE_VERSION}, seed {seed}\n', encoding='utf-8')


def _add_legacy_rope_keys(config_file: Path) -> None:
    """Also write ``rope_scaling``/``rope_theta``: readers built on transformers 4.x need them."""
    config = json.loads(config_file.read_text(encoding='utf-8'))
    text = config['text_config']
    text['rope_scaling'] = dict(text['rope_parameters'])
    text['rope_theta'] = text['rope_parameters']['rope_theta']
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + '\n', encoding='utf-8')


def build_tiny_checkpoint(out_dir: Union[str, Path], seed: int = DEFAULT_SEED,
                          overwrite: bool = False) -> Path:
    """Build the tiny random checkpoint into ``out_dir`` and return its path.

    The files are written to a temporary sibling folder that is renamed into place at the
    end, so a reader never sees a half-written checkpoint. ``out_dir`` must not exist or be
    empty unless ``overwrite`` is set.
    """
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise ConfigError(f'{out} exists and is not an empty folder; choose another '
                              'folder or overwrite it on purpose (--force)')
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{out.name}.building-', dir=str(out.parent)))
    try:
        _write_into(tmp, seed)
        if out.exists():
            if out.is_dir():
                shutil.rmtree(out)
            else:
                out.unlink()
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def cache_root() -> Path:
    """Return the cache folder: ``COSMOS_PLANNER_CACHE`` or ``~/.cache/cosmos_planner``."""
    env = os.environ.get('COSMOS_PLANNER_CACHE')
    return Path(env).expanduser() if env else Path.home() / '.cache' / 'cosmos_planner'


def ensure_tiny_checkpoint(seed: int = DEFAULT_SEED, cache_dir: Optional[Path] = None) -> Path:
    """Return the cached tiny checkpoint, building it once if absent.

    Safe against concurrent callers (several test processes): each builds into its own
    temporary folder and the first rename wins; the others discard their copy.
    """
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    target = root / f'tiny-qwen3-vl-r{RECIPE_VERSION}-seed{seed}'
    if is_tiny_checkpoint(target):
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{target.name}.building-', dir=str(root)))
    try:
        _write_into(tmp, seed)
        try:
            os.rename(tmp, target)
        except OSError:
            if not is_tiny_checkpoint(target):  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def is_tiny_checkpoint(path: Union[str, Path, None]) -> bool:
    """Tell whether ``path`` is a complete tiny random checkpoint (marker + config flag)."""
    if path is None:
        return False
    folder = Path(path)
    if not (folder / MARKER_FILE).is_file():
        return False
    try:
        config = json.loads((folder / 'config.json').read_text(encoding='utf-8'))
    except (OSError, ValueError):
        return False
    return bool(config.get(CONFIG_FLAG)) and (folder / 'model.safetensors').is_file()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``cosmos-planner make-tiny-checkpoint``."""
    parser.description = ('Build a tiny randomly initialised Qwen3-VL checkpoint (real '
                          'architecture, chat template and processors; meaningless answers).')
    parser.add_argument('dir', type=Path, help='folder to create (must not exist or be empty)')
    parser.add_argument('--seed', type=int, default=DEFAULT_SEED,
                        help='seed of the random weights (default %(default)s)')
    parser.add_argument('--force', action='store_true',
                        help='replace the folder if it already has files')


def run(args: argparse.Namespace) -> int:
    """Build the checkpoint; print where it is and that its plans are meaningless."""
    try:
        path = build_tiny_checkpoint(args.dir, seed=args.seed, overwrite=args.force)
    except ConfigError as exc:
        print(f'error: {exc}')
        return 2
    size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
    print(f'tiny random Qwen3-VL checkpoint written to {path} ({size / 1e6:.2f} MB)')
    print('WARNING: its weights are random; plans made with it are meaningless.')
    return 0
