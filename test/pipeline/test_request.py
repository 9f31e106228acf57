"""Tests of pipeline/request.py: task messages, over-long tasks and their short echo."""

import json

import pytest

from cosmos_planner.pipeline.request import intake_task, parse_task, task_echo, task_problem


@pytest.mark.parametrize('data, task, task_id', [
    ('  pick the cup ', 'pick the cup', 'new'),
    ('{"task": "open it", "task_id": "t7"}', 'open it', 't7'),
    ('{"task": "open it"}', 'open it', 'new'),
    ('{not json', '{not json', 'new'),
    ('', '', 'new'),
])
def test_task_messages(data: str, task: str, task_id: str) -> None:
    assert parse_task(data, lambda: 'new') == (task, task_id)


def test_overlong_task_is_refused_before_any_request_with_a_short_echo() -> None:
    """A task the prompt cannot carry is named as such; its status echo stays small."""
    text, task_id = parse_task(json.dumps({'task': 'x' * 20_000, 'task_id': 'big'}),
                               lambda: 'new')
    problem = task_problem(text)
    assert problem is not None and 'at most 500' in problem and task_id == 'big'
    echo = task_echo(text)
    assert echo == 'x' * 80 + '\u2026'
    assert task_problem('pick up the red cube') is None
    assert task_problem('y' * 500) is None and task_problem('y' * 501) is not None
    assert task_echo('pick up the red cube') == 'pick up the red cube'


def test_intake_refuses_empty_and_overlong_tasks_with_their_bad_task_fields() -> None:
    """The one task intake of node and replay: accepted, or refused before any request."""
    ok = intake_task('  pick the cup ', lambda: 'new')
    assert (ok.text, ok.task_id, ok.refusal) == ('pick the cup', 'new', None)
    empty = intake_task('   ', lambda: 'new')
    assert empty.refusal == {'reason': 'empty task; publish an instruction on ~/task'}
    big = intake_task(json.dumps({'task': 'x' * 600, 'task_id': 'big'}), lambda: 'new')
    assert big.refusal is not None and big.refusal['task_id'] == 'big'
    assert 'at most 500' in big.refusal['reason']
    assert big.refusal['task'] == 'x' * 80 + '\u2026'
