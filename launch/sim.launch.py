"""Closed-loop simulation: ``ros2 launch cosmos_planner sim.launch.py``.

``simulator:=mujoco`` (default) starts the MuJoCo tabletop (``sim_node``: the simulator
and its Cartesian controller, Isaac's topic names) and the planner node with
``config/isaac_bridge.yaml``; ``simulator:=isaac`` starts only the planner, for Isaac Sim
running ``isaac/tabletop_isaac.py`` (which publishes the same topics and runs its own
controller). Other arguments: ``backend`` (local: the embedded default model; expert: the
scripted TEST ORACLE, MuJoCo only; openai), ``model``, ``params_file``, ``seed``,
``real_time_factor``, ``ground_truth_path`` (the expert's oracle channel), ``log_level``.
Send the task with ``ros2 topic pub --once /cosmos_planner/task std_msgs/String
"data: put the red cube in the basket"``; reset with ``ros2 service call /sim/reset
std_srvs/srv/Trigger``. For scored episodes use ``cosmos-planner sim`` instead.
On pip-only machines (no ``launch``), ``cosmos-planner sim`` runs the same loop.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import LaunchConfigurationEquals
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

PACKAGE = 'cosmos_planner'


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments, the sim node (MuJoCo only) and the planner node."""
    share = get_package_share_directory(PACKAGE)
    arg = LaunchConfiguration
    args = [
        DeclareLaunchArgument('simulator', default_value='mujoco',
                              choices=['mujoco', 'isaac'],
                              description='mujoco: start the MuJoCo sim node too; isaac: '
                              'the planner only (Isaac Sim runs isaac/tabletop_isaac.py).'),
        DeclareLaunchArgument('backend', default_value='local',
                              choices=['local', 'expert', 'openai'],
                              description='Planner backend (expert: TEST ORACLE, MuJoCo).'),
        DeclareLaunchArgument('model', default_value='',
                              description='Model path (empty: Cosmos Reason 2 when found '
                              'offline, else the tiny test checkpoint).'),
        DeclareLaunchArgument(
            'params_file', default_value=os.path.join(share, 'config', 'isaac_bridge.yaml'),
            description='Planner parameters for the bridge topics.'),
        DeclareLaunchArgument('seed', default_value='0', description='First layout seed.'),
        DeclareLaunchArgument('real_time_factor', default_value='1.0',
                              description='Sim seconds per wall second (MuJoCo).'),
        DeclareLaunchArgument('ground_truth_path',
                              default_value='/tmp/cosmos_planner_sim_ground_truth.json',
                              description='Oracle state file shared by sim and expert.'),
        DeclareLaunchArgument('log_level', default_value='info', description='Log level.'),
    ]
    sim = Node(
        package=PACKAGE, executable='sim_node', name='sim', output='screen',
        condition=LaunchConfigurationEquals('simulator', 'mujoco'),
        parameters=[{
            'seed': ParameterValue(arg('seed'), value_type=int),
            'real_time_factor': ParameterValue(arg('real_time_factor'), value_type=float),
            'ground_truth_path': arg('ground_truth_path'),
        }],
        arguments=['--ros-args', '--log-level', arg('log_level')],
    )
    planner = Node(
        package=PACKAGE, executable='planner_node', name='cosmos_planner', output='screen',
        parameters=[arg('params_file'), {
            'use_sim_time': True,
            'backend.kind': arg('backend'),
            'backend.model': arg('model'),
            'backend.expert_ground_truth': arg('ground_truth_path'),
        }],
        arguments=['--ros-args', '--log-level', arg('log_level')],
    )
    return LaunchDescription(args + [sim, planner])
