"""Bag tools: offline replay through the core, a pure-Python player, and run diffs.

``cosmos-planner replay`` (:mod:`cosmos_planner.bag.replay`), ``cosmos-planner play``
(:mod:`cosmos_planner.bag.play`) and ``cosmos-planner diff`` (:mod:`cosmos_planner.bag.diff`).
Nothing is imported here: ``rosbags`` and rclpy load only in the module that needs them.
"""
