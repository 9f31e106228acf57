"""The ROS 2 face of the planner: message conversion, parameters and the planner node.

Everything in this package may import rclpy and ROS message types; nothing outside it does.
``messages`` holds pure builders (no node, no executor) shared by the live node and by the
offline bag replay, so both publish byte-identical messages for the same plan.
"""
