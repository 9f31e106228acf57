"""cosmos_planner: plan robot gripper trajectories with NVIDIA Cosmos Reason 2.

The core (ingest, buffer, prompts, backends, parser, grounding, safety gate, planner) is plain
Python + numpy and never imports rclpy; the ROS node lives in ``cosmos_planner.ros``.
"""

__version__ = '0.1.0'
