"""Typed errors of the bag tools.

A bag is user input like an image: a missing topic, an unknown message type or a truncated
file must produce one clear sentence naming the bag, the topic and what to do, never a
traceback from deep inside the storage plugin.
"""

from cosmos_planner.errors import PlannerError


class BagError(PlannerError, RuntimeError):
    """A bag cannot be read or written as asked; ``kind`` says why, for counters and tests."""

    reason = 'bad_bag'

    def __init__(self, message: str, kind: str = 'bad_bag') -> None:
        super().__init__(message)
        #: ``not_found``, ``corrupt``, ``missing_topic``, ``unknown_type``, ``exists`` ...
        self.kind = kind
