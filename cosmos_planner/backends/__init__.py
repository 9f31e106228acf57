"""Backends: one-method interface ``generate(request) -> Completion`` plus wrappers.

Heavy dependencies (torch, transformers, openai) are imported only inside the backend that
needs them, so the core stays importable on a machine without the model stack.
"""

from cosmos_planner.backends.base import Backend, Completion, GenerationRequest, Sampling

__all__ = ['Backend', 'Completion', 'GenerationRequest', 'Sampling']
