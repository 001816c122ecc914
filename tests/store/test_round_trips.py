"""What a value costs the database: round trips per claim and per write, and a pool that pings only connections
that sat idle (a dropped one is replaced; a fresh one is never pinged)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psycopg
import pytest
import sqlalchemy as sa

from mediamesh.features.errors import BackendUnavailableError
from mediamesh.store import NewValue, Store
from mediamesh.store import database as database_module


def _new(asset: str, key: str, inputs: tuple[tuple[str, str], ...]) -> NewValue:
    now = datetime.now(UTC)
    return NewValue(
        key=key,
        asset_id=asset,
        feature="stamp",
        version="1",
        params={"salt": 1},
        model_fingerprint=None,
        code_fingerprint="f" * 64,
        inputs=inputs,
        started_at=now,
        finished_at=now,
        worker="test:1",
        device="cpu",
    )


@pytest.fixture
def asset(local_store: Store, tmp_path: Path) -> str:
    path = tmp_path / "clip.bin"
    path.write_bytes(b"round trips" * 100)
    record, _ = local_store.register_asset(path, name="clip.bin")
    return record.id


class Wire:
    """Each round trip the store's connections make to the server, read from libpq's protocol trace of every
    connection the pool opens: one entry per ReadyForQuery the server sent, named by the first word of what was
    sent for it, so that a BEGIN, a COMMIT or a ping sent on its own counts as one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.touch()
        self.seen = 0
        self.traced: dict[psycopg.Connection[object], int] = {}

    def trace(self, dbapi: psycopg.Connection[object]) -> None:
        # libpq writes through a stdio stream on the descriptor it is given, never closed: a descriptor of its own.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        dbapi.pgconn.trace(fd)
        dbapi.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS | psycopg.pq.Trace.REGRESS_MODE)
        self.traced[dbapi] = fd

    def stop(self, *, again: bool = False) -> None:
        """End every trace, which flushes what libpq buffered; with ``again``, go on tracing the open ones."""
        for dbapi, fd in list(self.traced.items()):
            if not dbapi.closed:
                dbapi.pgconn.untrace()
            os.close(fd)
            del self.traced[dbapi]
            if again and not dbapi.closed:
                self.trace(dbapi)

    def mark(self) -> None:
        """From here on: ``since_mark`` leaves out every round trip made so far."""
        self.seen = len(self._all())

    def since_mark(self) -> list[str]:
        return self._all()[self.seen :]

    def _all(self) -> list[str]:
        self.stop(again=True)
        trips, current = [], "?"
        for line in self.path.read_text().splitlines():
            fields = line.split("\t")
            if fields[0] == "F" and fields[2] in ("Query", "Parse"):
                text = fields[3].strip()
                if fields[2] == "Parse":  # Parse "statement name" "query" ...
                    text = text.split('"')[3]
                current = text.strip('"').split(None, 1)[0].upper()
            elif fields[0] == "B" and fields[2] == "ReadyForQuery":
                trips.append(current)
        return trips


@pytest.fixture
def wire(local_store: Store, tmp_path: Path) -> Iterator[Wire]:
    traced = Wire(tmp_path / "libpq-trace")
    local_store.engine.dispose()  # every connection from now on is a traced one

    def connected(dbapi: psycopg.Connection[object], _record: object) -> None:
        traced.trace(dbapi)

    sa.event.listen(local_store.engine, "connect", connected)
    try:
        yield traced
    finally:
        sa.event.remove(local_store.engine, "connect", connected)
        traced.stop()
        local_store.engine.dispose()


def test_a_claim_and_a_value_take_four_round_trips(local_store: Store, asset: str, wire: Wire) -> None:
    key = "a" * 64
    wire.mark()
    with local_store.claim(key, asset_id=asset, feature="stamp", version="1", worker="test:1") as claim:
        assert not claim.stored
        taken = wire.since_mark()
        assert len(local_store.live_claims(asset)) == 1
        wire.mark()  # live_claims is the test's own look
        local_store.put_value(_new(asset, key, (("source", asset), ("other", "b" * 64))), np.arange(3))
    # Take the locks; record the claim and look for the value; write the row with its lineage; give the claim back.
    # Each statement commits alone: no BEGIN or COMMIT of its own, and no ping of a connection just returned.
    assert taken == ["SELECT", "WITH"]
    assert wire.since_mark() == ["WITH", "WITH"]
    assert local_store.lineage(key) == [("source", asset), ("other", "b" * 64)]
    assert local_store.live_claims(asset) == []
    # A second write of the same key adds nothing: the row and its lineage stay as the first wrote them.
    again = local_store.put_value(_new(asset, key, (("source", asset),)), np.arange(3))
    assert again.key == key and local_store.lineage(key) == [("source", asset), ("other", "b" * 64)]
    with local_store.claim(key, asset_id=asset, feature="stamp", version="1", worker="test:1") as claim:
        assert claim.stored


def test_a_value_with_no_inputs_is_stored_without_lineage(local_store: Store, asset: str) -> None:
    record = local_store.put_value(_new(asset, "c" * 64, ()), np.arange(3))
    assert record.key == "c" * 64 and local_store.lineage(record.key) == []
    assert local_store.load(record, np.ndarray).tolist() == [0, 1, 2]


def _terminate_backends(database_url: str) -> int:
    """End every other session on the store's database, as a server restart would."""
    url = sa.make_url(database_url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_pooled_connection_idle_past_the_bound_is_pinged_and_replaced_when_gone(
    local_store: Store, asset: str, database_url: str, wire: Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    local_store.asset(asset)  # one connection in the pool, just returned
    wire.mark()
    local_store.asset(asset)
    assert wire.since_mark() == ["SELECT"]  # not pinged: returned moments ago
    monkeypatch.setattr(database_module, "PING_AFTER_IDLE_S", 0.0)  # now every pooled connection counts as idle
    wire.mark()
    local_store.asset(asset)
    assert wire.since_mark() == [";", "SELECT"]  # the ping (an empty statement), then the statement
    assert _terminate_backends(database_url) >= 1
    assert local_store.asset(asset).id == asset  # the ping found it gone; the pool opened another


def test_a_connection_returned_moments_ago_is_not_pinged_and_a_drop_fails_once(
    local_store: Store, asset: str, database_url: str
) -> None:
    local_store.asset(asset)
    assert _terminate_backends(database_url) >= 1
    with pytest.raises(BackendUnavailableError, match="database"):
        local_store.asset(asset)  # handed out without a ping: the one statement fails, retryable
    assert local_store.asset(asset).id == asset  # the pool dropped the old server's connections
