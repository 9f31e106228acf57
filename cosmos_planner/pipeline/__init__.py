"""The planning job, the same for the node and the offline replay, one job at a time.

``request`` (the one place a request is built: snapshot, depth, end-effector pose, task
intake), ``planner`` (ask the backend, parse, retry answers that do not parse),
``plan_pipeline`` (ground, time and gate a parsed answer), ``config`` (the validated
pipeline config), ``node_config`` (the planner's parameters onto the core configs),
``inputs`` (what the sensor callbacks do: ingest and buffer), ``worker`` (one thread owns
the backend, newest wins, one cancel token per job), ``publishing`` (the one place an
outcome is published), ``outputs`` (the output messages as neutral records), ``stats``
(counters), ``annotate`` (draw a plan on its image).
"""
