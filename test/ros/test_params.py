"""Tests of ros/params.py: every parameter's description, default and descriptor ranges."""

from cosmos_planner.pipeline.node_config import all_specs
from cosmos_planner.ros.params import descriptor


def test_every_parameter_has_a_description_and_a_typed_default() -> None:
    for spec in all_specs(['camera']).values():
        assert len(spec.description) > 15, spec.name
        assert spec.check(spec.default) is None, spec.name
        desc = descriptor(spec)
        if spec.min is not None and isinstance(spec.default, float):
            assert desc.floating_point_range[0].from_value == spec.min
        if spec.min is not None and type(spec.default) is int:
            assert desc.integer_range[0].from_value == spec.min
