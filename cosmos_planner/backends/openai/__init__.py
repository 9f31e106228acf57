"""OpenAI-compatible servers (vLLM, NIM): the client, its payload and media, a local vLLM."""
