"""Fixtures of the HTTP API tests: a mesh of cheap features over a local store, and a client with a token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mediamesh.features import Registry
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.store import Store
from tests.orchestrator.api_support import api_client
from tests.orchestrator.resources import counting_features as cf


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    cf.CALLS.clear()


@pytest.fixture
def mesh(local_store: Store, tmp_path: Path) -> Mesh:
    """A mesh of the cheap ``size`` and ``doubled`` features (a module may define its own)."""
    return Mesh(local_store, Registry([cf.size, cf.doubled]), home=tmp_path)


@pytest.fixture
def client(mesh: Mesh) -> Iterator[TestClient]:
    with api_client(mesh) as opened:
        yield opened
