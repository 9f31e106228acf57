"""Closed-loop tabletop simulation: MuJoCo scene, sim and controller nodes, episode runner.

Layout (each module one concern; only the ``*_node`` modules, ``standalone``, ``episode`` and
``recording`` import rclpy, only ``tabletop`` and ``mujoco_gl`` import mujoco):

- ``config``: the validated, immutable ``SimConfig`` (``config/sim.yaml``).
- ``layout``: per-seed random object and basket poses (pure numpy).
- ``scene``: the MJCF text of the scene for one layout.
- ``camera``: pinhole intrinsics and the optical-frame pose (z forward, x right, y down).
- ``tabletop``: ``TabletopSim``, physics stepping, rendering, grasping, success check.
- ``follower``: a Cartesian trajectory follower (what a real controller does), pure.
- ``ground_truth``: the oracle channel (a state file keyed by frame stamp) for the expert.
- ``sim_node`` / ``controller_node``: rclpy nodes speaking Isaac Sim's bridge topics.
- ``standalone``: the ``sim_node`` console script (the sim and its controller).
- ``expert``: the scripted TEST ORACLE backend (registered through an entry point).
- ``episode`` / ``recording``: what ``cosmos-planner sim`` (``cli/sim.py``) runs; MP4 and MCAP.
"""
