"""``mediamesh matchcuts``: a title's best match cuts, or the best across several titles, as a table, JSON or
a sheet of pictures (``interfaces/matchcuts.py`` finds them, for the API too)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from mediamesh.orchestrator.execution.plugins import configured_registry
from mediamesh.orchestrator.interfaces.cli.console import ASSET_HELP, RichProgress, err, out, progress_bar
from mediamesh.orchestrator.mesh import Mesh

if TYPE_CHECKING:
    from mediamesh.orchestrator.interfaces.matchcuts import Side

__all__ = ["matchcuts"]


class Flavour(StrEnum):
    """``interfaces.matchcuts.Flavour``'s choices, for the option: that module (OpenCV, the encoders) is imported
    only when the command runs, not by every command. ``tests/store/test_import_cost.py`` holds the two equal."""

    frame = "frame"
    motion = "motion"


def matchcuts(
    assets: Annotated[
        list[str],
        typer.Argument(help=f"{ASSET_HELP} One: that title's pairs. Several: only pairs across them.", metavar="ASSET"),
    ],
    flavour: Annotated[
        Flavour, typer.Option(help="frame: last and first frames look alike; motion: the movement carries on.")
    ] = Flavour.frame,
    top: Annotated[int, typer.Option(min=1, help="How many pairs, best first.")] = 10,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='Print {"pairs": [{"a": {"asset", "name", "shot", "start_time", "end_time"}, "b": {...}, "score", '
            '"flavour"}], "versions": {FEATURE: VERSION}}.',
        ),
    ] = False,
    to: Annotated[
        Path | None,
        typer.Option("--out", help="Draw the pairs as a PNG sheet: shot a's last frame beside shot b's first."),
    ] = None,
) -> None:
    """Match cuts: pairs of shots where the end of one cuts well to the start of the other, by framing or by
    motion; computed where missing. Adjacent shots and repeats of one shot are never a pair."""
    from mediamesh.orchestrator.interfaces.matchcuts import find_match_cuts, render_sheet

    registry = configured_registry()
    cuts = registry.resolve(f"{flavour.value}_match_cuts")
    if top > cuts.params["k"]:  # a value of its own, keyed by its K, kept like any other
        registry = registry.replace(cuts.replace(params={"k": top}))
    with Mesh.open(registry) as mesh:
        ids = list(dict.fromkeys(mesh.store.resolve_local_asset(a) for a in assets))
        with progress_bar() as bar:
            pairs, versions = find_match_cuts(mesh, ids, flavour.value, top, progress=lambda: RichProgress(bar))
        if to is not None:
            render_sheet(mesh, pairs, to)
            err.print(f"wrote {len(pairs)} pair(s) to {to}")
    if as_json:
        out.print_json(json.dumps({"pairs": [p.to_json() for p in pairs], "versions": versions}))
        return
    table = Table("#", "score", "end of shot a", "start of shot b")
    for rank, pair in enumerate(pairs, 1):
        table.add_row(str(rank), f"{pair.score:.3f}", escape(_describe(pair.a)), escape(_describe(pair.b)))
    out.print(table)


def _describe(side: Side) -> str:
    return f"{side.name} shot {side.shot} ({side.start_time:.2f}-{side.end_time:.2f} s)"
