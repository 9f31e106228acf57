"""Backends: implementations of ``model.protocol.Backend`` (``generate(request, cancel)``).

``registry`` makes one by name; ``recording`` and ``faults`` wrap any backend; ``local/``
runs the model in-process with transformers (and holds its helpers: checkpoint resolution,
memory planning, processor inputs, the tiny test checkpoint); ``openai/`` talks to an
OpenAI-compatible server (client, payload, media encoding, the local vLLM server helper).
Heavy dependencies (torch, transformers, openai) are imported only inside the backend that
needs them, so the core stays importable on a machine without the model stack.
"""
