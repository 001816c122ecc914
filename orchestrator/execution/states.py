"""An asset's features and what state each is in, from what the catalogue holds.

``Mesh.status`` (the full path: the registry and the store) and the command line's catalogue read
(``interfaces/cli/quick.py``: the registry's manifest and psycopg) both answer through :func:`feature_states`,
so ``mediamesh status`` says the same whichever path it took.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mediamesh.store.records import AttemptRecord, ValueRecord

__all__ = ["NOT_IN_REGISTRY", "NO_CHECKPOINT", "FeatureState", "PlannedState", "feature_states"]

NOT_IN_REGISTRY = "not in the registry: read without its code"
NO_CHECKPOINT = "no MediaFM checkpoint is promoted: mediamesh train mediafm, then mediamesh promote mediafm ID"


@dataclass(frozen=True)
class FeatureState:
    """One feature of one asset: ``stored``, ``running``, ``failed``, ``waiting`` (for a checkpoint) or ``missing``."""

    feature: str
    version: str
    state: str
    key: str
    duration_s: float | None = None
    worker: str | None = None
    at: datetime | None = None
    detail: str = ""


@dataclass(frozen=True)
class PlannedState:
    """One planned value of the asset: whose, its key, and whether it needs the promoted MediaFM checkpoint."""

    feature: str
    version: str
    key: str
    needs_checkpoint: bool


def feature_states(
    planned: Sequence[PlannedState],
    values: Sequence[ValueRecord],
    claims: Sequence[Mapping[str, Any]],
    attempts: Sequence[AttemptRecord],
    *,
    checkpoint_promoted: bool,
    registered: Container[str],
) -> list[FeatureState]:
    """Each planned value's state, in plan order, then the asset's other stored values (other versions or
    params, or features the registry lacks). ``values`` and ``attempts`` are the asset's, newest first;
    ``claims`` are its live ones."""
    stored = {record.key: record for record in values}
    running = {claim["value_key"]: claim for claim in claims}
    failures: dict[str, AttemptRecord] = {}
    for attempt in attempts:
        failures.setdefault(attempt.value_key, attempt)
    states: list[FeatureState] = []
    for p in planned:
        record = stored.get(p.key)
        if record is not None:
            states.append(_stored_state(record))
        elif p.key in running:
            claim = running[p.key]
            at, worker = claim["claimed_at"], claim["worker"]
            states.append(FeatureState(p.feature, p.version, "running", p.key, None, worker, at))
        elif p.key in failures:
            attempt = failures[p.key]
            states.append(
                FeatureState(
                    p.feature,
                    p.version,
                    "failed",
                    p.key,
                    (attempt.finished_at - attempt.started_at).total_seconds(),
                    attempt.worker,
                    attempt.finished_at,
                    f"{attempt.error_type}: {attempt.message}",
                )
            )
        elif p.needs_checkpoint and not checkpoint_promoted:
            states.append(FeatureState(p.feature, p.version, "waiting", p.key, detail=NO_CHECKPOINT))
        else:
            hint = f"run `mediamesh backfill {p.feature}`"
            states.append(FeatureState(p.feature, p.version, "missing", p.key, detail=hint))
    current = {p.key for p in planned}
    for record in values:
        if record.key not in current:
            other = "other version or params" if record.feature in registered else NOT_IN_REGISTRY
            states.append(_stored_state(record, detail=other))
    return states


def _stored_state(record: ValueRecord, detail: str = "") -> FeatureState:
    return FeatureState(
        record.feature,
        record.version,
        "stored",
        record.key,
        record.duration_s,
        record.worker,
        record.created_at,
        detail,
    )
