"""Decoding constraints: what the grammars built from the presets' schemas accept and refuse.

A byte-level vocabulary stands in for a tokenizer (xgrammar checks strings byte by byte), so
these tests need no model and run in well under a second.
"""

import json

import pytest

from cosmos_planner.model.response_schemas import (build_grammar, DecodingLimits, response_schema,
                                                   think_ebnf)
from cosmos_planner.errors import ConfigError
from cosmos_planner.model.plan_schema import ModelAnswer
from cosmos_planner.model.prompts import load_preset

xgr = pytest.importorskip('xgrammar')


@pytest.fixture(scope='module')
def compiler():
    info = xgr.TokenizerInfo([bytes([i]) for i in range(256)] + ['</s>'],
                             stop_token_ids=[256])
    return xgr.GrammarCompiler(info, max_threads=1)


def accepts(compiler, schema, text, reasoning=False, max_think_chars=200):
    matcher = xgr.GrammarMatcher(compiler.compile_grammar(
        build_grammar(schema, reasoning, max_think_chars)))
    return matcher.accept_string(text) and matcher.is_completed()


def point(x, y, **extra):
    return {'point_2d': [x, y], 'label': 'gripper trajectory', **extra}


# NVIDIA's published answer shape, in the compact form constrained decoding writes.
NVIDIA_ANSWER = json.dumps([point(721, 674), point(549, 745)])
PLAN_ANSWER = json.dumps({'next_action': 'Reach above the red cube',
                          'steps': ['grasp the cube', 'lift it'],
                          'trajectory': [point(10, 20, gripper='open'), point(30, 40)]})


def test_points_format_accepts_nvidia_answers_and_bounds_them(compiler):
    schema = load_preset('trajectory').response_schema()
    assert accepts(compiler, schema, NVIDIA_ANSWER)
    assert accepts(compiler, schema, json.dumps([point(0, 0), point(1000, 1000)]))
    assert accepts(compiler, schema, json.dumps([point(1, 2, gripper='close'), point(3, 4)]))
    refused = [
        json.dumps([point(1, 2)]),                        # fewer than 2 points
        json.dumps([point(1, 2)] * 17),                   # more than max_points (16)
        json.dumps([point(1001, 2), point(1, 2)]),        # coordinate above 1000
        json.dumps([point(-1, 2), point(1, 2)]),          # negative coordinate
        json.dumps([point(1.5, 2), point(1, 2)]),         # not an integer
        json.dumps([{'point_2d': [1, 2], 'label': 'cup'}, point(1, 2)]),  # other label
        json.dumps([point(1, 2, gripper='half'), point(1, 2)]),           # gripper enum
        json.dumps([point(1, 2, speed=3), point(1, 2)]),  # extra property
        json.dumps([point(1, 2), point(3, 4)], indent=1),  # free whitespace
        '```json\n' + NVIDIA_ANSWER + '\n```',            # fences
    ]
    for text in refused:
        assert not accepts(compiler, schema, text), text


def test_plan_format_bounds_every_string_with_a_pattern(compiler):
    schema = load_preset('plan').response_schema()
    assert accepts(compiler, schema, PLAN_ANSWER)
    base = json.loads(PLAN_ANSWER)
    for field, bad in [('next_action', 'R' * 101), ('next_action', 'bad\u0001control'),
                       ('next_action', ''), ('steps', []), ('steps', ['a'] * 7),
                       ('steps', ['ok', 'new\nline']), ('trajectory', [point(1, 2)])]:
        assert not accepts(compiler, schema, json.dumps({**base, field: bad})), (field, bad)
    for field_schema in (schema['properties']['next_action'],
                         schema['properties']['steps']['items']):
        assert 'pattern' in field_schema and 'maxLength' not in field_schema


def test_reasoning_grammar_needs_a_bounded_think_block_first(compiler):
    schema = response_schema('points')
    think = '<think>\nThe cube is at [412, 530]; I will approach from above.\n</think>\n\n'
    assert accepts(compiler, schema, think + NVIDIA_ANSWER, reasoning=True)
    assert accepts(compiler, schema, '<think></think>' + NVIDIA_ANSWER, reasoning=True)
    assert not accepts(compiler, schema, NVIDIA_ANSWER, reasoning=True)
    assert not accepts(compiler, schema, '<think>' + 'a' * 201 + '</think>' + NVIDIA_ANSWER,
                       reasoning=True, max_think_chars=200)
    assert not accepts(compiler, schema, think + NVIDIA_ANSWER, reasoning=False)


def test_every_accepted_answer_is_a_valid_model_answer():
    # The schemas promise what the parser checks: samples that fit them validate.
    answer = ModelAnswer.model_validate(json.loads(PLAN_ANSWER))
    assert answer.next_action and len(answer.trajectory) == 2
    bare = ModelAnswer(trajectory=json.loads(NVIDIA_ANSWER))
    assert bare.next_action is None and bare.trajectory[0].point_2d == (721, 674)


def test_bad_limits_and_formats_are_config_errors():
    with pytest.raises(ConfigError, match='max_points'):
        DecodingLimits(min_points=5, max_points=4)
    with pytest.raises(ConfigError, match='max_text_chars'):
        DecodingLimits(max_text_chars=0)
    with pytest.raises(ConfigError, match='points, plan'):
        response_schema('boxes')
    with pytest.raises(ConfigError, match='positive'):
        think_ebnf(0)
