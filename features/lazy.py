"""Lazy package exports: a package's names imported from their modules when first used, not with the package.

A command that reads the catalogue (``mediamesh status``) imports a few light modules; importing a package
would otherwise import everything it re-exports (NumPy with the value types, SQLAlchemy with the store).
Each package lists its exports by module and keeps the same imports under ``TYPE_CHECKING`` for the checker.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["exports"]


def exports(package: str, modules: Mapping[str, Sequence[str]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports each name of ``modules`` (module -> names) from
    its module on first use and keeps it in the package, as an eager ``from module import name`` would."""
    where = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
