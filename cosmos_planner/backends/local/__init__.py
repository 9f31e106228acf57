"""The embedded default: Cosmos Reason 2 in-process with transformers, and its helpers."""
