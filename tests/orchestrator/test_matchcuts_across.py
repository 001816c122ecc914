"""The cross-title match cut query on synthetic titles (rows fed straight into the boundary indexes, no video):
its best pairs agree with the exact all-pairs answer, and never pair a title with itself. Its time is a
benchmark figure (``bench/matchcut.py``), not asserted here."""

from __future__ import annotations

import hashlib

import numpy as np

from mediamesh.features.indexes import frame_ends, frame_starts, project
from mediamesh.features.pairs import TitleRows, across_titles
from mediamesh.features.values import BoundaryRows
from mediamesh.orchestrator.interfaces.matchcuts import cross_title_pairs
from mediamesh.store import Store

TITLES, SHOTS, WIDTH = 4, 300, 64


def _rows(rng: np.random.Generator, centres: np.ndarray, n: int) -> np.ndarray:
    x = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.normal(size=(n, centres.shape[1]))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_the_cross_title_query_finds_the_exact_best_pairs_across_titles_only(local_store: Store) -> None:
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(60, WIDTH))
    ends = [_rows(rng, centres, SHOTS) for _ in range(TITLES)]
    starts = [_rows(rng, centres, SHOTS) for _ in range(TITLES)]
    assets = [hashlib.sha256(f"title {i}".encode()).hexdigest() for i in range(TITLES)]
    keys = [hashlib.sha256(f"frame_match {i}".encode()).hexdigest() for i in range(TITLES)]
    local_store.insert_placeholder_values("frame_match", "1", list(zip(assets, keys, strict=True)), worker="test")
    for spec, side in ((frame_ends, ends), (frame_starts, starts)):
        rows = [
            (key, asset, row.shot, row.vector)
            for asset, key, data in zip(assets, keys, side, strict=True)
            for row in project(spec, BoundaryRows(np.stack([data, data], axis=1), {}))
        ]
        local_store.insert_vectors(spec.name, "1", rows)

    found = cross_title_pairs(local_store, "frame", "1", assets, 10, model=None)
    which, exact = across_titles([TitleRows(e, s, list(range(SHOTS))) for e, s in zip(ends, starts, strict=True)], 10)
    truth = {(assets[int(x)], a, assets[int(y)], b) for (x, y), (a, b, _) in zip(which, exact.tuples(), strict=True)}
    assert len(found) == 10
    assert all(a != b for a, _, b, _, _ in found)
    assert [score for *_, score in found] == sorted((score for *_, score in found), reverse=True)
    assert len(truth & {pair[:4] for pair in found}) / 10 >= 0.9
    # Three titles of the four: no pair touches the fourth.
    three = cross_title_pairs(local_store, "frame", "1", assets[:3], 10, model=None)
    assert three and all(a in assets[:3] and b in assets[:3] for a, _, b, _, _ in three)


def test_only_unique_shots_are_indexed_and_still_shots_are_left_out() -> None:
    data = np.zeros((4, 2, 3), np.float32)
    data[0, :, 0] = data[1, :, 1] = data[3, :, 0] = 1.0  # shot 3 repeats shot 0; shot 2 is still (zeros)
    value = BoundaryRows(data, {"groups": [0, 1, 2, 0]})
    assert [row.shot for row in project(frame_ends, value)] == [0, 1]
    assert [row.shot for row in project(frame_starts, value)] == [0, 1]
