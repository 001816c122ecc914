"""The search tables on their own: a 2,000-shot value's rows are one insert per table, filtered nearest
neighbours return k, cues match by words in any language, and markers tell an indexed value from a missing one."""

from __future__ import annotations

import hashlib

import numpy as np
import sqlalchemy as sa

from mediamesh.features.indexes import TextRow, TimeRow, VectorRow
from mediamesh.store import Store
from mediamesh.store.indexes import IndexBatch

SHOTS = 2000


def _values(store: Store, feature: str, count: int) -> list[tuple[str, str]]:
    """``count`` assets with one stored ``feature@1`` value each (rows only): (asset, value key) pairs."""
    pairs = [
        (
            hashlib.sha256(f"asset {feature} {i}".encode()).hexdigest(),
            hashlib.sha256(f"{feature} {i}".encode()).hexdigest(),
        )
        for i in range(count)
    ]
    store.insert_placeholder_values(feature, "1", pairs, model_fingerprint="m", worker="test")
    return pairs


def test_a_long_title_is_one_insert_per_table_and_filtered_search_returns_k(local_store: Store) -> None:
    pairs = _values(local_store, "video_embedding", 10)
    rng = np.random.default_rng(3)
    vectors: dict[str, np.ndarray] = {}
    for n, (asset, key) in enumerate(pairs):
        rows = rng.normal(size=(SHOTS if n == 0 else 50, 24)).astype(np.float32)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        vectors[asset] = rows
        batches = [
            IndexBatch("video", "vector", [VectorRow(i, r) for i, r in enumerate(rows)]),
            IndexBatch("shots", "time", [TimeRow(i, float(i), i + 1.0) for i in range(len(rows))]),
        ]
        with local_store.counting_statements() as counted:
            local_store.index_value(key, asset, "1", "m", batches)
        if n == 0:  # vectors, their marker, times, their marker: 2,000 rows each in one statement
            inserts = [s for s, _ in counted.statements if s.lstrip().startswith("INSERT")]
            assert len(inserts) == 4, [s[:40] for s, _ in counted.statements]

    big, small = pairs[0][0], pairs[1][0]
    query = vectors[small][7]
    anywhere = local_store.search_vectors("video", "1", query, 5, model_fingerprint="m")
    assert (anywhere[0].asset_id, anywhere[0].shot) == (small, 7) and anywhere[0].score > 0.999
    # One title of ten (2.4% of the rows): still k hits, all of it, nearest first.
    only_big = local_store.search_vectors("video", "1", query, 10, model_fingerprint="m", assets=[big])
    assert len(only_big) == 10 and {m.asset_id for m in only_big} == {big}
    exact = np.argsort(-(vectors[big] @ query))[:10].tolist()
    assert len(set(exact) & {m.shot for m in only_big}) >= 9
    assert local_store.search_vectors("video", "1", query, 5, model_fingerprint="other") == []

    scopes = {s.version: s for s in local_store.index_scopes("video", "video_embedding", "vector")}
    assert scopes["1"].values_indexed == scopes["1"].values_stored == 10 and scopes["1"].in_sync
    assert _hnsw_indexes(local_store) == 1
    assert local_store.drop_index_rows("video", "vector", "1") == SHOTS + 9 * 50
    assert _hnsw_indexes(local_store) == 0, "a rebuild refills the rows first, then builds the graph once"
    assert not local_store.index_scopes("video", "video_embedding", "vector")[0].in_sync
    assert len(local_store.unindexed_values("video", "video_embedding")) == 10


def _hnsw_indexes(store: Store) -> int:
    with store.engine.connect() as conn:
        found = conn.execute(
            sa.text("SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'search_vectors_hnsw_%'")
        ).scalar_one()
    return int(found)


def test_cues_match_by_their_words_in_any_language_and_times_by_overlap(local_store: Store) -> None:
    [(asset, key)] = _values(local_store, "timed_text", 1)
    cues = [
        TextRow(0, 0, 0.5, 1.5, "Le boulanger chante sous la pluie", "fr"),
        TextRow(2, 1, 7.0, 8.0, "Nobody expected the purple elephant", "en"),
        TextRow(2, 2, 8.0, 9.0, "Ночь тиха, луна светит", "ru"),
    ]
    local_store.index_value(key, asset, "1", None, [IndexBatch("dialogue", "text", cues)])
    [hit] = local_store.search_cues("dialogue", "1", "purple elephant", 5)
    assert (hit.shot, hit.cue and hit.cue.text) == (2, "Nobody expected the purple elephant")
    assert [m.cue and m.cue.index for m in local_store.search_cues("dialogue", "1", "луна", 5)] == [2]
    assert local_store.search_cues("dialogue", "1", "boulanger", 5, languages=["en"]) == []
    assert local_store.search_cues("dialogue", "1", "xylophone", 5) == []
    [scope] = local_store.index_scopes("dialogue", "timed_text", "text")
    assert (scope.rows, scope.values_indexed, scope.values_stored) == (3, 1, 1)
