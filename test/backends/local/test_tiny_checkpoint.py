"""The tiny random Qwen3-VL checkpoint: small, marked, loadable, servable, deterministic.

Loadable by the Auto classes, servable by vLLM's CPU build (head sizes, padded vocab,
special tokens), cached atomically. About 3 s on top of the session's build (two extra
builds of ~0.1 s each).
"""

import argparse
import hashlib
import json
import os

import pytest

from cosmos_planner.errors import ConfigError
from cosmos_planner.resources import config_path
from cosmos_planner.backends.local.tiny_checkpoint import (add_arguments, build_tiny_checkpoint,
                                                           CONFIG_FLAG, ensure_tiny_checkpoint,
                                                           is_tiny_checkpoint, MARKER_FILE, run)

transformers = pytest.importorskip('transformers')

#: SHA-256 of Qwen3-VL-8B-Instruct's chat template (5292 bytes), as pinned by an independent
#: project that extracted it from the released GGUF; ours must be byte-identical.
QWEN3_VL_TEMPLATE_SHA256 = '3636d0f0bd6bef02654cdffdc447b79cb2cef8ab02cc75267345946291a489e4'
QWEN3_VL_TOKENS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<|vision_start|>',
                   '<|vision_end|>', '<|vision_pad|>', '<|image_pad|>', '<|video_pad|>',
                   '<think>', '</think>', '<tool_call>', '</tool_call>']


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_small_marked_and_complete(tiny_checkpoint):
    files = {p.name: p.stat().st_size for p in tiny_checkpoint.iterdir()}
    assert {'config.json', 'model.safetensors', 'tokenizer.json', 'chat_template.jinja',
            'processor_config.json', 'generation_config.json', MARKER_FILE} <= set(files)
    assert sum(files.values()) < 5 * 1024 ** 2
    assert 'MEANINGLESS' in (tiny_checkpoint / MARKER_FILE).read_text()
    assert json.loads((tiny_checkpoint / 'config.json').read_text())[CONFIG_FLAG] is True
    assert is_tiny_checkpoint(tiny_checkpoint) and is_tiny_checkpoint(str(tiny_checkpoint))


def test_uses_the_real_qwen3_vl_chat_template(tiny_checkpoint):
    template = tiny_checkpoint / 'chat_template.jinja'
    assert sha256(template) == QWEN3_VL_TEMPLATE_SHA256
    assert sha256(config_path('prompts', 'qwen3_vl_chat_template.jinja')) == sha256(template)


def test_servable_shape_for_vllm_cpu(tiny_checkpoint):
    config = json.loads((tiny_checkpoint / 'config.json').read_text())
    text, vision = config['text_config'], config['vision_config']
    assert text['head_dim'] >= 32
    assert vision['hidden_size'] // vision['num_heads'] >= 32
    assert text['vocab_size'] % 64 == 0
    assert sum(text['rope_parameters']['mrope_section']) == text['head_dim'] // 2
    assert text['rope_scaling'] == text['rope_parameters']  # for transformers-4.x readers
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tiny_checkpoint))
    assert len(tokenizer) <= text['vocab_size']
    ids = tokenizer.convert_tokens_to_ids(QWEN3_VL_TOKENS)
    assert len(set(ids)) == len(QWEN3_VL_TOKENS) and min(ids) >= 0
    for token in QWEN3_VL_TOKENS:  # each is one token, not split into bytes
        assert tokenizer(token)['input_ids'] == [tokenizer.convert_tokens_to_ids(token)]
    for key, token in [('image_token_id', '<|image_pad|>'), ('video_token_id', '<|video_pad|>'),
                       ('vision_start_token_id', '<|vision_start|>'),
                       ('vision_end_token_id', '<|vision_end|>')]:
        assert config[key] == tokenizer.convert_tokens_to_ids(token)
    assert tokenizer.eos_token == '<|im_end|>' and tokenizer.pad_token == '<|endoftext|>'
    generation = json.loads((tiny_checkpoint / 'generation_config.json').read_text())
    assert tokenizer.convert_tokens_to_ids('<|im_end|>') in generation['eos_token_id']
    # <think> must survive decoding (the backend splits the reasoning from it).
    assert '<think>' in tokenizer.decode(tokenizer('<think>x</think>')['input_ids'],
                                         skip_special_tokens=True)


def test_loads_with_the_auto_classes_and_generates(tiny_checkpoint):
    import torch
    torch.set_num_threads(1)
    processor = transformers.AutoProcessor.from_pretrained(str(tiny_checkpoint),
                                                           trust_remote_code=False)
    model = transformers.AutoModelForImageTextToText.from_pretrained(
        str(tiny_checkpoint), use_safetensors=True, trust_remote_code=False)
    assert type(processor).__name__ == 'Qwen3VLProcessor'
    assert type(processor.video_processor).__name__.startswith('Qwen3VLVideoProcessor')
    assert type(model).__name__ == 'Qwen3VLForConditionalGeneration'
    assert 200_000 < sum(p.numel() for p in model.parameters()) < 1_500_000
    inputs = processor(text=['<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n'],
                       return_tensors='pt')
    out = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert out.shape[1] == inputs['input_ids'].shape[1] + 3


def test_deterministic_for_a_seed(tiny_checkpoint, tmp_path):
    same = build_tiny_checkpoint(tmp_path / 'same')
    for name in ('model.safetensors', 'tokenizer.json', 'config.json', 'chat_template.jinja'):
        assert sha256(same / name) == sha256(tiny_checkpoint / name), name
    other = build_tiny_checkpoint(tmp_path / 'other', seed=1)
    assert sha256(other / 'model.safetensors') != sha256(tiny_checkpoint / 'model.safetensors')
    assert sha256(other / 'tokenizer.json') == sha256(tiny_checkpoint / 'tokenizer.json')


def test_build_refuses_a_non_empty_folder_and_leaves_no_debris(tmp_path):
    target = tmp_path / 'taken'
    target.mkdir()
    (target / 'precious.txt').write_text('keep me')
    with pytest.raises(ConfigError, match='not an empty folder'):
        build_tiny_checkpoint(target)
    assert (target / 'precious.txt').read_text() == 'keep me'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['taken']
    assert is_tiny_checkpoint(build_tiny_checkpoint(target, overwrite=True))
    assert not (target / 'precious.txt').exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['taken']


def test_ensure_builds_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv('COSMOS_PLANNER_CACHE', str(tmp_path / 'cache'))
    first = ensure_tiny_checkpoint()
    assert first.parent == tmp_path / 'cache' and is_tiny_checkpoint(first)
    stamp = (first / 'model.safetensors').stat().st_mtime_ns
    assert ensure_tiny_checkpoint() == first
    assert (first / 'model.safetensors').stat().st_mtime_ns == stamp
    assert [p.name for p in (tmp_path / 'cache').iterdir()] == [first.name]


def test_is_tiny_checkpoint_false_for_other_folders(tmp_path, tiny_checkpoint):
    assert not is_tiny_checkpoint(None)
    assert not is_tiny_checkpoint(tmp_path / 'missing')
    fake = tmp_path / 'fake'
    fake.mkdir()
    (fake / MARKER_FILE).write_text('x')
    (fake / 'config.json').write_text(json.dumps({'model_type': 'qwen3_vl'}))
    assert not is_tiny_checkpoint(fake)


def test_cli_make_tiny_checkpoint(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert run(parser.parse_args([str(tmp_path / 'cli')])) == 0
    out = capsys.readouterr().out
    assert 'meaningless' in out and str(tmp_path / 'cli') in out
    assert is_tiny_checkpoint(tmp_path / 'cli')
    assert run(parser.parse_args([str(tmp_path / 'cli')])) == 2
    assert 'not an empty folder' in capsys.readouterr().out
    assert run(parser.parse_args([str(tmp_path / 'cli'), '--force', '--seed', '3'])) == 0
    assert 'seed 3' in (tmp_path / 'cli' / MARKER_FILE).read_text()
    assert os.listdir(tmp_path) == ['cli']
