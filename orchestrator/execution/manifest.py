"""The registry as planning sees it, kept in ``$MEDIAMESH_HOME/cache/registry.json`` for the command line.

``mediamesh status`` plans every feature of one asset, and ``mediamesh read`` plans the one it reads. Planning
needs, of each feature, its name, version, params, model fingerprint and inputs, in plan order; building the
registry to learn them imports every feature module, which costs more than the queries. So the full path
writes them here (:func:`refresh`), with what they were derived from, and the command line's catalogue read
(``interfaces/cli/quick.py``) plans from this file (:func:`load`) while that is unchanged:

- the ``MEDIAMESH_*`` environment and ``sys.path`` (which modules and settings make the registry),
- the configuration file, and every ``sys.path`` directory of installed packages (a plugin's installation
  changes its mtime),
- every Python file of the packages that define the features (size and mtime),
- every file of each model fingerprinted (as ``features/models/fingerprints.py`` lists them).

A model fingerprint that rests on anything else (a Hugging Face snapshot, a model not on this machine, a
directory whose files are still changing) is not written down: no manifest is kept, and every command
builds the registry.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from contextlib import suppress
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mediamesh.features.models.fingerprints import listed_files, recording

if TYPE_CHECKING:
    from mediamesh.features.registry import Registry

__all__ = ["MANIFEST", "Manifest", "ManifestFeature", "load", "refresh"]

#: Where in the home the manifest is kept.
MANIFEST = Path("cache") / "registry.json"
_FORMAT = 1
_LITE_MODELS = "lite-"


@dataclass(frozen=True)
class ManifestFeature:
    """What planning and reading need of one feature."""

    name: str
    version: str
    params: dict[str, Any]
    model: str | None
    inputs: tuple[str, ...]
    #: Whether it reads the promoted MediaFM checkpoint, directly or not.
    needs_checkpoint: bool
    #: Whether its values are shot tables (``ShotTable``), which the catalogue read renders itself.
    shot_table: bool


@dataclass(frozen=True)
class Manifest:
    """Every feature of the registry in the order a plan keys them, and the schema revision the store had."""

    features: tuple[ManifestFeature, ...]
    schema: str
    #: The fields of a shot table's rows, in order (``values.Shot``).
    shot_fields: list[str]

    def feature(self, name: str) -> ManifestFeature | None:
        return next((f for f in self.features if f.name == name), None)


def load(home: Path) -> Manifest | None:
    """The home's manifest, if what it was derived from is unchanged; else None."""
    try:
        document = json.loads((home / MANIFEST).read_text())
        if document.get("format") != _FORMAT or document["context"] != _context(home):
            return None
        files = document["files"]
        if any(_stat(Path(path)) != stat for path, stat in files.items()):
            return None
        models = document["models"]
        if any(_files(Path(path)) != listed for path, listed in models.items()):
            return None
        features = tuple(ManifestFeature(**{**f, "inputs": tuple(f["inputs"])}) for f in document["features"])
        return Manifest(features, str(document["schema"]), list(document["shot_fields"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def refresh(home: Path, registry: Registry, schema: str) -> None:
    """Write the registry's manifest into the home unless the one there says the same (see the module's
    docstring); nothing is written where a model fingerprint rests on more than files it can list."""
    from mediamesh.features.spec import MEDIAFM
    from mediamesh.features.values import Shot, ShotTable
    from mediamesh.orchestrator.execution.planner import planning_order

    order, _ = planning_order(registry)
    try:
        sources = {str(p): _stat(p) for p in _source_files(registry)}
    except (OSError, TypeError):  # a feature defined where its source cannot be found
        return
    with recording() as seen:
        models = {name: registry[name].model_fingerprint() for name in order}
    directories = {path: files for path, files, _, _ in seen}
    backed = {fingerprint for _, _, fingerprint, settled in seen if settled}
    if any(m is not None and m not in backed and not m.startswith(_LITE_MODELS) for m in models.values()):
        return
    features = [
        ManifestFeature(
            name=name,
            version=spec.version,
            params=json.loads(json.dumps(dict(spec.params))),
            model=models[name],
            inputs=tuple(spec.input_names),
            needs_checkpoint=MEDIAFM in registry.roots_of(name),
            shot_table=isinstance(spec.output, type) and issubclass(spec.output, ShotTable),
        )
        for name in order
        for spec in [registry[name]]
    ]
    manifest = Manifest(tuple(features), schema, [f.name for f in fields(Shot)])
    if load(home) == manifest:
        return
    document = {
        "format": _FORMAT,
        "context": _context(home),
        "files": sources,
        "models": {path: [list(f) for f in files] for path, files in directories.items()},
        "schema": schema,
        "shot_fields": manifest.shot_fields,
        "features": [{**asdict(f), "inputs": list(f.inputs)} for f in features],
    }
    _write(home / MANIFEST, json.dumps(document, sort_keys=True))


def _context(home: Path) -> dict[str, Any]:
    """What the registry is configured by that is cheap to compare whole."""
    config = Path(os.environ.get("MEDIAMESH_CONFIG") or home / "mediamesh.toml").expanduser()
    return {
        "environment": sorted([k, v] for k, v in os.environ.items() if k.startswith("MEDIAMESH_")),
        # Where packages are installed, its mtime changes with each (a plugin's entry point appears).
        "path": [[entry, _stat(Path(entry)) if entry.endswith("-packages") else None] for entry in sys.path],
        "config": [str(config), _stat(config)],
    }


def _source_files(registry: Registry) -> list[Path]:
    """The Python files of every package that defines one of the registry's features."""
    import inspect

    roots: set[Path] = set()
    for name in registry:
        fn = registry[name].fn
        source = inspect.getsourcefile(fn)
        if source is None:
            raise OSError(f"{name} has no source file")
        path = Path(os.path.realpath(source))
        root = path
        while (root.parent / "__init__.py").is_file():
            root = root.parent
        roots.add(root)
    found: set[Path] = set()
    for root in roots:
        found.update(root.rglob("*.py") if root.is_dir() else [root])
    return sorted(found)


def _stat(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _files(path: Path) -> list[list[Any]] | None:
    try:
        return [list(f) for f in listed_files(path)]
    except OSError:
        return None


def _write(path: Path, text: str) -> None:
    """Through a temporary file and a rename, so a reader sees the old manifest or the new one, whole."""
    with suppress(OSError):  # a home that cannot be written to keeps no manifest
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".registry-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            os.replace(temporary, path)
        finally:
            with suppress(FileNotFoundError):
                os.unlink(temporary)
