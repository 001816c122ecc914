"""Commands that compute: ingest files, backfill a feature, watch a landing prefix, run the demo."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from mediamesh.features.errors import BackendUnavailableError
from mediamesh.features.models import pretrained_available
from mediamesh.features.values import TitleMetadata
from mediamesh.orchestrator.interfaces.cli.console import RichProgress, err, out, progress_bar
from mediamesh.orchestrator.mesh import IngestResult, Mesh
from mediamesh.store import StoreSettings

__all__ = ["backfill", "demo", "ingest", "watch"]


def _ingest(
    mesh: Mesh, paths: list[str], subtitles: list[Path] | None = None, title: TitleMetadata | None = None
) -> list[IngestResult]:
    with progress_bar() as progress:
        hashing = progress.add_task("hashing and registering", total=len(paths))
        engine_progress = RichProgress(progress)

        def hashed(_: str) -> None:
            progress.advance(hashing)

        def server_starting() -> None:
            progress.console.print("starting the local Prefect server (first time only; it is reused later)")

        return mesh.ingest(
            paths,
            progress=engine_progress,
            on_hashed=hashed,
            on_server_start=server_starting,
            subtitles=subtitles or (),
            title=title,
        )


def ingest(
    paths: Annotated[list[str], typer.Argument(help="Video files to register and compute.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON list, an object per input.")] = False,
    subtitles: Annotated[
        list[Path] | None,
        typer.Option("--subtitles", help="A subtitle file (.srt/.vtt) for the one PATH; sidecars are found anyway."),
    ] = None,
    title: Annotated[str | None, typer.Option(help="The title's name, for its [GLOBAL] context.")] = None,
    synopsis: Annotated[str | None, typer.Option(help="The title's synopsis.")] = None,
    tags: Annotated[str | None, typer.Option(help="Comma-separated tags, e.g. 'comedy,animation'.")] = None,
) -> None:
    """Register each file and compute every feature it lacks. Exit 0 only if every input succeeded.

    Sidecars beside a video are attached to it: subtitles with the same stem (.srt or .vtt, e.g.
    movie.en.srt) and title metadata in movie.json ({"title": ..., "synopsis": ..., "tags": [...]}).
    """
    metadata = None
    if title or synopsis or tags:
        metadata = TitleMetadata.from_json({"title": title, "synopsis": synopsis, "tags": tags or ()})
    if (subtitles or metadata) and len(paths) != 1:
        raise typer.BadParameter("--subtitles, --title, --synopsis and --tags go with exactly one PATH")
    try:
        with Mesh.open() as mesh:
            results = _ingest(mesh, paths, subtitles, metadata)
    except BackendUnavailableError as exc:
        results = [IngestResult(path=p, errors=[str(exc)]) for p in paths]
    if as_json:
        out.print_json(json.dumps([r.to_json() for r in results]))
    else:
        queued = any(r.queued for r in results)  # handed to the work pools (MEDIAMESH_EXECUTION=pools)
        table = Table("input", "asset", "computed", "reused", "failed", *(["queued"] if queued else []))
        for r in results:
            counts = [str(r.computed), str(r.reused), str(r.failed), *([str(r.queued)] if queued else [])]
            table.add_row(r.path, (r.asset or "-")[:12], *counts)
        out.print(table)
    # An outage is the same line on every input: print each distinct line once.
    for message in dict.fromkeys(m for r in results for m in r.errors):
        err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    for r in results:
        if r.asset is None and r.detail:  # a sidecar whose video is not registered: nothing was ingested
            err.print(f"note: {escape(r.path)}: {escape(r.detail)}", highlight=False)
    raise typer.Exit(0 if all(r.ok for r in results) else 1)


def backfill(
    feature: Annotated[str, typer.Argument(help="FEATURE or FEATURE@VERSION (the registry's version).")],
    assets: Annotated[
        list[str] | None, typer.Option("--assets", help="Only these assets (ids, names, prefixes, files).")
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help='Print {"feature", "computed", "reused", "failed", "assets": [{"asset", ..., "errors"}]}.'
        ),
    ] = False,
) -> None:
    """Compute a feature, and what it needs, for every asset that lacks it."""
    name, _, version = feature.partition("@")
    with Mesh.open() as mesh:
        spec = mesh.registry.resolve(name)
        if version and version != spec.version:
            raise typer.BadParameter(f"the registry has {spec.ref}, not {name}@{version}", param_hint="FEATURE")
        ids = [mesh.store.resolve_local_asset(a) for a in assets] if assets else None
        with progress_bar() as progress:
            report = mesh.backfill(spec.name, assets=ids, progress=RichProgress(progress))
    if as_json:
        counts = {"computed": report.computed, "reused": report.reused, "failed": report.failed}
        per_asset = [asdict(a) for a in report.assets.values()]
        out.print_json(json.dumps({"feature": spec.ref, **counts, "assets": per_asset}))
    else:
        out.print(f"{spec.ref}: computed {report.computed}, reused {report.reused}, failed {report.failed}")
    for asset in report.assets.values():
        for message in asset.errors:
            err.print(f"[red]error:[/red] {asset.asset[:12]}: {escape(message)}", highlight=False)
    raise typer.Exit(0 if report.failed == 0 else 1)


def watch(
    # Rich reads "[/PREFIX]" as a closing tag; the backslash makes it text.
    source: Annotated[str, typer.Argument(help="s3://BUCKET\\[/PREFIX] (read with MEDIAMESH_S3_*) or a directory.")],
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between passes.")] = 60.0,
    once: Annotated[bool, typer.Option(help="One pass, then exit.")] = False,
) -> None:
    """Reconcile a landing prefix or a directory with the store: register what events missed and hand on what
    any asset there lacks (to the work pools with MEDIAMESH_EXECUTION=pools, else computed here)."""
    import time

    from mediamesh.orchestrator.execution.dispatch import PoolRuns
    from mediamesh.orchestrator.interfaces.watch import Watcher

    with Mesh.open() as mesh:
        watcher = Watcher(mesh, source)
        where = "the work pools" if isinstance(mesh.dispatcher, PoolRuns) else "this process"
        err.print(f"watching {source} every {interval:g} s; work goes to {where}")
        try:
            while True:
                with progress_bar() as progress:
                    done = watcher.reconcile(RichProgress(progress))
                out.print(
                    f"{done.listed} object(s), {len(done.registered)} new, {len(done.dispatched)} asset(s) handed on, "
                    f"{len(done.errors)} error(s)",
                    highlight=False,
                )
                for message in done.errors:
                    err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
                if once:
                    raise typer.Exit(1 if done.errors else 0)
                time.sleep(interval)
        except KeyboardInterrupt:
            err.print("watch stopped")


def demo() -> None:
    """Ingest the bundled sample clips on the embedded default and show what was computed and where."""
    settings = StoreSettings()
    samples = sorted(
        Path(str(p))
        for p in resources.files("mediamesh.orchestrator").joinpath("samples").iterdir()
        if str(p).endswith(".mp4")
    )
    err.print(f"mediamesh demo: {len(samples)} sample clip(s), home {settings.home_dir}")
    if not os.environ.get("MEDIAMESH_ENCODERS") and not pretrained_available():
        os.environ["MEDIAMESH_ENCODERS"] = "lite"
        out.print(
            "pretrained video/audio weights are not available locally, so the demo uses the lite encoder set: "
            "model-free colour, edge and DCT descriptors for video, log-mel statistics for audio, and the shipped "
            "MiniLM for text. Lite values have their own identity and never mix with model embeddings.",
            highlight=False,
        )
        config = Path(os.environ.get("MEDIAMESH_CONFIG") or settings.home_dir / "mediamesh.toml").expanduser()
        if not config.exists():
            # So that status, read and serve in this home see the values the demo computed, not missing ones.
            config.parent.mkdir(parents=True, exist_ok=True)
            config.write_text('# Written by `mediamesh demo`: no pretrained weights here.\n[encoders]\nset = "lite"\n')
            out.print(
                f'wrote {config} ([encoders] set = "lite"): later commands here use the lite set too', markup=False
            )
    with Mesh.open(settings=settings) as mesh:
        results = _ingest(mesh, [str(p) for p in samples])
        for result in results:
            out.print(
                f"\n[bold]{Path(result.path).name}[/bold]  asset {(result.asset or '-')[:12]}  "
                f"computed {result.computed}, reused {result.reused}, failed {result.failed}",
                highlight=False,
            )
            for message in result.errors:
                err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
            if result.asset is None:
                continue
            _, states = mesh.status(result.asset)
            table = Table("feature@version", "state", "seconds", "stored at")
            for s in states:
                record = mesh.store.value(s.key) if s.state == "stored" else None
                where = f"{mesh.store.blobs.describe()}/{record.blob_key}" if record else ""
                table.add_row(
                    f"{s.feature}@{s.version}",
                    s.state,
                    f"{s.duration_s:.2f}" if s.duration_s is not None else "",
                    where,
                )
            out.print(table)
            if any(s.feature == "shots" and s.state == "stored" for s in states):
                _, shot_table = mesh.read(result.asset, "shots")
                cuts = ", ".join(f"{s.start_time:.2f}s" for s in shot_table.shots[1:]) or "none"
                out.print(f"{len(shot_table)} shot(s); cuts at {cuts}", highlight=False)
            if any(s.feature == "fused" and s.state == "stored" for s in states):
                _, fused_value = mesh.read(result.asset, "fused")
                rows, dims = fused_value.data.shape
                out.print(f"fused tri-modal vectors: {rows} x {dims} float32 (one per shot)", highlight=False)
        url = mesh.store.database_url_for_display()
    out.print(f"\nvalues are rows in {url} and blobs in the object store above.", highlight=False)
    out.print("try: mediamesh status <asset> | mediamesh read <asset> shots --json | mediamesh features")
    raise typer.Exit(0 if all(r.ok for r in results) else 1)
