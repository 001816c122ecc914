"""Every name in a lazy package's ``__all__`` resolves: a name left out of its module map (``features/lazy.py``)
fails here, not in a user's import."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    "mediamesh",
    "mediamesh.features",
    "mediamesh.features.models",
    "mediamesh.store",
    "mediamesh.orchestrator",
    "mediamesh.orchestrator.interfaces.cli",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_every_exported_name_resolves(name: str) -> None:
    package = importlib.import_module(name)
    missing = [n for n in package.__all__ if getattr(package, n, None) is None]
    assert missing == []
