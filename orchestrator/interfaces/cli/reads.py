"""Commands that read the store: an asset's status, a value, the features, where things are."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.markup import escape
from rich.table import Table

from mediamesh.features.models import encoder_summary
from mediamesh.features.values import ArrayValue
from mediamesh.orchestrator.execution import manifest
from mediamesh.orchestrator.interfaces import reads
from mediamesh.orchestrator.interfaces.cli.console import ASSET_HELP, err, out
from mediamesh.orchestrator.interfaces.cli.quick import print_states
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.orchestrator.services.prefect_server import server_state
from mediamesh.store import StoreSettings, ValueRecord
from mediamesh.store.database import head_revision

__all__ = ["features", "info", "read", "status"]


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
        manifest.refresh(mesh.home, mesh.registry, head_revision())  # for the next call's catalogue read
    print_states(asset_id, names, states, as_json=as_json)


def read(
    asset: Annotated[str, typer.Argument(help="Asset id, unique prefix, or an ingested file.")],
    feature: Annotated[
        str, typer.Argument(help="Feature name or FEATURE@VERSION, e.g. shots; one only stored is read without code.")
    ],
    version: Annotated[
        str | None, typer.Option(help="Feature version (default: the promoted one, else the registry's).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the value as JSON (as the HTTP API's value; arrays with shape).")
    ] = False,
    to: Annotated[Path | None, typer.Option("--out", help="Write the value to a file (.npy for arrays).")] = None,
) -> None:
    """Read a stored value: tables as JSON, arrays (embeddings) to .npy, media files to a file."""
    with Mesh.open() as mesh:
        asset_id = mesh.store.resolve_local_asset(asset)
        record, _current = reads.find(mesh.store, mesh.registry, asset_id, feature, version)
        manifest.refresh(mesh.home, mesh.registry, head_revision())  # for the next call's catalogue read
        if to is not None and record.payload_kind == "file":
            _copy_verified(mesh, record, to)
            err.print(f"wrote {record.ref} of {record.asset_id[:12]} to {to}")
            return
        value = reads.load(mesh.store, mesh.registry, record)
        if to is not None:
            _write_value(record, value, to)
            err.print(f"wrote {record.ref} of {record.asset_id[:12]} to {to}")
        elif as_json:
            out.print_json(json.dumps(reads.render(record, value)))
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


def _write_value(record: ValueRecord, value: Any, to: Path) -> None:
    """Arrays as .npy, anything else as the JSON ``read --json`` prints."""
    if isinstance(value, ArrayValue | np.ndarray):
        np.save(to, reads.array_of(value), allow_pickle=False)
    else:
        to.write_text(json.dumps(reads.render(record, value), indent=2))


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


def info(
    as_json: Annotated[
        bool,
        typer.Option("--json", help='Print {"home", "database", "object_store", "prefect_api", "encoders": {...}}.'),
    ] = False,
) -> None:
    """The database, object store and Prefect API in use."""
    settings = StoreSettings()
    with Mesh.open(settings=settings) as mesh:
        url = mesh.store.database_url_for_display()
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
