"""``mediamesh status`` and ``mediamesh read ASSET FEATURE --json``, answered from the catalogue alone when they can be.

These are the commands people and scripts run most, and each is a whole process: what it imports costs more
than what it asks Postgres. The full path imports Typer, SQLAlchemy, Alembic, the feature modules and NumPy;
this one imports psycopg and Rich, plans from the registry's manifest (``execution/manifest.py``) and reads
through ``store/catalogue.py``. It answers only where it gives what the full path gives:

- the arguments are exactly ``status ASSET [--json]`` or ``read ASSET FEATURE --json [--version V]``;
- the manifest is current, and the home's embedded Postgres is already running (it is never started here);
- the asset is an id, a unique prefix or a name (a file to hash, an ambiguous or unknown reference is the full
  path's to resolve or to report), and a value read is a shot table in the home's own blobs, whole.

Anything else returns False before a byte is printed, and ``cli.main`` takes the full path, which also
writes the manifest this path needs.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mediamesh.features.identity import MEDIAFM, SOURCE, SUBTITLES, TITLE, KeyPrefix, attachment_set_key
from mediamesh.orchestrator.execution.manifest import Manifest, load
from mediamesh.orchestrator.execution.states import FeatureState, PlannedState, feature_states
from mediamesh.store.catalogue import CatalogueReader, CatalogueUnavailable

__all__ = ["main", "print_states"]

#: How ``status`` colours each state, on both paths.
COLOURS = {"stored": "green", "running": "yellow", "failed": "red", "waiting": "cyan", "missing": "dim"}


@dataclass(frozen=True)
class _Request:
    command: str
    asset: str
    as_json: bool
    feature: str = ""
    version: str | None = None


def main(argv: Sequence[str]) -> bool:
    """Answer ``argv`` (without the program name) if this path can: True when it printed the answer."""
    request = _parse(list(argv))
    if request is None:
        return False
    home = Path(os.environ.get("MEDIAMESH_HOME") or ".mediamesh").expanduser().resolve()
    manifest = load(home)
    if manifest is None:
        return False
    try:
        with CatalogueReader.open(home, manifest.schema) as reader:
            answer = _status if request.command == "status" else _read
            show = answer(reader, manifest, request)
    except CatalogueUnavailable:
        return False
    show()
    return True


def print_states(asset_id: str, names: Sequence[str], states: Sequence[FeatureState], *, as_json: bool) -> None:
    """``mediamesh status``'s output, on either path: a table, or one JSON document."""
    if as_json:
        features = [{**asdict(s), "at": s.at.isoformat() if s.at else None} for s in states]
        _print_json({"asset": asset_id, "names": list(names), "features": features})
        return
    from rich.console import Console
    from rich.table import Table

    out = Console(soft_wrap=True)
    out.print(f"asset [bold]{asset_id}[/bold]  {', '.join(names)}", highlight=False)
    table = Table("feature@version", "state", "seconds", "worker", "at", "detail")
    for s in states:
        table.add_row(
            f"{s.feature}@{s.version}",
            f"[{COLOURS[s.state]}]{s.state}[/]",
            f"{s.duration_s:.2f}" if s.duration_s is not None else "",
            s.worker or "",
            s.at.strftime("%Y-%m-%d %H:%M:%S") if s.at else "",
            s.detail,
        )
    out.print(table)


def _parse(args: list[str]) -> _Request | None:
    """The request, if the arguments are one this path takes (and nothing else: no help, no other option)."""
    as_json = "--json" in args
    words = [a for a in args if a != "--json"]
    if not words:
        return None
    version = None
    if words[0] == "read" and len(words) == 5 and words[3] == "--version":
        version, words = words[4], words[:3]
    elif words[0] == "read" and len(words) == 4 and words[3].startswith("--version="):
        version, words = words[3].removeprefix("--version="), words[:3]
    if any(w.startswith("-") for w in words):
        return None
    if words[0] == "status" and len(words) == 2 and args.count("--json") <= 1:
        return _Request("status", words[1], as_json)
    if words[0] == "read" and len(words) == 3 and as_json and args.count("--json") == 1:
        return _Request("read", words[1], True, words[2], version)
    return None


def _status(reader: CatalogueReader, manifest: Manifest, request: _Request) -> Callable[[], None]:
    asset = reader.resolve_asset(request.asset)
    keys = _keys(reader, manifest, asset)
    planned = [PlannedState(f.name, f.version, keys[f.name], f.needs_checkpoint) for f in manifest.features]
    states = feature_states(
        planned,
        reader.values_for(asset),
        reader.live_claims(asset),
        reader.attempts_for(asset),
        checkpoint_promoted=reader.promoted_artefact(MEDIAFM) is not None,
        registered={f.name for f in manifest.features},
    )
    names = reader.names(asset)
    return lambda: print_states(asset, names, states, as_json=request.as_json)


def _read(reader: CatalogueReader, manifest: Manifest, request: _Request) -> Callable[[], None]:
    """As ``interfaces/reads.find`` chooses the record (the promoted version, else the registry's), for a
    feature whose values are shot tables."""
    name, at, pinned = request.feature.partition("@")
    version = request.version
    if at:
        if version is not None and version != pinned:
            raise CatalogueUnavailable("two versions asked for")  # the full path says so
        version = pinned
    spec = manifest.feature(name)
    if spec is None or not spec.shot_table:
        raise CatalogueUnavailable(f"{name!r} is not a shot table this path renders")
    asset = reader.resolve_asset(request.asset)
    wanted = version if version is not None else reader.promoted_version(name)
    record = reader.value(_keys(reader, manifest, asset)[name]) if wanted in (None, spec.version) else None
    if record is None:
        candidates = reader.values_for(asset, name, wanted)
        record = candidates[0] if candidates else None
    if record is None or record.payload_kind != "json":
        raise CatalogueUnavailable("no such value here")  # the full path names what is missing
    document = json.loads(reader.value_bytes(record))
    rows = document.get("shots") if isinstance(document, dict) else None
    fields = manifest.shot_fields
    if not isinstance(rows, list) or any(not isinstance(r, dict) or sorted(r) != sorted(fields) for r in rows):
        raise CatalogueUnavailable("a shot table stored in another form")
    # As ``ShotTable.records()`` gives them: each row's fields in the order ``Shot`` declares them.
    records = [{name: row[name] for name in fields} for row in rows]
    return lambda: _print_json(records)


def _keys(reader: CatalogueReader, manifest: Manifest, asset: str) -> dict[str, str]:
    """Every feature's value key for ``asset``, as ``execution/planner.plan`` keys them."""
    keys = {SOURCE: asset}
    for feature in manifest.features:
        for root in feature.inputs:
            if root in keys:
                continue
            if root in (SUBTITLES, TITLE):
                keys[root] = attachment_set_key(root, reader.attachment_files(asset, root), asset)
            elif root == MEDIAFM:
                promoted = reader.promoted_artefact(MEDIAFM)
                keys[root] = attachment_set_key(MEDIAFM, [(None, promoted)] if promoted else [])
        inputs = [keys[i] for i in feature.inputs]
        keys[feature.name] = KeyPrefix(feature.name, feature.version, feature.params, feature.model).key(inputs)
    return keys


def _print_json(data: Any) -> None:
    """As Rich's ``print_json`` prints to a pipe: indented by two, non-ASCII kept."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
