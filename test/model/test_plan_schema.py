"""The committed JSON Schema files match the pydantic models; plans round-trip through them.

Runtime: well under 1 s.
"""

import json

import pytest

from cosmos_planner.cli.main import main as cli_main
from cosmos_planner.model.parser import parse_answer
from cosmos_planner.model.plan_schema import (ModelAnswer, PLAN_SCHEMA_ID, plan_from_answer,
                                              PlanV1)
from cosmos_planner.cli.export_schemas import (export_schemas, render_schemas, SCHEMA_FILES,
                                               source_config_dir, stale_schemas)
from planner_helpers import PLAN_ANSWER


def test_committed_schema_files_are_up_to_date():
    stale = stale_schemas(source_config_dir())
    assert stale == [], (f'{stale} differ from the pydantic models: run '
                         '`cosmos-planner export-schemas` and commit config/')


def test_export_schemas_check_command(tmp_path, capsys):
    assert cli_main(['export-schemas', '--check']) == 0
    assert cli_main(['export-schemas', '--check', '--out', str(tmp_path)]) == 1
    assert 'out of date' in capsys.readouterr().out
    assert cli_main(['export-schemas', '--out', str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(SCHEMA_FILES)
    assert cli_main(['export-schemas', '--check', '--out', str(tmp_path)]) == 0
    # A hand edit is detected.
    path = tmp_path / 'plan_v1.schema.json'
    path.write_text(path.read_text().replace('"task_id"', '"taskid"'))
    assert stale_schemas(tmp_path) == ['plan_v1.schema.json']


def test_rendering_is_deterministic_and_valid_json(tmp_path):
    assert render_schemas() == render_schemas()
    export_schemas(tmp_path)
    for name in SCHEMA_FILES:
        text = (tmp_path / name).read_text()
        assert text.endswith('}\n')
        json.loads(text)


def test_plan_schema_content():
    schema = json.loads(render_schemas()['plan_v1.schema.json'])
    assert schema['$id'] == PLAN_SCHEMA_ID
    props = schema['properties']
    assert props['schema']['const'] == PLAN_SCHEMA_ID  # the wire name, not schema_id
    for key in ('task_id', 'plan_id', 'stamp', 'frame_id', 'image_size', 'valid_until',
                'trajectory'):
        assert key in schema['required']
    assert schema['additionalProperties'] is False
    point = schema['$defs']['PlannedPoint']['properties']
    assert {'point_2d', 'pixel', 'position', 'gripper'} <= set(point)


def test_answer_schema_bounds_coordinates():
    schema = json.loads(render_schemas()['model_answer.schema.json'])
    coords = schema['$defs']['TrajectoryPoint']['properties']['point_2d']['prefixItems']
    assert all(c['minimum'] == 0 and c['maximum'] == 1000 for c in coords)
    assert schema['properties']['trajectory']['minItems'] == 1
    gripper = schema['$defs']['TrajectoryPoint']['properties']['gripper']['anyOf'][0]
    assert gripper['enum'] == ['open', 'close']


def test_plan_round_trips_through_json():
    answer = parse_answer(PLAN_ANSWER, (1280, 720))
    plan = plan_from_answer(
        answer, task='t', task_id='task-1', plan_id='p', stamp=12.5, frame_id='base',
        image_size=(1280, 720), valid_until=14.0,
        positions=[(0.1, 0.2, 0.3), None, (0.4, 0.5, 0.6)], model='m', preset='plan',
        timings_ms={'generate': 3.0})
    text = plan.to_json()
    assert json.loads(text)['schema'] == PLAN_SCHEMA_ID
    again = PlanV1.model_validate_json(text)
    assert again == plan
    assert [p.gripper for p in again.trajectory] == [None, 'close', 'open']
    assert again.trajectory[1].position is None
    assert again.trajectory[0].pixel == (640.0, 144.0)


def test_model_answer_accepts_what_the_parser_accepts():
    data = json.loads(PLAN_ANSWER)
    assert len(ModelAnswer.model_validate(data).trajectory) == 3


def test_committed_files_validate_real_plans_and_answers():
    import jsonschema
    config = source_config_dir()
    plan_schema = json.loads((config / 'plan_v1.schema.json').read_text())
    answer_schema = json.loads((config / 'model_answer.schema.json').read_text())
    jsonschema.Draft202012Validator.check_schema(plan_schema)
    jsonschema.Draft202012Validator.check_schema(answer_schema)
    answer = parse_answer(PLAN_ANSWER, (640, 480))
    plan = plan_from_answer(answer, task='t', task_id='1', plan_id='p', stamp=1.0,
                            frame_id='cam', image_size=(640, 480), valid_until=2.0)
    document = json.loads(plan.to_json())
    jsonschema.validate(document, plan_schema)
    jsonschema.validate(json.loads(PLAN_ANSWER), answer_schema)
    document['trajectory'][0]['gripper'] = 'squeeze'
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, plan_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({'trajectory': [{'point_2d': [5, 1001]}]}, answer_schema)
