"""The ``mediamesh`` command line (Typer + Rich). Progress and errors go to stderr; data to stdout.

``app`` (in ``app.py``) registers the commands, grouped by job: ``compute`` (ingest, backfill, watch, demo),
``reads`` (status, read, features, info), ``maintenance`` (gc, verify, migrate), ``services`` (serve, worker,
stop, dev-stack) and ``mediafm`` (train, eval, promote).
"""

from mediamesh.orchestrator.interfaces.cli.app import app, main

__all__ = ["app", "main"]
