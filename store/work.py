"""Failed attempts, claims on the values being computed, and runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from mediamesh.store import schema
from mediamesh.store.core import GC_LOCK, StoreCore, lock_id
from mediamesh.store.records import AttemptRecord

__all__ = ["WorkStore"]


@dataclass(frozen=True)
class Claim:
    """A held claim: its key, and whether the value was already stored when the claim was taken."""

    key: str
    stored: bool


class WorkStore(StoreCore):
    """Who is computing what (claims, runs), and what failed (attempts), kept apart from values."""

    def record_attempt(
        self,
        *,
        value_key: str,
        asset_id: str,
        feature: str,
        version: str,
        error: BaseException,
        worker: str,
        started_at: datetime,
        run_id: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        """Keep a failed attempt apart from values, so it never poisons the key.

        ``retryable`` says whether trying again can help; None takes what ``error.retryable`` says.
        """
        if retryable is None:
            retryable = bool(getattr(error, "retryable", False))
        with self._autocommit() as conn:
            conn.execute(
                schema.attempts.insert().values(
                    value_key=value_key,
                    asset_id=asset_id,
                    feature=feature,
                    version=version,
                    error_type=type(error).__name__,
                    message=str(error),
                    retryable=retryable,
                    worker=worker,
                    run_id=run_id,
                    started_at=started_at,
                )
            )

    def attempts_for(self, asset_id: str) -> list[AttemptRecord]:
        with self._connect() as conn:
            rows = conn.execute(
                sa.select(schema.attempts)
                .where(schema.attempts.c.asset_id == asset_id)
                .order_by(schema.attempts.c.finished_at.desc())
            ).all()
        return [
            AttemptRecord(
                r.value_key,
                r.asset_id,
                r.feature,
                r.version,
                r.error_type,
                r.message,
                r.retryable,
                r.worker,
                r.started_at,
                r.finished_at,
            )
            for r in rows
        ]

    @contextmanager
    def claim(self, key: str, *, asset_id: str, feature: str, version: str, worker: str) -> Iterator[Claim]:
        """Hold the right to compute ``key``; a second claimant waits here until the first is done.

        The claim is a session advisory lock, so a worker that dies releases it with its connection and
        another can take over at once. The ``claims`` row only shows who is computing what. The claim says
        whether the value was stored by the time it was taken (someone else may have finished it meanwhile).
        """
        lock = lock_id(key)
        # Each statement commits on its own (no BEGIN or COMMIT round trips): one to take the locks, one to record
        # the claim and look for the value, one to give it all back. Claims rows only show who computes what, so
        # their commits need not wait for the WAL to reach disk (synchronous_commit off, for those alone).
        with self._autocommit() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock_shared(:g), pg_advisory_lock(:k)"), {"g": GC_LOCK, "k": lock})
            try:
                # A statement after the lock's, so its snapshot is taken after the lock: was the value stored
                # meanwhile?
                stored, _ = conn.execute(
                    _CLAIM, {"key": key, "asset_id": asset_id, "feature": feature, "version": version, "worker": worker}
                ).one()
                yield Claim(key, stored=bool(stored))
            finally:
                conn.execute(
                    sa.text(
                        "WITH gone AS (DELETE FROM claims WHERE value_key = :key) "
                        "SELECT set_config('synchronous_commit', 'off', true), "
                        "pg_advisory_unlock(:k), pg_advisory_unlock_shared(:g)"
                    ),
                    {"key": key, "k": lock, "g": GC_LOCK},
                )

    def live_claims(self, asset_id: str | None = None) -> list[dict[str, Any]]:
        """Claims whose holder is still alive (stale rows of dead workers are skipped)."""
        query = sa.select(schema.claims)
        if asset_id is not None:
            query = query.where(schema.claims.c.asset_id == asset_id)
        live = []
        with self._connect() as conn:
            for row in conn.execute(query).all():
                free = conn.execute(
                    sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_id(row.value_key)}
                ).scalar_one()
                if free:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": lock_id(row.value_key)})
                else:
                    live.append(dict(row._mapping))
            conn.commit()
        return live

    def start_run(self, run_id: str, trigger: str, planned: int) -> None:
        with self._autocommit() as conn:
            conn.execute(schema.runs.insert().values(id=run_id, trigger=trigger, planned=planned))

    def finish_run(self, run_id: str, *, computed: int, reused: int, failed: int) -> None:
        with self._autocommit() as conn:
            conn.execute(
                schema.runs.update()
                .where(schema.runs.c.id == run_id)
                .values(finished_at=sa.func.now(), computed=computed, reused=reused, failed=failed)
            )


def _claim_statement() -> sa.Select[Any]:
    """Record a claim (``key``, ``asset_id``, ``feature``, ``version``, ``worker``), its commit unsynced, and say
    whether the value is stored. Built once, at import: building it costs more than running it."""
    claims = schema.claims
    columns = ("asset_id", "feature", "version", "worker")
    row = (
        pg_insert(claims)
        .values(value_key=sa.bindparam("key"), **{c: sa.bindparam(c, type_=claims.c[c].type) for c in columns})
        .on_conflict_do_update(
            index_elements=[claims.c.value_key], set_={"worker": sa.bindparam("worker"), "claimed_at": sa.func.now()}
        )
        .cte("claimed")
    )
    return sa.select(
        sa.exists().where(schema.values.c.key == sa.bindparam("key")),
        sa.func.set_config("synchronous_commit", "off", True),
    ).add_cte(row)


_CLAIM = _claim_statement()
