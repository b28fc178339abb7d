"""Entry points: HTTP (FastAPI), the `kosh` CLI, and the composition root."""
