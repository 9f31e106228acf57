"""Parser tests: every form Cosmos Reason 2 answers in, and every way an answer can be bad.

Runtime: about 2 s (the hypothesis properties run a bounded number of examples).
"""

import json

from hypothesis import given, HealthCheck, settings, strategies as st
import pytest

from cosmos_planner.errors import ConfigError, ParseError
from cosmos_planner.model.parser import MAX_DEPTH, MAX_TEXT_CHARS, parse_answer, split_reasoning
from planner_helpers import NVIDIA_STYLE_ANSWER, NVIDIA_STYLE_POINTS, PLAN_ANSWER

SIZE = (1280, 720)


def _px(points, size=SIZE):
    return tuple((x / 1000 * size[0], y / 1000 * size[1]) for x, y in points)


def _fails(text, size=SIZE, match=None):
    with pytest.raises(ParseError, match=match) as info:
        parse_answer(text, size)
    return info.value


# --- well-formed answers -----------------------------------------------------------------

def test_nvidia_fenced_bare_list():
    answer = parse_answer(NVIDIA_STYLE_ANSWER, SIZE)
    assert answer.points_model == NVIDIA_STYLE_POINTS
    assert answer.points_px == _px(NVIDIA_STYLE_POINTS)
    assert answer.labels == ('gripper trajectory',) * 4
    assert answer.gripper == (None,) * 4
    assert answer.next_action is None and answer.steps == ()
    assert answer.reasoning is None
    assert answer.raw == NVIDIA_STYLE_ANSWER


def test_unfenced_list_with_prose_around_it():
    text = 'Sure, here is the trajectory [as requested]: [[100, 200], [300, 400]] Done.'
    assert parse_answer(text, SIZE).points_model == ((100.0, 200.0), (300.0, 400.0))


def test_object_form_with_next_action_steps_and_gripper():
    answer = parse_answer(PLAN_ANSWER, SIZE)
    assert answer.next_action == 'Move the gripper above the red cube'
    assert answer.steps == ('grasp the cube', 'carry it over the basket', 'release it')
    assert answer.points_model == ((500.0, 200.0), (320.0, 620.0), (700.0, 600.0))
    assert answer.gripper == (None, 'close', 'open')


def test_gripper_words_are_normalised():
    text = '[{"point_2d": [1, 2], "gripper": "Closed"}, {"point_2d": [3, 4], "gripper": "OPEN"}]'
    assert parse_answer(text, SIZE).gripper == ('close', 'open')


def test_unknown_gripper_word_is_refused():
    _fails('[{"point_2d": [1, 2], "gripper": "squeeze"}]', match='gripper')


def test_point_objects_without_the_enclosing_list():
    # The trajectory prompt shows one object as the example; models sometimes list objects.
    text = '{"point_2d": [10, 20], "label": "gripper trajectory"},\n{"point_2d": [30, 40]}'
    assert parse_answer(text, SIZE).points_model == ((10.0, 20.0), (30.0, 40.0))


def test_reasoning_with_json_looking_numbers_is_ignored():
    text = ('<think>\nThe cube is near [250, 600]; a path could be '
            '[{"point_2d": [1, 1], "label": "gripper trajectory"}] or {"trajectory": '
            '[{"point_2d": [999, 999]}]}. Waypoint [2000, 3000] is off-image.\n</think>\n\n'
            + NVIDIA_STYLE_ANSWER)
    answer = parse_answer(text, SIZE)
    assert answer.points_model == NVIDIA_STYLE_POINTS
    assert answer.reasoning.startswith('The cube is near [250, 600]')


def test_last_think_close_wins_and_template_opened_think():
    # Chat templates may open <think> in the prompt: the text then has only the closing tag.
    text = 'I will mention </think> once. [[5, 5]] </think> [[7, 8], [9, 10]]'
    answer = parse_answer(text, SIZE)
    assert answer.points_model == ((7.0, 8.0), (9.0, 10.0))
    assert answer.reasoning == 'I will mention </think> once. [[5, 5]]'


def test_reasoning_split_off_by_the_server_is_kept():
    answer = parse_answer(NVIDIA_STYLE_ANSWER, SIZE, reasoning='  server-side reasoning ')
    assert answer.reasoning == 'server-side reasoning'


def test_split_reasoning():
    assert split_reasoning('no tags') == (None, 'no tags')
    assert split_reasoning('<think> a </think>b') == ('a', 'b')


def test_valid_utf8_bytes_and_unicode_text():
    text = '{"next_action": "Greif den Würfel", "trajectory": [{"point_2d": [1, 2]}]}'
    assert parse_answer(text.encode('utf-8'), SIZE).next_action == 'Greif den Würfel'


def test_first_valid_fenced_block_wins():
    text = '```json\n{"point_2d": [x, y]}\n```\nthen\n```json\n[[10, 10], [20, 20]]\n```'
    assert parse_answer(text, SIZE).points_model == ((10.0, 10.0), (20.0, 20.0))


# --- pixels --------------------------------------------------------------------------------

@pytest.mark.parametrize('size', [(1280, 720), (480, 640), (1, 1), (4096, 37)])
def test_pixels_scale_each_axis_by_native_size(size):
    text = '[[0, 0], [1000, 1000], [250, 750], [333.3, 0.5]]'
    answer = parse_answer(text, size)
    assert answer.points_px == _px(answer.points_model, size)
    assert answer.points_px[0] == (0.0, 0.0)
    assert answer.points_px[1] == (float(size[0]), float(size[1]))


def test_non_square_pixels_are_not_swapped():
    answer = parse_answer('[[500, 250]]', (640, 480))
    assert answer.points_px == ((320.0, 120.0),)


@pytest.mark.parametrize('size', [(0, 10), (10, -1), (10,), 'ab', None, (10.5, 10)])
def test_bad_image_size_is_a_config_error(size):
    with pytest.raises(ConfigError):
        parse_answer(NVIDIA_STYLE_ANSWER, size)


# --- broken answers ------------------------------------------------------------------------

@pytest.mark.parametrize('text', [
    NVIDIA_STYLE_ANSWER[:len(NVIDIA_STYLE_ANSWER) // 2],
    NVIDIA_STYLE_ANSWER[:-6],
    PLAN_ANSWER[:-3],
    '{"point_2d": [1, 2]}, {"point_2d": [3, 4',
    '<think>The cube is at [250, 600] and I should',
    '```json\n[{"point_2d": [1, 2]}, {"point_2d"',
])
def test_truncated_answers_are_refused_not_shortened(text):
    err = _fails(text)
    assert err.raw == text


@pytest.mark.parametrize('answer', [NVIDIA_STYLE_ANSWER, PLAN_ANSWER, '[[1, 2], [3, 4]]'])
def test_no_prefix_of_an_answer_parses_to_a_different_plan(answer):
    full = parse_answer(answer, SIZE).points_model
    for cut in range(len(answer)):
        try:
            got = parse_answer(answer[:cut], SIZE).points_model
        except ParseError:
            continue
        assert got == full, f'prefix {answer[:cut]!r} parsed to {got}'


@pytest.mark.parametrize('coords', ['[-1, 5]', '[5, 1000.5]', '[2000, 10]', '[5, -0.001]'])
def test_out_of_range_coordinates(coords):
    _fails(f'[{{"point_2d": {coords}}}]', match='1000|0')


def test_one_bad_point_refuses_the_whole_answer():
    _fails('[{"point_2d": [1, 2]}, {"point_2d": [3, 4000]}, {"point_2d": [5, 6]}]',
           match='trajectory.1')


@pytest.mark.parametrize('literal', ['NaN', 'Infinity', '-Infinity', '1e999', '-1e400'])
def test_non_finite_numbers(literal):
    _fails(f'[{{"point_2d": [{literal}, 5]}}]', match='finite')


@pytest.mark.parametrize('text', ['', '   \n', 'I cannot see a gripper.', '<think>x</think>',
                                  '```\nno json here\n```', '{not json}', '[1, 2,, 3]'])
def test_non_json_and_empty(text):
    err = _fails(text)
    assert err.raw == text


@pytest.mark.parametrize('text', [
    '[{"point_2d": ["100", "200"]}]',
    '[{"point_2d": [true, false]}]',
    '[{"point_2d": [null, 1]}]',
    '[{"point_2d": [1, 2, 3]}]',
    '[{"point_2d": [1]}]',
    '[{"point_2d": {"x": 1, "y": 2}}]',
    '[{"label": "gripper trajectory"}]',
    '[{"point_2d": [1, 2], "label": 7}]',
    '{"next_action": 5, "trajectory": [[1, 2]]}',
    '{"steps": "grasp", "trajectory": [[1, 2]]}',
    '{"steps": [1, 2], "trajectory": [[1, 2]]}',
    '{"trajectory": {"point_2d": [1, 2]}}',
    '{"trajectory": []}',
    '[]',
    '[1, 2]',
    '{"next_action": "go"}',
    '"just a string"',
    '42',
])
def test_wrong_types_and_shapes(text):
    _fails(text)


def test_too_many_points_and_too_long_text():
    _fails(json.dumps([[1, 1]] * 65), match='64')
    _fails(json.dumps({'next_action': 'x' * 201, 'trajectory': [[1, 1]]}), match='200')


# --- hostile input -------------------------------------------------------------------------

def test_huge_answer_is_refused_and_raw_is_bounded():
    text = '[' + '[1, 2], ' * (MAX_TEXT_CHARS // 8) + '[3, 4]]'
    err = _fails(text, match='characters')
    assert len(err.raw) == MAX_TEXT_CHARS


@pytest.mark.parametrize('text', [
    '[' * 100_000 + ']' * 100_000,
    '[' * 100_000,
    '{"a": ' * 5000 + '1' + '}' * 5000,
    '[{"point_2d": [1, 2], "extra": ' + '[' * (MAX_DEPTH + 1) + ']' * (MAX_DEPTH + 1) + '}]',
])
def test_deep_nesting_is_refused(text):
    _fails(text, match='nested|never closed')


def test_absurdly_long_integer_is_refused():
    _fails('[[' + '1' * 5000 + ', 2]]', match='integer')


def test_non_utf8_bytes_are_refused():
    err = _fails(b'[[1, 2]] \xff\xfe', match='UTF-8')
    assert '\ufffd' in err.raw


def test_unpaired_surrogates_are_refused():
    _fails('[[1, 2]] \udcff', match='surrogate')


@pytest.mark.parametrize('value', [None, 42, ['[[1, 2]]'], {'text': '[[1, 2]]'}])
def test_non_text_is_refused(value):
    _fails(value, match='text')


def test_many_bracket_fragments_terminate():
    # Each '[x]' is a failed candidate; the scan is bounded, not quadratic in the text.
    _fails('[x] ' * 50_000)


# --- properties ----------------------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5000, 5000) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
        st.sampled_from(['point_2d', 'label', 'gripper', 'trajectory', 'next_action',
                         'steps', 'x']), inner, max_size=4),
    max_leaves=25)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_any_text_gives_a_plan_or_a_parse_error(text):
    try:
        answer = parse_answer(text, SIZE)
    except ParseError as err:
        assert isinstance(err.raw, str)
        return
    assert all(0 <= c <= 1000 for p in answer.points_model for c in p)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_JSON, st.sampled_from(['{}', '```json\n{}\n```', '<think>[1]</think>{}', 'A: {} B']))
def test_any_json_gives_a_valid_plan_or_a_parse_error(value, wrapper):
    text = wrapper.replace('{}', json.dumps(value))
    try:
        answer = parse_answer(text, (640, 480))
    except ParseError:
        return
    assert answer.points_model
    for (x, y), (u, v) in zip(answer.points_model, answer.points_px):
        assert 0 <= x <= 1000 and 0 <= y <= 1000
        assert u == x / 1000 * 640 and v == y / 1000 * 480
