"""Feature-version promotion: bump a version, backfill, promote; pinned readers keep the version they asked for."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from mediamesh.features import Registry, SourceMedia, default_registry, feature
from mediamesh.orchestrator.execution.planner import PlannedValue
from mediamesh.orchestrator.interfaces.api import ApiSettings, create_app
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.store import Store, StoreSettings, ValueNotFoundError, open_store
from tests.orchestrator.resources.counting_features import Number

DATA = Path(__file__).parents[1] / "data"
MEDIAMESH = str(Path(sys.executable).parent / "mediamesh")
TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@feature(version="1", name="weight")
def weight_v1(source: SourceMedia) -> Number:
    """The asset's size in bytes."""
    return Number(source.path.stat().st_size)


@feature(version="2", name="weight")
def weight_v2(source: SourceMedia) -> Number:
    """The asset's size in kibibytes, rounded down: version 2 changed the unit."""
    return Number(source.path.stat().st_size // 1024)


class _Progress:
    """Collects what the engine reports, as the CLI's progress bar receives it."""

    def __init__(self) -> None:
        self.total = 0
        self.outcomes: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def planned(self, count: int) -> None:
        self.total += count

    def started(self, value: PlannedValue) -> None:
        pass

    def finished(self, value: PlannedValue, outcome: str) -> None:
        with self._lock:
            self.outcomes.append((value.feature, outcome))


def _clip(tmp_path: Path, name: str, source: str = "counter.mp4") -> Path:
    return Path(shutil.copyfile(DATA / source, tmp_path / name))


def _weight(mesh: Mesh, asset: str, version: str | None = None) -> tuple[str, int]:
    record, value = mesh.read(asset, "weight", version)
    return record.version, value.value


def test_bump_backfill_promote_and_a_pinned_reader_keeps_the_old_value(
    local_store: Store, tmp_path: Path, prefect_api: str
) -> None:
    counter, fades = _clip(tmp_path, "counter.mp4"), _clip(tmp_path, "fades.mp4", "fades.mp4")
    size = counter.stat().st_size
    old = Mesh(local_store, Registry([weight_v1]), home=tmp_path)
    results = old.ingest([counter, fades])
    assert all(r.ok for r in results), [r.errors for r in results]
    asset, other = (r.asset for r in results)
    assert asset is not None and other is not None
    local_store.promote_feature("weight", "1")

    new = Mesh(local_store, Registry([weight_v2]), home=tmp_path)
    # Bumping the definition changes nothing for default readers while weight@1 is promoted.
    assert _weight(new, asset) == ("1", size)
    with pytest.raises(ValueNotFoundError, match=rf"^asset {asset[:12]} has no stored weight@2$"):
        new.read(asset, "weight", "2")

    progress = _Progress()
    report = new.backfill("weight", progress=progress)
    assert (report.computed, report.reused, report.failed) == (2, 0, 0)
    assert (progress.total, sorted(progress.outcomes)) == (2, [("weight", "computed")] * 2)
    assert _weight(new, asset) == ("1", size), "a backfill computes; it does not switch readers"

    local_store.promote_feature("weight", "2")
    assert local_store.promoted_version("weight") == "2"
    assert _weight(new, asset) == ("2", size // 1024)
    assert _weight(new, other)[0] == "2"
    # Readers still running the old definition switch too; a reader pinned to weight@1 does not.
    assert _weight(old, asset) == ("2", size // 1024)
    assert _weight(new, asset, "1") == ("1", size)
    assert _weight(old, asset, "1") == ("1", size)
    record, current = new.find(asset, "weight")
    assert (record.version, current) == ("2", True)
    assert new.find(asset, "weight", "1")[1] is False

    api = ApiSettings(token=SecretStr(TOKEN), landing_buckets=["landing"])
    with TestClient(create_app(lambda: new, api, store_settings=StoreSettings(s3_endpoint=None))) as client:
        default = client.get(f"/assets/{asset}/features/weight", headers=AUTH).json()
        pinned = client.get(f"/assets/{asset}/features/weight?version=1", headers=AUTH).json()
        assert (default["version"], default["value"]) == ("2", {"value": size // 1024})
        assert (pinned["version"], pinned["value"]) == ("1", {"value": size})
        provenance = client.get(f"/assets/{asset[:8]}/features/weight/provenance?version=1", headers=AUTH).json()
        assert (provenance["version"], provenance["current"]) == ("1", False)

    # Rolling back is another promotion; nothing was removed, so weight@1 is there at once.
    local_store.promote_feature("weight", "1")
    assert _weight(new, asset) == ("1", size)


def test_without_a_promotion_readers_follow_their_registry(
    local_store: Store, tmp_path: Path, prefect_api: str
) -> None:
    clip = _clip(tmp_path, "counter.mp4")
    old = Mesh(local_store, Registry([weight_v1]), home=tmp_path)
    [result] = old.ingest([clip])
    assert result.asset is not None
    new = Mesh(local_store, Registry([weight_v2]), home=tmp_path)
    # The registry's version is not stored yet: the newest stored value is what there is.
    assert _weight(new, result.asset)[0] == "1"
    new.backfill("weight")
    assert local_store.promoted_version("weight") is None
    assert _weight(new, result.asset)[0] == "2"
    assert _weight(old, result.asset)[0] == "1"


def test_an_asset_lacking_the_promoted_version_is_an_error_not_another_version(
    local_store: Store, tmp_path: Path, prefect_api: str
) -> None:
    old = Mesh(local_store, Registry([weight_v1]), home=tmp_path)
    [first] = old.ingest([_clip(tmp_path, "counter.mp4")])
    local_store.promote_feature("weight", "1")
    new = Mesh(local_store, Registry([weight_v2]), home=tmp_path)
    [later] = new.ingest([_clip(tmp_path, "fades.mp4", "fades.mp4")])
    assert later.asset is not None and first.asset is not None
    assert local_store.version_coverage("weight", "1") == (1, 2)
    with pytest.raises(ValueNotFoundError, match=r"has no stored weight@1 \(the promoted version: backfill it"):
        new.read(later.asset, "weight")
    assert _weight(new, later.asset, "2")[0] == "2"
    with pytest.raises(ValueNotFoundError, match=r"no asset has a stored weight@3; compute it before promoting"):
        local_store.promote_feature("weight", "3")
    assert local_store.promoted_version("weight") == "1"


@pytest.fixture
def env(database_url: str, tmp_path: Path, prefect_api: str) -> dict[str, str]:
    """The environment of a user whose store is a fresh database and a fresh home."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return {
        **os.environ,
        "MEDIAMESH_HOME": str(tmp_path / "home"),
        "MEDIAMESH_DATABASE_URL": database_url,
        "PREFECT_API_URL": prefect_api,
        "TMPDIR": str(scratch),
        "COLUMNS": "200",
        "MEDIAMESH_ENCODERS": "lite",
        "MEDIAMESH_DEVICE": "cpu",
        "MEDIAMESH_CONFIG": str(tmp_path / "no-config.toml"),
    }


@pytest.fixture
def store(env: dict[str, str]) -> Iterator[Store]:
    settings = StoreSettings(home=Path(env["MEDIAMESH_HOME"]), database_url=env["MEDIAMESH_DATABASE_URL"])
    with open_store(settings) as opened:
        yield opened


def mediamesh(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MEDIAMESH, *args], env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )


def test_cli_promote_switches_default_readers_and_refuses_what_cannot_be_read(
    env: dict[str, str], store: Store, tmp_path: Path
) -> None:
    registry = default_registry()
    current = registry["shots"].version
    # An older definition of shots computed shots@0 for one asset; the CLI's registry is at the current version.
    older = Mesh(store, registry.replace(registry["shots"].replace(version="0")), home=Path(env["MEDIAMESH_HOME"]))
    clip = _clip(tmp_path, "counter.mp4")
    asset, _ = store.register_asset(clip, name=str(clip))
    unprocessed, _ = store.register_asset(_clip(tmp_path, "fades.mp4", "fades.mp4"), name="fades.mp4")
    assert older.backfill("shots", assets=[asset.id]).failed == 0
    backfill = mediamesh(env, "backfill", f"shots@{current}", "--assets", asset.id)
    assert backfill.returncode == 0, backfill.stderr
    [old_key] = [r.key for r in store.values_for(asset.id, "shots", "0")]
    [new_key] = [r.key for r in store.values_for(asset.id, "shots", current)]

    def read(*args: str) -> str:
        result = mediamesh(env, "read", asset.id, "shots", *args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert new_key in read() and old_key in read("--version", "0")

    promoted = mediamesh(env, "promote", "shots@0")
    assert promoted.returncode == 0, promoted.stderr
    assert "default readers of shots now get shots@0; 1 of 2 assets have it" in promoted.stdout
    assert re.search(r"warning: 1 of 2 assets lack shots@0, .*; backfill first", promoted.stderr), promoted.stderr
    assert old_key in read() and new_key in read("--version", current)

    again = mediamesh(env, "promote", f"shots@{current}")
    assert again.returncode == 0, again.stderr
    assert "1 of 2 assets have it" in again.stdout
    assert f"mediamesh backfill shots@{current}" in again.stderr
    assert new_key in read() and old_key in read("--version", "0")
    missing = mediamesh(env, "read", unprocessed.id, "shots")
    assert missing.returncode == 1
    assert f"has no stored shots@{current} (the promoted version" in missing.stderr

    for args, code, message in (
        (("promote", "shots@9"), 1, "error: no asset has a stored shots@9; compute it before promoting it"),
        (("promote", "shot@1"), 1, "Did you mean 'shots'?"),
        (("promote", "shots"), 2, "give FEATURE@VERSION"),
        (("promote", "mediafm"), 2, "give the checkpoint id"),
    ):
        result = mediamesh(env, *args)
        assert result.returncode == code, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert store.promoted_version("shots") == current
