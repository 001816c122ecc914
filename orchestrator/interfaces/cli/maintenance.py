"""Commands that look after the store: collect orphan blobs, scrub blobs, migrate the schema."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

from mediamesh.orchestrator.interfaces.cli.console import err, out, progress_bar
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.store import StoreSettings, migrate_store

__all__ = ["gc", "migrate", "verify"]


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
    with Mesh.open() as mesh, progress_bar() as progress:
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


def migrate() -> None:
    """Bring the database schema to the newest migration as the owner role (MEDIAMESH_OWNER_DATABASE_URL) and
    grant the application role (MEDIAMESH_DATABASE_URL's) its privileges; with PREFECT_API_URL set, create the
    work pools and deployments too. Safe to run again, and from several processes at once."""
    settings = StoreSettings()
    app_role = migrate_store(settings)
    with Mesh.open(settings=settings) as mesh:
        url = mesh.store.database_url_for_display()
        blobs = mesh.store.blobs.describe()
    out.print(f"database {url} is up to date; object store {blobs}", highlight=False)
    if app_role is None:
        err.print(
            "note: the service connects as the role that owns the schema; set MEDIAMESH_OWNER_DATABASE_URL to "
            "the owner and MEDIAMESH_DATABASE_URL to an application role that may only read and append",
            highlight=False,
        )
    if os.environ.get("PREFECT_API_URL"):
        from mediamesh.orchestrator.execution.dispatch import PoolSettings
        from mediamesh.orchestrator.execution.workers import ensure_pools

        pools = PoolSettings()
        ensure_pools(pools)
        out.print(f"work pools {pools.cpu_pool} and {pools.gpu_pool} with their deployments are in place")
