"""The ``mediamesh`` command line (Typer + Rich). Progress and errors go to stderr; data to stdout."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from mediamesh.features.errors import BackendUnavailableError, MediameshError
from mediamesh.features.models import encoder_summary, pretrained_available
from mediamesh.features.spec import MEDIAFM
from mediamesh.features.values import ArrayValue, FileValue, JsonValue, ShotTable, TitleMetadata
from mediamesh.orchestrator.execution.planner import PlannedValue
from mediamesh.orchestrator.mesh import IngestResult, Mesh
from mediamesh.orchestrator.services import lifecycle
from mediamesh.orchestrator.services.prefect_server import server_state, stop_prefect_server
from mediamesh.store import StoreSettings, ValueRecord, migrate_store

__all__ = ["app", "main"]

app = typer.Typer(
    name="mediamesh",
    help="A feature mesh for media ML: ingest videos, compute what they lack, read versioned values.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)
# How every command that takes an ASSET resolves it, in this order (README, "The CLI").
ASSET_HELP = "Asset id, recorded name, unique id prefix (any length), or a file whose bytes were ingested."


def main() -> None:
    # Before any command imports Prefect or torch: they read where to write when imported.
    lifecycle.enter(StoreSettings().home_dir)
    try:
        app()
    except MediameshError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        sys.exit(1)


class _RichProgress:
    """Engine progress as a Rich bar: one step per value computed."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task_id = progress.add_task("computing", total=None)
        self.lock = threading.Lock()

    def planned(self, count: int) -> None:
        self.progress.update(self.task_id, total=count)

    def started(self, value: PlannedValue) -> None:
        self.progress.update(self.task_id, description=f"{value.ref} {value.asset[:12]}")

    def finished(self, value: PlannedValue, outcome: str) -> None:
        with self.lock:
            self.progress.advance(self.task_id)


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


def _ingest(
    mesh: Mesh, paths: list[str], subtitles: list[Path] | None = None, title: TitleMetadata | None = None
) -> list[IngestResult]:
    with _progress() as progress:
        hashing = progress.add_task("hashing and registering", total=len(paths))
        engine_progress = _RichProgress(progress)

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


@app.command()
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
        table = Table("input", "asset", "computed", "reused", "failed")
        for r in results:
            table.add_row(r.path, (r.asset or "-")[:12], str(r.computed), str(r.reused), str(r.failed))
        out.print(table)
    # An outage is the same line on every input: print each distinct line once.
    for message in dict.fromkeys(m for r in results for m in r.errors):
        err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(0 if all(r.ok for r in results) else 1)


@app.command()
def status(
    asset: Annotated[str, typer.Argument(help=ASSET_HELP)],
    as_json: Annotated[
        bool, typer.Option("--json", help='Print {"asset", "names", "features": [{"feature", "state", ...}]}.')
    ] = False,
) -> None:
    """Each feature@version of an asset with its state, timing and worker."""
    with Mesh.open() as mesh:
        asset_id, states = mesh.status(mesh.store.resolve_local_asset(asset))
        names = mesh.store.asset(asset_id).names
    if as_json:
        features = [{**asdict(s), "at": s.at.isoformat() if s.at else None} for s in states]
        out.print_json(json.dumps({"asset": asset_id, "names": list(names), "features": features}))
        return
    out.print(f"asset [bold]{asset_id}[/bold]  {', '.join(names)}", highlight=False)
    table = Table("feature@version", "state", "seconds", "worker", "at", "detail")
    colours = {"stored": "green", "running": "yellow", "failed": "red", "waiting": "cyan", "missing": "dim"}
    for s in states:
        table.add_row(
            f"{s.feature}@{s.version}",
            f"[{colours[s.state]}]{s.state}[/]",
            f"{s.duration_s:.2f}" if s.duration_s is not None else "",
            s.worker or "",
            s.at.strftime("%Y-%m-%d %H:%M:%S") if s.at else "",
            s.detail,
        )
    out.print(table)


@app.command()
def read(
    asset: Annotated[str, typer.Argument(help="Asset id, unique prefix, or an ingested file.")],
    feature: Annotated[
        str, typer.Argument(help="Feature name or FEATURE@VERSION, e.g. shots; one only stored is read without code.")
    ],
    version: Annotated[
        str | None, typer.Option(help="Feature version (default: the promoted one, else the registry's).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the value as JSON.")] = False,
    to: Annotated[Path | None, typer.Option("--out", help="Write the value to a file (.npy for arrays).")] = None,
) -> None:
    """Read a stored value: tables as JSON, arrays (embeddings) to .npy, media files to a file."""
    with Mesh.open() as mesh:
        record, value = mesh.read(mesh.store.resolve_local_asset(asset), feature, version)
        if to is not None and record.payload_kind == "file":
            _copy_verified(mesh, record, to)
            err.print(f"wrote {record.ref} of {record.asset_id[:12]} to {to}")
        elif to is not None:
            _write_value(value, to)
            err.print(f"wrote {record.ref} of {record.asset_id[:12]} to {to}")
        elif as_json and isinstance(value, Path):  # a media file read without its code: its stored metadata
            out.print_json(json.dumps({"path": str(value), **record.meta}))
        elif as_json:
            out.print_json(json.dumps(_jsonable(value)))
        else:
            _describe(record, mesh.store.lineage(record.key))


def _copy_verified(mesh: Mesh, record: ValueRecord, to: Path) -> None:
    """Copy a media file value whole, hashed as it goes; a corrupt one leaves no file behind."""
    try:
        with to.open("wb") as fh:
            for chunk in mesh.store.stream_value(record):
                fh.write(chunk)
    except BaseException:
        to.unlink(missing_ok=True)
        raise


def _write_value(value: Any, to: Path) -> None:
    if isinstance(value, FileValue):
        shutil.copyfile(value.path, to)
    elif isinstance(value, ArrayValue):
        np.save(to, value.data, allow_pickle=False)
    elif isinstance(value, np.ndarray):
        np.save(to, value, allow_pickle=False)
    elif isinstance(value, JsonValue | dict | list):
        to.write_text(json.dumps(_jsonable(value), indent=2))
    else:
        raise typer.BadParameter(f"cannot write a {type(value).__name__} to a file")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict | list):  # a JSON document read without its feature's code, as it is stored
        return value
    if isinstance(value, ShotTable):
        return value.records()
    if isinstance(value, JsonValue):
        return value.to_json()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, ArrayValue):
        return {"shape": list(value.data.shape), "meta": value.meta, "data": value.data.tolist()}
    if isinstance(value, FileValue):
        return {"path": str(value.path), **value.to_meta()}
    raise typer.BadParameter(f"a {type(value).__name__} has no JSON form; use --out")


def _describe(record: Any, lineage: list[tuple[str, str]]) -> None:
    table = Table(show_header=False)
    for name in (
        "key",
        "asset_id",
        "feature",
        "version",
        "params",
        "model_fingerprint",
        "code_fingerprint",
        "payload_kind",
        "blob_key",
        "shape",
        "dtype",
        "bytes",
        "checksum",
        "xxh3",
        "duration_s",
        "worker",
        "device",
        "created_at",
    ):
        table.add_row(name, str(getattr(record, name)))
    for name, key in lineage:
        table.add_row(f"input {name}", key)
    out.print(table)
    err.print("use --json or --out FILE to get the value itself")


@app.command()
def features(
    check: Annotated[bool, typer.Option(help="Exit non-zero where code changed but the version did not.")] = False,
    stored: Annotated[
        bool, typer.Option("--stored", help="The store's catalogue: every feature version ever computed.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a list of objects as JSON.")] = False,
) -> None:
    """The registry: each feature with its version, resources, inputs and code fingerprint (--stored: the store's
    catalogue, which needs no code: what each stored version is, where it came from, and which is promoted)."""
    if stored:
        _stored_features(as_json)
        return
    with Mesh.open() as mesh:
        recorded = mesh.store.recorded_fingerprints()
        registry = mesh.registry
    table = Table("feature", "version", "resources", "inputs", "params", "fingerprint", "recorded")
    rows: list[dict[str, Any]] = []
    changed = []
    for name in registry:
        spec = registry[name]
        seen = recorded.get((spec.name, spec.version), set())
        if not seen:
            note = "[dim]new[/dim]"
        elif spec.fingerprint in seen and len(seen) == 1:
            note = "[green]matches[/green]"
        else:
            note = "[red]code changed, version did not[/red]"
            changed.append(spec.ref)
        params = ", ".join(f"{k}={v!r}" for k, v in spec.params.items())
        table.add_row(
            spec.name,
            spec.version,
            spec.resources,
            ", ".join(spec.input_names),
            params,
            spec.fingerprint[:12],
            note,
        )
        rows.append(
            {
                "feature": spec.name,
                "version": spec.version,
                "resources": spec.resources,
                "inputs": list(spec.input_names),
                "params": dict(spec.params),
                "fingerprint": spec.fingerprint,
                "recorded": "new" if not seen else "changed" if spec.ref in changed else "matches",
            }
        )
    if as_json:
        out.print_json(json.dumps(rows, default=repr))
    else:
        out.print(table)
    if check and changed:
        err.print(f"[red]error:[/red] code changed without a version bump: {', '.join(changed)}")
        raise typer.Exit(1)


def _stored_features(as_json: bool) -> None:
    """Every feature version the store has values of, from the catalogue alone (no feature code is needed)."""
    with Mesh.open() as mesh:
        entries = mesh.store.catalogue()
        promoted = {name: mesh.store.promoted_version(name) for name in dict.fromkeys(e.name for e in entries)}
    if as_json:
        out.print_json(json.dumps([{**e.to_json(), "promoted": promoted[e.name] == e.version} for e in entries]))
        return
    table = Table("feature@version", "kind", "type", "module", "fingerprint", "params", "values", "first", "last")
    for e in entries:
        params = ", ".join(f"{k}={v!r}" for k, v in e.params.items())
        mark = " [green](promoted)[/green]" if promoted[e.name] == e.version else ""
        table.add_row(
            f"{e.ref}{mark}",
            e.payload_kind,
            escape(e.output_type),
            escape(e.module),
            e.fingerprint[:12],
            escape(params),
            f"{e.value_count} ({e.asset_count} assets)",
            e.first_computed.strftime("%Y-%m-%d %H:%M:%S"),
            e.last_computed.strftime("%Y-%m-%d %H:%M:%S"),
        )
    out.print(table)


@app.command()
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
        with _progress() as progress:
            report = mesh.backfill(spec.name, assets=ids, progress=_RichProgress(progress))
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


@app.command()
def promote(
    what: Annotated[str, typer.Argument(help="FEATURE@VERSION, or 'mediafm' for a trained checkpoint.")],
    checkpoint: Annotated[
        str | None,
        typer.Argument(help="With 'mediafm': the checkpoint id (or a unique prefix) from `mediamesh train`."),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help='Print {"feature", "version", "assets_with_it", "assets"} (or {"feature", "checkpoint"}).'
        ),
    ] = False,
) -> None:
    """Switch default readers of a feature to VERSION at once, or make a trained checkpoint the one the
    contextual features use. Readers pinned to a version keep it; nothing stored stops being readable.
    """
    if what == MEDIAFM:
        if checkpoint is None:
            raise typer.BadParameter("give the checkpoint id from `mediamesh train`", param_hint="CHECKPOINT")
        with Mesh.open() as mesh:
            record = mesh.store.promote(MEDIAFM, checkpoint)
        if as_json:
            out.print_json(json.dumps({"feature": MEDIAFM, "checkpoint": record.id}))
            return
        out.print(f"promoted {what} checkpoint {record.id[:12]}; compute it with: mediamesh backfill contextual")
        return
    name, _, version = what.partition("@")
    if not name or not version or checkpoint is not None:
        raise typer.BadParameter(f"give FEATURE@VERSION (e.g. shots@2) or 'mediafm CHECKPOINT', not {what!r}")
    with Mesh.open() as mesh:
        spec = mesh.registry.resolve(name)
        mesh.store.promote_feature(spec.name, version)
        having, total = mesh.store.version_coverage(spec.name, version)
    if as_json:
        out.print_json(
            json.dumps({"feature": spec.name, "version": version, "assets_with_it": having, "assets": total})
        )
    else:
        out.print(f"default readers of {spec.name} now get {spec.name}@{version}; {having} of {total} assets have it")
    if having < total:
        how = (
            f"mediamesh backfill {spec.ref}"
            if version == spec.version
            else f"the registry is at {spec.ref}, so backfill with one at {spec.name}@{version}"
        )
        err.print(
            f"[yellow]warning:[/yellow] {total - having} of {total} assets lack {spec.name}@{version}, so default "
            f"readers get nothing for them; backfill first ({how})",
            highlight=False,
        )


@app.command()
def train(
    what: Annotated[str, typer.Argument(help="What to train: 'mediafm'.")],
    config: Annotated[str, typer.Option(help="Model size: small (CPU, minutes) or base (GPU).")] = "small",
    epochs: Annotated[int | None, typer.Option(help="Passes over the training titles.")] = None,
    steps: Annotated[int | None, typer.Option(help="Optimizer steps (default 300 when --epochs is not given).")] = None,
    optimizer: Annotated[str, typer.Option(help="muon (Muon for hidden matrices + AdamW) or adamw.")] = "muon",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    promote_it: Annotated[bool, typer.Option("--promote", help="Promote the checkpoint when done.")] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='Print {"checkpoint", "config", "optimizer", "steps", "train_assets", "val_assets", "metrics", '
            '"promoted"}.',
        ),
    ] = False,
) -> None:
    """Train MediaFM by masked shot modeling on the fused values in the store; save the checkpoint there."""
    from mediamesh.orchestrator.execution.training import train_mediafm

    if what != MEDIAFM:
        raise typer.BadParameter(f"only {MEDIAFM!r} can be trained", param_hint="WHAT")
    if optimizer not in ("muon", "adamw"):
        raise typer.BadParameter("choose muon or adamw", param_hint="--optimizer")
    with Mesh.open() as mesh, _progress() as progress:
        task = progress.add_task("training MediaFM", total=None)

        def on_step(report: Any) -> None:
            val = f", val {report.val_loss:.4f}" if report.val_loss is not None else ""
            progress.update(
                task,
                total=report.steps,
                completed=report.step,
                description=f"training MediaFM: loss {report.train_loss:.4f}{val}",
            )

        record, meta = train_mediafm(
            mesh,
            config=config,
            steps=steps,
            epochs=epochs,
            optimizer="adamw" if optimizer == "adamw" else "muon",
            seed=seed,
            on_step=on_step,
        )
        if promote_it:
            mesh.store.promote(MEDIAFM, record.id)
    if as_json:
        fields = ("optimizer", "steps", "train_assets", "val_assets", "metrics")
        summary = {"checkpoint": record.id, "config": config, **{name: meta.get(name) for name in fields}}
        out.print_json(json.dumps({**summary, "promoted": promote_it}, default=str))
        return
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in meta["metrics"].items())
    out.print(f"checkpoint {record.id}", highlight=False)
    out.print(
        f"{config} config, {meta['optimizer']}, {meta['steps']} steps on {len(meta['train_assets'])} title(s), "
        f"{len(meta['val_assets'])} held out; {metrics}",
        highlight=False,
    )
    if promote_it:
        out.print("promoted; compute it with: mediamesh backfill contextual")
    else:
        out.print(f"promote it with: mediamesh promote mediafm {record.id[:12]}")


@app.command(name="eval")
def evaluate(
    checkpoint: Annotated[str | None, typer.Option(help="Checkpoint id or prefix (default: the promoted one).")] = None,
    labels: Annotated[Path | None, typer.Option(help="CSV of asset, shot index or time range, label.")] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help='Print {"retrieval": {NAME: {"top1", "top5", "mrr", "n"}}, "probe": {NAME: {...}} or null}.'
        ),
    ] = False,
) -> None:
    """Masked-shot retrieval on held-out titles (MediaFM vs the neighbour average), and a linear probe
    per representation (video, audio, text, fused, contextual) when --labels is given."""
    from mediamesh.orchestrator.execution.training import evaluate_probe, evaluate_retrieval

    with Mesh.open() as mesh:
        retrieval = evaluate_retrieval(mesh, checkpoint)
        probes = evaluate_probe(mesh, labels, checkpoint) if labels is not None else None
    if as_json:
        probe_json = {name: asdict(p) for name, p in probes.items()} if probes is not None else None
        out.print_json(json.dumps({"retrieval": {n: asdict(m) for n, m in retrieval.items()}, "probe": probe_json}))
        return
    table = Table("masked-shot retrieval", "top-1", "top-5", "MRR", "shots")
    for name, m in retrieval.items():
        table.add_row(name, f"{m.top1:.3f}", f"{m.top5:.3f}", f"{m.mrr:.3f}", str(m.n))
    out.print(table)
    if probes is not None:
        probe_table = Table("linear probe", "micro-AP", "macro-AP", "Kendall's tau", "train", "test")
        for name, p in probes.items():
            tau = f"{p.kendall_tau:.3f}" if p.kendall_tau is not None else "-"
            probe_table.add_row(name, f"{p.micro_ap:.3f}", f"{p.macro_ap:.3f}", tau, str(p.n_train), str(p.n_test))
        out.print(probe_table)


@app.command()
def info(
    as_json: Annotated[
        bool,
        typer.Option("--json", help='Print {"home", "database", "object_store", "prefect_api", "encoders": {...}}.'),
    ] = False,
) -> None:
    """The database, object store and Prefect API in use."""
    settings = StoreSettings()
    with Mesh.open(settings=settings) as mesh:
        url = mesh.store.engine.url.render_as_string(hide_password=True)
        blobs = mesh.store.blobs.describe()
    managed = server_state(settings.home_dir)
    if os.environ.get("PREFECT_API_URL"):
        prefect = os.environ["PREFECT_API_URL"]
    elif managed:
        prefect = f"{managed['url']} (local server, pid {managed['pid']})"
    else:
        prefect = "local server, started on first compute"
    database = url + ("" if settings.database_url else " (embedded)")
    if as_json:
        where = {"home": str(settings.home_dir), "database": database, "object_store": blobs}
        out.print_json(json.dumps({**where, "prefect_api": prefect, "encoders": encoder_summary()}))
        return
    table = Table(show_header=False)
    table.add_row("home", str(settings.home_dir))
    table.add_row("database", database)
    table.add_row("object store", blobs)
    table.add_row("prefect api", prefect)
    for role, summary in encoder_summary().items():
        table.add_row(f"{role} encoder", summary)
    out.print(table)


@app.command()
def gc(
    dry_run: Annotated[bool, typer.Option(help="List what would be removed.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help='Print {"removed" (or "would_remove"): [blob keys], "count": N}.')
    ] = False,
) -> None:
    """Remove blobs that no row refers to (left by a crash between blob and row). Assets, values, attachments
    (subtitles, title metadata) and artefacts (checkpoints) are all kept."""
    with Mesh.open() as mesh:
        removed = mesh.store.gc(dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    if as_json:
        out.print_json(json.dumps({verb.replace(" ", "_"): removed, "count": len(removed)}))
    else:
        out.print(f"{verb} {len(removed)} orphan blob(s)")


@app.command()
def verify(
    sample: Annotated[
        int | None, typer.Option(min=1, help="Check this many referenced blobs, chosen at random, not all.")
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='Print {"checked": N, "bytes": B, "missing": [...], "corrupt": [...]}, each entry '
            '{"blob", "values", "assets"}.',
        ),
    ] = False,
) -> None:
    """Re-hash every stored blob against the SHA-256, size and xxh3 its rows recorded, and report the missing
    and corrupt ones with the values and assets that use them (a scrub). Exit 1 if any is bad.

    In "values", a feature value is its key; any other row is TABLE:KEY (attachments:ASSET/KIND/SHA256 for
    subtitles and title metadata, artefacts:ID for checkpoints). "assets" lists the assets concerned.
    """
    with Mesh.open() as mesh, _progress() as progress:
        task = progress.add_task("verifying blobs", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = mesh.store.verify(sample=sample, progress=advance)
    if as_json:
        out.print_json(json.dumps(report.to_json()))
    else:
        out.print(
            f"checked {report.checked} blob(s), {report.bytes / (1 << 20):.1f} MiB: "
            f"{len(report.missing)} missing, {len(report.corrupt)} corrupt",
            highlight=False,
        )
        for label, bad in (("missing", report.missing), ("corrupt", report.corrupt)):
            for blob in bad:
                out.print(f"{label} {blob.key}: {blob.problem}", highlight=False)
                out.print(f"  values: {', '.join(blob.values) or '-'}", highlight=False)
                out.print(f"  assets: {', '.join(blob.assets) or '-'}", highlight=False)
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def stop() -> None:
    """Stop the local Prefect server this home started (the embedded Postgres stops on its own)."""
    stopped = stop_prefect_server(StoreSettings().home_dir)
    out.print("stopped the local Prefect server" if stopped else "no local Prefect server was running")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the HTTP API (OpenAPI at /docs): reads by version, and S3 / SeaweedFS event webhooks.

    Configured by MEDIAMESH_API_TOKEN, MEDIAMESH_API_OPEN_READS, MEDIAMESH_API_LANDING_BUCKETS and the store's
    MEDIAMESH_* variables; MEDIAMESH_EXECUTION=pools hands announced work to the worker pools.
    """
    from mediamesh.orchestrator.interfaces.api import ApiSettings
    from mediamesh.orchestrator.interfaces.api import serve as run_api

    try:
        run_api(host, port, ApiSettings())
    except KeyboardInterrupt:  # uvicorn has shut down gracefully and passes the signal on
        err.print("api stopped")


@app.command()
def migrate() -> None:
    """Bring the database schema to the newest migration as the owner role (MEDIAMESH_OWNER_DATABASE_URL) and
    grant the application role (MEDIAMESH_DATABASE_URL's) its privileges; with PREFECT_API_URL set, create the
    work pools and deployments too. Safe to run again, and from several processes at once."""
    settings = StoreSettings()
    app_role = migrate_store(settings)
    with Mesh.open(settings=settings) as mesh:
        url = mesh.store.engine.url.render_as_string(hide_password=True)
        blobs = mesh.store.blobs.describe()
    out.print(f"database {url} is up to date; object store {blobs}", highlight=False)
    if app_role is None:
        err.print(
            "note: the service connects as the role that owns the schema; set MEDIAMESH_OWNER_DATABASE_URL to "
            "the owner and MEDIAMESH_DATABASE_URL to an application role that may only read and append",
            highlight=False,
        )
    if os.environ.get("PREFECT_API_URL"):
        from prefect.client.orchestration import get_client

        from mediamesh.orchestrator.execution.workers import PoolSettings, ensure_deployments

        pools = PoolSettings()
        with get_client(sync_client=True) as client:
            ensure_deployments(client, pools)
        out.print(f"work pools {pools.cpu_pool} and {pools.gpu_pool} with their deployments are in place")


@app.command()
def worker(
    pool: Annotated[str, typer.Option(help="cpu: every feature not marked gpu; gpu: resources='gpu' features.")],
    limit: Annotated[
        int | None,
        typer.Option(help="Flow runs at once (default: 1 per visible GPU on the gpu pool, 1 on the cpu pool)."),
    ] = None,
    threads: Annotated[int, typer.Option(min=1, help="Values one flow run computes at once.")] = 1,
    name: Annotated[str | None, typer.Option(help="Worker name (default: POOL-HOST-PID).")] = None,
    poll: Annotated[float, typer.Option(min=0.2, help="Seconds between polls of the work pool.")] = 2.0,
    healthcheck_port: Annotated[
        int | None, typer.Option(help="Serve GET /health on this port (Prefect's worker health check).")
    ] = None,
) -> None:
    """Compute values handed to a work pool, until interrupted (Ctrl-C or SIGTERM)."""
    from mediamesh.orchestrator.execution.workers import run_worker
    from mediamesh.orchestrator.services.prefect_server import prefect_api_url

    if pool not in ("cpu", "gpu"):
        raise typer.BadParameter("choose cpu or gpu", param_hint="--pool")
    if limit is None:
        limit = _visible_gpus() if pool == "gpu" else 1
    if limit < 1:
        raise typer.BadParameter("at least 1", param_hint="--limit")
    api_url = prefect_api_url(StoreSettings().home_dir, on_start=lambda: err.print("starting the local Prefect server"))
    err.print(f"{pool} worker: {limit} flow run(s) at once, {threads} value(s) each; Prefect API {api_url}")
    try:
        run_worker(
            "gpu" if pool == "gpu" else "cpu",
            api_url=api_url,
            limit=limit,
            name=name,
            threads=threads,
            poll_s=poll,
            healthcheck_port=healthcheck_port,
        )
    except KeyboardInterrupt:
        err.print("worker stopped")


def _visible_gpus() -> int:
    """One flow run per GPU: CUDA devices torch sees, at least 1 (a GPU-pool worker without one uses the CPU)."""
    import torch

    return max(1, torch.cuda.device_count())


@app.command()
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
    from mediamesh.orchestrator.execution.planner import plan
    from mediamesh.orchestrator.execution.workers import PoolSettings
    from mediamesh.orchestrator.interfaces.watch import Watcher

    settings = PoolSettings()
    with Mesh.open() as mesh:
        pools = PoolRuns(settings) if settings.execution == "pools" else None

        def dispatch(assets: list[str], names: dict[str, str]) -> list[str]:
            if pools is not None:
                return pools.submit(mesh, assets, names, trigger="watch")
            the_plan = plan(mesh.store, mesh.registry, assets, mesh.default_targets())
            if not the_plan.missing:
                return []
            with _progress() as progress:
                mesh.run(the_plan, trigger="watch", names=names, progress=_RichProgress(progress))
            return list(dict.fromkeys(v.asset for v in the_plan.missing))

        watcher = Watcher(mesh, source, dispatch)
        where = "the work pools" if pools is not None else "this process"
        err.print(f"watching {source} every {interval:g} s; work goes to {where}")
        try:
            while True:
                done = watcher.reconcile()
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


@app.command(name="dev-stack")
def dev_stack(
    port: Annotated[int, typer.Option(help="API port (0: any free port).")] = 8000,
    landing_bucket: Annotated[str, typer.Option(help="The bucket whose new objects are ingested.")] = "landing",
) -> None:
    """The whole service on this machine, without Docker: embedded Postgres, SeaweedFS S3 with a landing bucket
    that notifies the API, the Prefect server, the API, a CPU worker and a GPU-pool worker. Writes
    $MEDIAMESH_HOME/stack.json; Ctrl-C or SIGTERM stops everything it started."""
    from mediamesh.orchestrator.services.devstack import DevStack

    settings = StoreSettings()
    try:
        with DevStack(settings.home_dir, api_port=port, landing_bucket=landing_bucket, log=err.print) as stack:
            out.print_json(json.dumps(stack.public_info))
            err.print(f"the API token and the S3 keys are in {stack.info_path} (mode 0600); Ctrl-C to stop")
            stack.wait()
    except KeyboardInterrupt:
        pass
    err.print("dev stack stopped")


@app.command()
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
        url = mesh.store.engine.url.render_as_string(hide_password=True)
    out.print(f"\nvalues are rows in {url} and blobs in the object store above.", highlight=False)
    out.print("try: mediamesh status <asset> | mediamesh read <asset> shots --json | mediamesh features")
    raise typer.Exit(0 if all(r.ok for r in results) else 1)
