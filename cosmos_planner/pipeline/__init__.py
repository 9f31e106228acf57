"""The planning job: request -> backend -> parse -> ground -> gate, one job at a time.

``planner`` (ask the backend, parse, retry answers that do not parse), ``plan_pipeline``
(ground and gate a parsed answer), ``config`` (the validated pipeline config), ``worker``
(one thread owns the backend, newest wins), ``annotate`` (draw a plan on its image).
"""
