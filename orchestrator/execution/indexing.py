"""Keeping the search indexes (``features/indexes.py``) in step with the values: rows for a value being stored,
a rebuild from the stored values, and how far each index is in sync."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mediamesh.features.errors import UnknownFeatureError
from mediamesh.features.indexes import BUILT_IN_INDEXES, IndexSpec, project
from mediamesh.features.registry import Registry
from mediamesh.store import Store
from mediamesh.store.indexes import IndexBatch, IndexedScope

__all__ = ["IndexReport", "batches_for", "find_index", "indexes_of", "rebuild", "scopes"]


def indexes_of(registry: Registry, specs: Sequence[IndexSpec] = BUILT_IN_INDEXES) -> tuple[IndexSpec, ...]:
    """The indexes whose feature ``registry`` defines."""
    return tuple(spec for spec in specs if spec.feature in registry)


def batches_for(indexes: Sequence[IndexSpec], feature: str, value: Any) -> list[IndexBatch]:
    """The rows ``value`` (of ``feature``) makes in each index that projects that feature."""
    return [IndexBatch(spec.name, spec.kind, project(spec, value)) for spec in indexes if spec.feature == feature]


def find_index(indexes: Sequence[IndexSpec], name: str) -> IndexSpec:
    for spec in indexes:
        if spec.name == name:
            return spec
    known = ", ".join(spec.name for spec in indexes)
    raise UnknownFeatureError(f"no index named {name!r}; the indexes are {known}")


@dataclass(frozen=True)
class IndexReport:
    """What a rebuild did to one index."""

    index: str
    dropped: int
    values: int
    rows: int


def rebuild(
    store: Store,
    registry: Registry,
    spec: IndexSpec,
    *,
    version: str | None = None,
    drop: bool = True,
    on_value: Callable[[int, int], None] | None = None,
) -> IndexReport:
    """Derive ``spec``'s rows again from the stored values (of ``version``, else every version): with ``drop``
    the old rows go first; without it only values the index lacks are added (a repair)."""
    dropped = store.drop_index_rows(spec.name, spec.kind, version) if drop else 0
    keys = store.unindexed_values(spec.name, spec.feature, version)
    output = registry[spec.feature].output if spec.feature in registry else None
    rows = 0
    for done, key in enumerate(keys, start=1):
        record = store.value(key)
        if record is None:  # pragma: no cover - values are never deleted
            continue
        value = store.load(record, output)
        batch = batches_for([spec], spec.feature, value)
        rows += sum(len(b.rows) for b in batch)
        # A vector index's HNSW graph is built once, after its rows are in, not grown row by row.
        store.index_value(
            record.key, record.asset_id, record.version, record.model_fingerprint, batch, ensure_hnsw=False
        )
        if on_value is not None:
            on_value(done, len(keys))
    if spec.kind == "vector":
        store.ensure_vector_indexes(spec.name)
    return IndexReport(spec.name, dropped, len(keys), rows)


def scopes(store: Store, indexes: Sequence[IndexSpec]) -> list[IndexedScope]:
    """Per index and stored version of its feature: rows, values indexed, values stored."""
    return [scope for spec in indexes for scope in store.index_scopes(spec.name, spec.feature, spec.kind)]
