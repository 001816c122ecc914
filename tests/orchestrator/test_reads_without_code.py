"""Reading values whose feature code this process does not have: the store's catalogue says what they are."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mediamesh.features import Registry
from mediamesh.features.errors import DefinitionError
from mediamesh.orchestrator.interfaces.api import ApiSettings, create_app
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.store import Store, StoreSettings
from tests.orchestrator.resources import catalogue_features, counting_features

MEDIAMESH = str(Path(sys.executable).parent / "mediamesh")
MODULE = catalogue_features.__name__
TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def computed(local_store: Store, tmp_path: Path, prefect_api: str) -> tuple[Path, str, dict[str, Any]]:
    """A clip whose values were computed by the author, with the author's feature module."""
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(bytes(range(256)))  # 16 bytes in each sixteenth of 0..255
    author = Mesh(local_store, Registry.from_modules(catalogue_features), home=tmp_path / "home")
    [result] = author.ingest([clip])
    assert result.ok and result.asset is not None, result.errors
    _, digest = author.read(result.asset, "source_digest")
    return clip, result.asset, digest.to_json()


def _reader(env: dict[str, str], *args: str) -> Any:
    """A ``mediamesh`` process of a reader who has the database URL but not the author's module."""
    result = subprocess.run(
        [MEDIAMESH, *args], env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_cli_reads_values_without_the_feature_module(
    computed: tuple[Path, str, dict[str, Any]], database_url: str, tmp_path: Path
) -> None:
    clip, asset, digest = computed
    env = {k: v for k, v in os.environ.items() if k != "MEDIAMESH_FEATURES"}
    env |= {
        "MEDIAMESH_HOME": str(tmp_path / "home"),
        "MEDIAMESH_DATABASE_URL": database_url,
        "MEDIAMESH_CONFIG": str(tmp_path / "no-config.toml"),
        "COLUMNS": "250",
    }

    assert json.loads(_reader(env, "read", str(clip), "source_digest", "--json")) == digest
    assert json.loads(_reader(env, "read", asset[:12], "source_digest", "--version", "1", "--json")) == digest
    histogram = json.loads(_reader(env, "read", str(clip), "byte_histogram@1", "--json"))
    assert histogram == {"shape": [16], "dtype": "int64", "meta": {}, "data": [16] * 16}
    assert digest["size"] == 256

    stored = {(e["name"], e["version"]): e for e in json.loads(_reader(env, "features", "--stored", "--json"))}
    assert set(stored) == {("source_digest", "1"), ("byte_histogram", "1")}
    assert stored[("source_digest", "1")] | {"first_computed": None, "last_computed": None} == {
        "name": "source_digest",
        "version": "1",
        "fingerprint": catalogue_features.source_digest.__mediamesh_feature__.fingerprint,  # type: ignore[attr-defined]
        "params": {},
        "model_fingerprint": None,
        "payload_kind": "json",
        "output_type": f"{MODULE}.Digest",
        "module": MODULE,
        "resources": "cpu",
        "value_count": 1,
        "asset_count": 1,
        "first_computed": None,
        "last_computed": None,
        "promoted": False,
    }
    assert (stored[("byte_histogram", "1")]["payload_kind"], stored[("byte_histogram", "1")]["output_type"]) == (
        "array",
        "numpy.ndarray",
    )
    status = _reader(env, "status", str(clip))
    assert "source_digest@1" in status and "not in the registry" in status


def test_the_api_and_python_read_values_without_the_feature_module(
    computed: tuple[Path, str, dict[str, Any]], local_store: Store, tmp_path: Path
) -> None:
    _, asset, digest = computed
    reader = Mesh(local_store, Registry([counting_features.size]), home=tmp_path / "home")
    app = create_app(lambda: reader, ApiSettings(token=TOKEN), store_settings=StoreSettings(s3_endpoint=None))

    with TestClient(app) as client:
        for query in ("", "?version=1"):
            got = client.get(f"/assets/{asset}/features/source_digest{query}", headers=AUTH)
            assert got.status_code == 200, got.text
            assert (got.json()["version"], got.json()["payload"], got.json()["value"]) == ("1", "json", digest)
        array = client.get(f"/assets/{asset}/features/byte_histogram", headers=AUTH).json()
        assert (array["payload"], array["shape"], array["data"]) == ("array", [16], [16] * 16)
        provenance = client.get(f"/assets/{asset}/features/source_digest/provenance", headers=AUTH).json()
        assert (provenance["payload_kind"], provenance["current"]) == ("json", False)
        states = client.get(f"/assets/{asset}/status", headers=AUTH).json()["features"]
        assert {(s["feature"], s["state"], s["detail"]) for s in states} >= {
            ("source_digest", "stored", "not in the registry: read without its code")
        }
        unknown = client.get(f"/assets/{asset}/features/source_digst", headers=AUTH)
        assert unknown.status_code == 404
        assert "Did you mean 'source_digest'?" in unknown.json()["detail"]

    record, value = reader.read(asset, "source_digest@1")
    assert (record.ref, value) == ("source_digest@1", digest)
    with pytest.raises(DefinitionError, match="names version '1', but version '2' was asked for"):
        reader.find(asset, "source_digest@1", "2")
