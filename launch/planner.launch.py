"""Launch the planner node: ``ros2 launch cosmos_planner planner.launch.py``.

Arguments (``name:=value``): ``params_file`` (default: the installed config/planner.yaml),
``use_sim_time`` (true with a simulator or ``ros2 bag play --clock``), ``namespace``,
``autostart`` (false leaves the lifecycle node unconfigured for a lifecycle manager),
``log_level``, and topic remaps for the default camera ``camera``: ``image_topic``,
``compressed_image_topic``, ``camera_info_topic``, ``depth_topic`` (used when the params
file sets ``cameras.camera.depth_topic: camera/depth``), plus ``ee_pose_topic``.

For Isaac Sim's ROS 2 bridge: ``image_topic:=/rgb camera_info_topic:=/camera_info
depth_topic:=/depth use_sim_time:=true`` with ``qos.reliable: true`` in the params file.
On machines without ``launch`` (pip-only), run the same node as
``planner_node --ros-args --params-file config/planner.yaml -r camera/image:=/rgb``.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

PACKAGE = 'cosmos_planner'
#: Topics of the default camera as the node subscribes to them (relative names).
DEFAULT_TOPICS = {
    'image_topic': 'camera/image',
    'compressed_image_topic': 'camera/image/compressed',
    'camera_info_topic': 'camera/camera_info',
    'depth_topic': 'camera/depth',
    'ee_pose_topic': 'ee_pose',
}


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments and the planner node."""
    share = get_package_share_directory(PACKAGE)
    args = [
        DeclareLaunchArgument(
            'params_file', default_value=os.path.join(share, 'config', 'planner.yaml'),
            description='Parameters of the node (see config/planner.yaml).'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='Use /clock (simulation, bag play --clock).'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace of the node and its topics.'),
        DeclareLaunchArgument('autostart', default_value='true',
                              description='Configure and activate at start.'),
        DeclareLaunchArgument('log_level', default_value='info',
                              description='Logging level of the node.'),
    ]
    args += [DeclareLaunchArgument(name, default_value=topic,
                                   description=f'Topic remapped onto {topic}.')
             for name, topic in DEFAULT_TOPICS.items()]
    node = Node(
        package=PACKAGE, executable='planner_node', name='cosmos_planner',
        namespace=LaunchConfiguration('namespace'), output='screen',
        parameters=[
            LaunchConfiguration('params_file'),
            {'use_sim_time': ParameterValue(LaunchConfiguration('use_sim_time'),
                                            value_type=bool),
             'autostart': ParameterValue(LaunchConfiguration('autostart'), value_type=bool)},
        ],
        remappings=[(topic, LaunchConfiguration(name))
                    for name, topic in DEFAULT_TOPICS.items()],
        arguments=['--ros-args', '--log-level', LaunchConfiguration('log_level')],
    )
    return LaunchDescription(args + [node])
