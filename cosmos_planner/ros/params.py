"""The planner's parameters on rclpy: declared with descriptors, read back as plain values.

The parameters themselves (specs, ranges, the mapping onto ``NodeConfig``) live in
:mod:`cosmos_planner.pipeline.node_config`, which has no ROS dependency so that the offline
bag replay builds the node's configuration without ROS. This module adds only what needs a
node: ``ParameterDescriptor``s (so ``ros2 param describe`` shows the ranges) and reading the
declared values. ``python -m cosmos_planner.ros.params > config/planner.yaml`` regenerates the
shipped parameter file.
"""

from typing import Any, Dict, Mapping

from cosmos_planner.pipeline.node_config import all_specs, NODE_PARAMS, plain
from cosmos_planner.pipeline.node_config import render_params_yaml
from cosmos_planner.settings import ParamSpec


def descriptor(spec: ParamSpec) -> Any:
    """Build the ``rcl_interfaces/ParameterDescriptor`` ``ros2 param describe`` shows."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    desc = ParameterDescriptor(name=spec.name, description=spec.description,
                               read_only=spec.read_only)
    if spec.choices:
        desc.additional_constraints = 'one of: ' + ', '.join(spec.choices)
    if isinstance(spec.default, float) and (spec.min is not None or spec.max is not None):
        desc.floating_point_range = [FloatingPointRange(
            from_value=float(spec.min if spec.min is not None else -1e300),
            to_value=float(spec.max if spec.max is not None else 1e300), step=0.0)]
    elif (isinstance(spec.default, int) and not isinstance(spec.default, bool)
          and (spec.min is not None or spec.max is not None)):
        desc.integer_range = [IntegerRange(
            from_value=int(spec.min if spec.min is not None else -(2 ** 62)),
            to_value=int(spec.max if spec.max is not None else 2 ** 62), step=1)]
    return desc


def declare_node_parameters(node: Any) -> Dict[str, ParamSpec]:
    """Declare every parameter on ``node`` with its descriptor; returns the specs by name.

    Camera names are declared first, because they decide which ``cameras.NAME.*`` exist.
    Values come from the parameter overrides (params file, ``-p``) or the defaults; a value
    refused by the node's on-set callback raises ``InvalidParameterValueException``.
    """
    spec = next(s for s in NODE_PARAMS if s.name == 'cameras.names')
    node.declare_parameter(spec.name, spec.default, descriptor(spec))
    names = [str(n) for n in node.get_parameter('cameras.names').value]
    specs = all_specs(names)
    node.declare_parameters('', [(s.name, s.default, descriptor(s))
                                 for s in specs.values() if s.name != 'cameras.names'])
    return specs


def current_values(node: Any, specs: Mapping[str, ParamSpec]) -> Dict[str, Any]:
    """Return the node's value of every declared parameter, as plain Python values."""
    return {name: plain(node.get_parameter(name).value) for name in specs}


if __name__ == '__main__':
    print(render_params_yaml(), end='')
