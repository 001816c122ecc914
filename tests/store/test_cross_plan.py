"""Cross-title match cut candidates walk the HNSW index whatever the table's statistics say."""

from __future__ import annotations

import hashlib

import numpy as np
import sqlalchemy as sa

from mediamesh.store import Store


def test_stale_statistics_leave_the_probes_on_the_hnsw_index(local_store: Store, owner_database_url: str) -> None:
    rng = np.random.default_rng(0)
    assets = [hashlib.sha256(f"title {i}".encode()).hexdigest() for i in range(3)]
    keys = [hashlib.sha256(f"value {i}".encode()).hexdigest() for i in range(3)]
    local_store.insert_placeholder_values("frame_match", "1", list(zip(assets, keys, strict=True)))
    # Statistics taken while the table held five rows, as autovacuum may between two bulk inserts.
    local_store.insert_vectors("other", "1", [(keys[0], assets[0], s, rng.standard_normal(16)) for s in range(5)])
    owner = sa.create_engine(owner_database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with owner.begin() as conn:
            conn.execute(sa.text("ANALYZE search_vectors"))
    finally:
        owner.dispose()
    for side in ("frame_ends", "frame_starts"):
        rows = [(k, a, shot, rng.standard_normal(16)) for a, k in zip(assets, keys, strict=True) for shot in range(300)]
        local_store.insert_vectors(side, "1", rows)

    plan = local_store.explain_cross("frame_ends", "frame_starts", "1", assets, 16)
    assert "hnsw" in plan and "Sort" not in plan, plan
    found = local_store.cross_candidates("frame_ends", "frame_starts", "1", assets, 3, model_fingerprint=None)
    assert len(found) == 3 * 300 * 3 and all(a != b for a, _, b, _, _ in found)
