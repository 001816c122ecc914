"""``mediamesh show``: pictures of an asset, written to a file: a contact sheet of its shots, its cut timeline, or
its feature graph coloured by state. The drawing is ``interfaces/pictures.py``'s; this module reads the values
(computing the thumbnails first where they are missing) and writes the file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from mediamesh.features.values import DedupMap, ShotTable, ShotThumbnails
from mediamesh.orchestrator.interfaces import reads
from mediamesh.orchestrator.interfaces.cli.console import ASSET_HELP, RichProgress, err, progress_bar
from mediamesh.orchestrator.mesh import FeatureState, Mesh
from mediamesh.store import ValueNotFoundError

if TYPE_CHECKING:
    # Pillow is imported where a picture is drawn, not by every command (the CLI imports this module).
    from mediamesh.orchestrator.interfaces import pictures

__all__ = ["graph_of", "show"]

_GRAPH_SUFFIXES = (".png", ".svg")


def show(
    asset: Annotated[str, typer.Argument(help=ASSET_HELP)],
    to: Annotated[
        Path, typer.Option("--out", help="The picture to write: .png (or .jpg, .webp); --graph also takes .svg.")
    ],
    timeline: Annotated[
        bool, typer.Option("--timeline", help="The cut timeline: a block per shot, as wide as it is long.")
    ] = False,
    graph: Annotated[
        bool, typer.Option("--graph", help="The asset's feature graph, each node coloured by state.")
    ] = False,
    columns: Annotated[int, typer.Option(min=1, max=64, help="Thumbnails per row of the contact sheet.")] = 6,
    width: Annotated[int, typer.Option(min=200, max=20_000, help="The timeline's width in pixels.")] = 1200,
) -> None:
    """Draw an asset: a contact sheet of its shots (the default), its cut timeline, or its feature graph."""
    if timeline and graph:
        raise typer.BadParameter("--timeline and --graph draw different pictures: give one of them")
    suffix = to.suffix.lower()
    if graph and suffix not in _GRAPH_SUFFIXES:
        raise typer.BadParameter(f"--graph writes .png or .svg, not {to.name!r}", param_hint="--out")
    if not graph and suffix == ".svg":
        raise typer.BadParameter("only --graph draws SVG; write the sheet or the timeline as .png", param_hint="--out")
    from mediamesh.orchestrator.interfaces import pictures

    with Mesh.open() as mesh:
        asset_id = mesh.store.resolve_local_asset(asset)
        if graph:
            drawn = graph_of(mesh, asset_id)
            title = f"{asset_id[:12]}  {', '.join(mesh.store.asset(asset_id).names)}"
            if suffix == ".svg":
                to.write_text(pictures.graph_svg(drawn, title), encoding="utf-8")
            else:
                pictures.graph_png(drawn, title).save(to)
        else:
            thumbs, table, groups = _title_values(mesh, asset_id)
            if timeline:
                picture = pictures.timeline(thumbs, table, groups, width=width)
            else:
                picture = pictures.contact_sheet(thumbs, table, columns=columns)
            picture.convert("RGB").save(to)
    err.print(f"wrote {to}")


def graph_of(mesh: Mesh, asset_id: str) -> pictures.FeatureGraph:
    """The registry's graph for one asset, each feature in the state ``Mesh.status`` gives its current value."""
    from mediamesh.orchestrator.interfaces import pictures

    _asset, states = mesh.status(asset_id)
    current: dict[str, FeatureState] = {}
    for state in states:
        current.setdefault(state.feature, state)  # the planned (current) value comes before other versions
    return pictures.feature_graph(
        mesh.registry, {n: s.state for n, s in current.items()}, {n: s.version for n, s in current.items()}
    )


def _title_values(mesh: Mesh, asset_id: str) -> tuple[ShotThumbnails, ShotTable, DedupMap]:
    """The asset's thumbnails, shot table and dedup map, the thumbnails (and what they need) computed if missing."""
    if not _stored(mesh, asset_id, "thumbnails"):
        with progress_bar() as bar:
            report = mesh.backfill("thumbnails", assets=[asset_id], progress=RichProgress(bar))
        if report.outage is not None:
            raise report.outage
        if report.failed:
            for line in report.assets[asset_id].errors:
                err.print(f"[red]error:[/red] {escape(line)}", highlight=False)
            raise typer.Exit(1)
    values: list[Any] = [mesh.read(asset_id, name)[1] for name in ("thumbnails", "shots", "dedup")]
    thumbs, table, groups = values
    return thumbs, table, groups


def _stored(mesh: Mesh, asset_id: str, feature: str) -> bool:
    try:
        reads.find(mesh.store, mesh.registry, asset_id, feature)
    except ValueNotFoundError:
        return False
    return True
