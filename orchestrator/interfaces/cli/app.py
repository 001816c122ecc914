"""The ``mediamesh`` Typer app: every command registered here, in the order ``--help`` lists them."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from mediamesh.features.errors import MediameshError
from mediamesh.orchestrator.interfaces.cli import (
    compute,
    evaluation,
    maintenance,
    matchcuts,
    mediafm,
    reads,
    search,
    services,
    show,
)
from mediamesh.orchestrator.interfaces.cli.console import err
from mediamesh.orchestrator.services import lifecycle
from mediamesh.store import StoreSettings

__all__ = ["app", "main"]

app = typer.Typer(
    name="mediamesh",
    help="A feature mesh for media ML: ingest videos, compute what they lack, read versioned values.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)
for command in (
    compute.ingest,
    reads.status,
    reads.read,
    reads.features,
    show.show,
    compute.backfill,
    matchcuts.matchcuts,
    mediafm.promote,
    mediafm.train,
):
    app.command()(command)
for command in (
    reads.info,
    maintenance.gc,
    maintenance.verify,
    services.stop,
    services.serve,
    maintenance.migrate,
    services.worker,
    compute.watch,
):
    app.command()(command)
app.command(name="dev-stack")(services.dev_stack)
app.command()(compute.demo)
# Typer lists groups after commands, so the group is registered last, where --help shows it.
app.add_typer(evaluation.app, name="eval")
app.add_typer(search.search_app, name="search")
app.add_typer(search.index_app, name="index")


def main() -> None:
    # Before any command imports Prefect or torch: they read where to write when imported.
    lifecycle.enter(StoreSettings().home_dir)
    try:
        app()
    except MediameshError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        sys.exit(1)
