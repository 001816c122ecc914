"""The ``mediamesh`` command line (Typer + Rich). Progress and errors go to stderr; data to stdout.

``app`` (in ``app.py``) registers the commands, grouped by job: ``compute`` (ingest, backfill, watch, demo),
``reads`` (status, read, features, info), ``maintenance`` (gc, verify, migrate), ``services`` (serve, worker,
stop, dev-stack) and ``mediafm`` (train, eval, promote). ``quick.py`` answers ``status`` and ``read --json``
from the catalogue alone where it can, before any of that is imported.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from mediamesh.features.lazy import exports

if TYPE_CHECKING:
    from mediamesh.orchestrator.interfaces.cli.app import app

__all__ = ["app", "main"]

__getattr__ = exports(__name__, {"mediamesh.orchestrator.interfaces.cli.app": ("app",)})


def main() -> None:
    """The ``mediamesh`` script: the catalogue read where it answers, else the Typer app."""
    from mediamesh.orchestrator.interfaces.cli import quick

    if quick.main(sys.argv[1:]):
        return
    from mediamesh.orchestrator.interfaces.cli.app import main as full

    full()
