"""Where the registry comes from: the built-in features, configured modules and installed plugins, composed whole.

The sources, in order:

- the names in ``MEDIAMESH_FEATURES`` (comma-separated), else ``[features] modules = [...]`` in the config
  file (``$MEDIAMESH_CONFIG``, default ``$MEDIAMESH_HOME/mediamesh.toml``), else ``builtin``. ``builtin``
  stands for the built-in features; any other name is a module whose ``@feature`` functions are taken;
- installed distributions that declare entry points in the group ``mediamesh.features``, each naming a
  module. They come right after ``builtin`` (first when it is not named), so a configured module can
  replace a plugin's feature as a plugin can replace a built-in.

The registry is built from all of them at once and checked whole: a plugin may read any built-in or any
other plugin's feature, and a feature replaces a same-named one from an earlier source only when declared
``@feature(..., replaces=True)``. Workers, the API and the CLI all call :func:`configured_registry`, so they
agree on the graph.
"""

from __future__ import annotations

import importlib
import inspect
import os
import tomllib
import types
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from mediamesh.features import default_registry
from mediamesh.features.errors import DefinitionError
from mediamesh.features.registry import Registry
from mediamesh.features.spec import FeatureSpec, spec_of

__all__ = ["BUILTIN", "ENTRY_POINT_GROUP", "Source", "configured_registry", "configured_sources"]

#: The entry-point group an installed distribution declares its feature modules in.
ENTRY_POINT_GROUP = "mediamesh.features"
#: The name that stands for the built-in features.
BUILTIN = "builtin"


@dataclass(frozen=True)
class Source:
    """One place features come from: ``name`` is ``builtin`` or a module; ``origin`` says who named it."""

    name: str
    origin: str
    entry_point: EntryPoint | None = None

    def specs(self) -> list[FeatureSpec]:
        """The features this source defines (not ones its module merely imports)."""
        if self.name == BUILTIN:
            return list(default_registry().values())
        module = self._module()
        found = [
            spec
            for _, obj in inspect.getmembers(module, inspect.isfunction)
            if (spec := spec_of(obj)) is not None and obj.__module__ == module.__name__
        ]
        if not found:
            raise DefinitionError(f"{self.origin} names {self.name!r}, which defines no @feature function")
        return found

    def _module(self) -> types.ModuleType:
        try:
            loaded: Any = self.entry_point.load() if self.entry_point else importlib.import_module(self.name)
        except DefinitionError:
            raise  # already names the feature and its module
        except ImportError as exc:
            raise DefinitionError(f"{self.origin} names {self.name!r}, which cannot be imported: {exc}") from None
        except Exception as exc:  # a plugin's own bug: one line that says whose it is
            raise DefinitionError(
                f"{self.origin} names {self.name!r}, which failed to import: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(loaded, types.ModuleType):
            raise DefinitionError(f"{self.origin} names {self.name!r}, which is not a module")
        return loaded


def configured_registry(modules: str | None = None) -> Registry:
    """The registry of every configured source (``modules`` in place of ``MEDIAMESH_FEATURES``), checked whole."""
    return Registry.compose(source.specs() for source in configured_sources(modules))


def configured_sources(modules: str | None = None) -> list[Source]:
    """The sources the registry is built from, in order (see the module's docstring)."""
    if modules is None:
        modules = os.environ.get("MEDIAMESH_FEATURES")
    if modules is not None:
        named = _sources([m.strip() for m in modules.split(",")], "MEDIAMESH_FEATURES")
    else:
        named = _configured_modules()
    installed = [
        Source(ep.value, f"entry point {ep.name!r} of {ep.dist.name if ep.dist else 'an installed distribution'}", ep)
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: (ep.name, ep.value))
    ]
    at = next((i + 1 for i, source in enumerate(named) if source.name == BUILTIN), 0)
    return [*named[:at], *installed, *named[at:]]


def _configured_modules() -> list[Source]:
    home = Path(os.environ.get("MEDIAMESH_HOME") or ".mediamesh")
    path = Path(os.environ.get("MEDIAMESH_CONFIG") or home / "mediamesh.toml").expanduser()
    if not path.is_file():
        return [Source(BUILTIN, "the default")]
    try:
        with path.open("rb") as f:
            table = tomllib.load(f).get("features", {})
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError(f"cannot read {path}: {exc}") from None
    names = table.get("modules") if isinstance(table, dict) else None
    if names is None:
        return [Source(BUILTIN, "the default")]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise DefinitionError(f"{path}: [features] modules must be a list of module names, got {names!r}")
    return _sources(names, f"[features] modules in {path}")


def _sources(names: Sequence[str], origin: str) -> list[Source]:
    unique = dict.fromkeys(n.strip() for n in names if n.strip())
    return [Source(name, origin) for name in unique] or [Source(BUILTIN, "the default")]
