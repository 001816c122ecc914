"""``mediamesh search`` (text, image, similar, time) and ``mediamesh index`` (status, rebuild)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from mediamesh.features.errors import DefinitionError
from mediamesh.orchestrator.interfaces.cli.console import ASSET_HELP, err, out, progress_bar
from mediamesh.orchestrator.mesh import Mesh

__all__ = ["index_app", "search_app"]

search_app = typer.Typer(
    help="Search the indexes: dialogue and visual text, an image, shots like a shot, a time range.",
    no_args_is_help=True,
)
index_app = typer.Typer(help="The search indexes: how far each is in sync, and rebuilding one.", no_args_is_help=True)

_Top = Annotated[int, typer.Option("--top", "-k", help="How many hits.")]
_Offset = Annotated[int, typer.Option(help="Hits to skip (the next page).")]
_Assets = Annotated[
    list[str] | None, typer.Option("--assets", help=f"Only these assets (repeatable or comma-separated). {ASSET_HELP}")
]
_Tags = Annotated[list[str] | None, typer.Option("--tag", help="Only titles with this tag (repeatable).")]
_Pin = Annotated[
    list[str] | None, typer.Option("--version", help="Pin a feature's version: FEATURE@VERSION (repeatable).")
]
_Group = Annotated[bool, typer.Option("--group", help="Group hits by title.")]
_Json = Annotated[
    bool,
    typer.Option(
        "--json",
        help='Print {"hits": [{"asset", "name", "shot", "start_time", "end_time", "score", '
        '"sources", "cue", "link"}], "versions", "notes"}.',
    ),
]


@search_app.command("text")
def text(
    query: Annotated[str, typer.Argument(help="Words said (dialogue) or a description of what is seen (visual).")],
    sources: Annotated[str, typer.Option("--in", help="Where to look: dialogue, visual, or both.")] = "dialogue,visual",
    languages: Annotated[
        list[str] | None, typer.Option("--language", help="Only dialogue cues in this language (repeatable).")
    ] = None,
    start: Annotated[float | None, typer.Option("--from", help="Only shots overlapping from this second.")] = None,
    end: Annotated[float | None, typer.Option("--to", help="... up to this second.")] = None,
    top: _Top = 10,
    offset: _Offset = 0,
    assets: _Assets = None,
    tags: _Tags = None,
    versions: _Pin = None,
    group: _Group = False,
    as_json: _Json = False,
) -> None:
    """Shots whose dialogue says QUERY, or (with a CLIP video model) that look like it."""
    chosen = [s.strip() for s in sources.split(",") if s.strip()]
    _run(
        {"kind": "text", "text": query, "sources": chosen, "languages": languages, "start": start, "end": end},
        top,
        offset,
        assets,
        tags,
        versions,
        group,
        as_json,
    )


@search_app.command("image")
def image(
    file: Annotated[Path, typer.Argument(help="A picture (JPEG, PNG, ...): shots that look like it.")],
    top: _Top = 10,
    offset: _Offset = 0,
    assets: _Assets = None,
    tags: _Tags = None,
    versions: _Pin = None,
    group: _Group = False,
    as_json: _Json = False,
) -> None:
    """Reverse shot search: the shots whose video embedding is nearest the picture's."""
    if not file.is_file():
        raise DefinitionError(f"{file}: no such image file")
    _run({"kind": "image"}, top, offset, assets, tags, versions, group, as_json, image=file)


@search_app.command("similar")
def similar(
    asset: Annotated[str, typer.Argument(help=ASSET_HELP)],
    shot: Annotated[int, typer.Argument(help="The shot, 0-based.")],
    top: _Top = 10,
    offset: _Offset = 0,
    assets: _Assets = None,
    tags: _Tags = None,
    versions: _Pin = None,
    group: _Group = False,
    as_json: _Json = False,
) -> None:
    """The shots most like ASSET's shot SHOT (video and fused vectors), itself left out."""
    _run({"kind": "similar", "asset": asset, "shot": shot}, top, offset, assets, tags, versions, group, as_json)


@search_app.command("time")
def time_range(
    start: Annotated[float, typer.Argument(metavar="FROM", help="Seconds.")],
    end: Annotated[float, typer.Argument(metavar="TO", help="Seconds (exclusive).")],
    top: _Top = 100,
    offset: _Offset = 0,
    assets: _Assets = None,
    tags: _Tags = None,
    versions: _Pin = None,
    group: _Group = False,
    as_json: _Json = False,
) -> None:
    """Every shot overlapping FROM..TO, title by title."""
    _run({"kind": "time", "start": start, "end": end}, top, offset, assets, tags, versions, group, as_json)


def _run(
    fields: dict[str, Any],
    top: int,
    offset: int,
    assets: list[str] | None,
    tags: list[str] | None,
    versions: list[str] | None,
    group: bool,
    as_json: bool,
    *,
    image: Path | None = None,
) -> None:
    from mediamesh.orchestrator.interfaces.search import SearchRequest

    pins = dict(_pin(p) for p in versions or ())
    with Mesh.open() as mesh:
        if fields.get("asset") is not None:
            fields["asset"] = mesh.store.resolve_local_asset(fields["asset"])
        refs = [r.strip() for a in assets or () for r in a.split(",") if r.strip()]
        chosen = [mesh.store.resolve_local_asset(r) for r in refs] if assets is not None else None
        try:
            request = SearchRequest(
                top=top, offset=offset, assets=chosen, tags=tags, versions=pins, group=group, **fields
            )
        except ValidationError as exc:
            raise DefinitionError(_first_error(exc)) from None
        answer = mesh.search(request, image=image)
    for note in answer.notes:
        err.print(f"[yellow]note:[/yellow] {escape(note)}", highlight=False)
    if as_json:
        out.print_json(json.dumps(answer.to_json()))
        return
    if not answer.hits:
        err.print("no hits")
        return
    table = Table("#", "title", "shot", "from", "to", "score", "found by", "cue")
    for rank, hit in enumerate(answer.hits, start=offset + 1):
        table.add_row(
            str(rank),
            escape(hit.name or hit.asset[:12]),
            str(hit.shot),
            f"{hit.start_time:.3f}" if hit.start_time is not None else "",
            f"{hit.end_time:.3f}" if hit.end_time is not None else "",
            f"{hit.score:.4f}",
            ", ".join(hit.sources),
            escape(f"{hit.cue['start']:.2f}-{hit.cue['end']:.2f} {hit.cue['text']}") if hit.cue else "",
        )
    out.print(table)
    out.print(f"versions: {', '.join(f'{k}={v}' for k, v in answer.versions.items())}", highlight=False)


def _pin(text: str) -> tuple[str, str]:
    feature, at, version = text.partition("@")
    if not at or not feature or not version:
        raise DefinitionError(f"--version {text!r}: write FEATURE@VERSION, e.g. video_embedding@2")
    return feature, version


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


@index_app.command("status")
def status(
    as_json: Annotated[
        bool, typer.Option("--json", help='Print [{"index", "feature", "version", "kind", "rows", ...}].')
    ] = False,
) -> None:
    """Per index and version: its rows, the values it holds, the values stored, and whether they agree."""
    with Mesh.open() as mesh:
        scopes = mesh.index_scopes()
    records: list[dict[str, Any]] = [
        {
            "index": s.index,
            "feature": s.feature,
            "version": s.version,
            "kind": s.kind,
            "rows": s.rows,
            "values_indexed": s.values_indexed,
            "values_stored": s.values_stored,
            "in_sync": s.in_sync,
        }
        for s in scopes
    ]
    if as_json:
        out.print_json(json.dumps(records))
        return
    table = Table("index", "feature@version", "kind", "rows", "values", "stored", "in sync")
    for r in records:
        table.add_row(
            r["index"],
            f"{r['feature']}@{r['version']}",
            r["kind"],
            str(r["rows"]),
            str(r["values_indexed"]),
            str(r["values_stored"]),
            "[green]yes[/]" if r["in_sync"] else "[red]no[/] (run `mediamesh index rebuild`)",
        )
    out.print(table)


@index_app.command("rebuild")
def rebuild(
    names: Annotated[
        list[str] | None, typer.Argument(metavar="[INDEX]...", help="Indexes to rebuild (default: all).")
    ] = None,
    version: Annotated[str | None, typer.Option(help="Only this version of the index's feature.")] = None,
    repair: Annotated[
        bool, typer.Option("--repair", help="Only add the values the index lacks; keep the rows it has.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help='Print [{"index", "dropped", "values", "rows"}].')] = False,
) -> None:
    """Drop an index's rows and derive them again from the stored values (or, with --repair, add what is missing)."""
    from mediamesh.orchestrator.execution.indexing import find_index, indexes_of
    from mediamesh.orchestrator.execution.indexing import rebuild as rebuild_index

    reports = []
    with Mesh.open() as mesh, progress_bar() as bar:
        indexes = indexes_of(mesh.registry)
        specs = [find_index(indexes, n) for n in names] if names else list(indexes)
        for spec in specs:
            task = bar.add_task(f"index {spec.name}", total=None)

            def advance(done: int, total: int, task: Any = task) -> None:
                bar.update(task, completed=done, total=total)

            reports.append(
                rebuild_index(mesh.store, mesh.registry, spec, version=version, drop=not repair, on_value=advance)
            )
    if as_json:
        out.print_json(json.dumps([r.__dict__ for r in reports]))
        return
    for r in reports:
        out.print(f"{r.index}: {r.dropped} rows dropped, {r.values} values indexed into {r.rows} rows", highlight=False)
