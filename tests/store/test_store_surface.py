"""The store's surface for callers outside it: paged assets, attempts' retryability, the statement counter,
the display URL, and outages as UnavailableErrors rather than SQLAlchemy's."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mediamesh.features.errors import BackendUnavailableError, TransientError, UnavailableError
from mediamesh.store import Store
from mediamesh.store.database import create_engine


def _register(store: Store, tmp_path: Path, count: int) -> list[str]:
    ids = []
    for i in range(count):
        path = tmp_path / f"asset{i}.bin"
        path.write_bytes(f"asset {i}".encode() * 100)
        asset, _ = store.register_asset(path, name=f"asset{i}.mp4")
        store.register_asset(path, name=f"again/asset{i}.mp4")
        ids.append(asset.id)
    return ids


def test_assets_are_paged_in_one_query_in_registration_order(local_store: Store, tmp_path: Path) -> None:
    ids = _register(local_store, tmp_path, 5)

    with local_store.counting_statements() as statements:
        page = local_store.assets(offset=1, limit=3)
    everything = local_store.assets()

    assert statements.count == 1
    assert [a.id for a in page] == ids[1:4]
    assert [a.id for a in everything] == ids
    assert everything[0].names == ("asset0.mp4", "again/asset0.mp4")
    assert local_store.assets(offset=5) == []
    assert local_store.count_assets() == 5


def test_the_statement_counter_counts_only_inside_its_block(local_store: Store, tmp_path: Path) -> None:
    [asset] = _register(local_store, tmp_path, 1)

    with local_store.counting_statements() as statements:
        local_store.asset(asset)
        local_store.stored_keys(["0" * 64])
    local_store.asset(asset)

    assert statements.count == 2


def test_an_attempt_keeps_whether_retrying_can_help(local_store: Store, tmp_path: Path) -> None:
    [asset] = _register(local_store, tmp_path, 1)
    for key, error, retryable in (
        ("a" * 64, TransientError("the model server is busy"), None),
        ("b" * 64, ValueError("boom"), True),
        ("c" * 64, TransientError("busy, but this run gives up"), False),
    ):
        local_store.record_attempt(
            value_key=key,
            asset_id=asset,
            feature="encode",
            version="1",
            error=error,
            worker="w",
            started_at=datetime.now(UTC),
            retryable=retryable,
        )

    kept = {a.value_key[0]: a.retryable for a in local_store.attempts_for(asset)}

    assert kept == {"a": True, "b": True, "c": False}


def test_the_display_url_hides_the_password(local_store: Store) -> None:
    engine = create_engine("postgresql://mediamesh_app:hunter2@127.0.0.1:1/mediamesh")
    store = Store(engine, local_store.blobs, database_url="unused")

    assert store.database_url_for_display() == "postgresql+psycopg://mediamesh_app:***@127.0.0.1:1/mediamesh"


def test_an_unreachable_database_is_an_unavailable_error(local_store: Store) -> None:
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    with (
        Store(
            create_engine("postgresql://mediamesh_app@127.0.0.1:1/mediamesh"), local_store.blobs, database_url="unused"
        ) as store,
        pytest.raises(BackendUnavailableError, match=r"database .* is unreachable") as raised,
    ):
        store.count_assets()

    assert isinstance(raised.value, UnavailableError) and raised.value.retryable
