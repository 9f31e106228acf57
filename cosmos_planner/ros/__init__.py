"""The ROS 2 face of the planner: message conversion, parameters and the planner node.

Everything here may import rclpy and ROS message types; the core (frames, model, geometry,
pipeline, backends) never does. The node's outputs are built once as neutral records in
``pipeline.outputs``; ``messages.to_ros`` turns them into rclpy messages here, as
``bag.writer.to_rosbags`` turns the same records into the offline replay's bag messages.
"""
