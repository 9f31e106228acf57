"""Geometry: pixels to 3D and a trajectory a controller can execute, then the safety gate.

``camera_model`` (intrinsics, distortion), ``transforms`` (camera to target frame),
``grounding`` (pixels + depth or plane to 3D), ``timing`` (time_from_start per waypoint),
``safety`` (workspace, step, velocity, staleness).
"""
