"""Match cutting's pair scoring on synthetic boundary rows, against bare matrix products of the same size.

Within a title: the blocked top-K of a 2,000-shot title (``features.pairs.within_title``) against one bare
``ends @ starts.T``, which holds every score at once and keeps none; rows as wide as ``frame_match``'s with CLIP
ViT-B/32 (512) beside the structural descriptor. Across titles: the query-time path over 10 titles x 2,000
shots (boundary HNSW indexes in the store, candidates per shot, exact scores) against the exact blocked
all-pairs answer (``features.pairs.across_titles``), with the recall of its top 10.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import numpy as np

from bench.context import Context
from bench.harness import BenchError, Figure, side_by_side
from mediamesh.features.matchcut import EDGE_GRID, LUMA_GRID
from mediamesh.features.pairs import TitleRows, across_titles, within_title
from mediamesh.orchestrator.interfaces.matchcuts import CANDIDATES_PER_SHOT, cross_title_pairs

__all__ = ["run"]

SHOTS = 2000
TITLES = 10
K = 20
WIDTH = 512 + EDGE_GRID**2 + LUMA_GRID**2
# Cross-title rows are synthetic, drawn around clusters as real ones are; 128 wide (motion rows are 10 wide,
# frame rows with CLIP ViT-B/32 832: each HNSW probe costs about in proportion).
ACROSS_WIDTH = 128
# The blocked search adds masks and a running top-K to the products it makes; it should not cost much more.
MAX_WITHIN_RATIO = 2.0
MAX_ACROSS_SECONDS = 10.0

Array = np.ndarray[Any, Any]


def run(ctx: Context) -> list[Figure]:
    rng = np.random.default_rng(0)
    return [_within(ctx, rng), _across(ctx, rng)]


def _within(ctx: Context, rng: np.random.Generator) -> Figure:
    ends, starts = _unit_rows(rng, SHOTS), _unit_rows(rng, SHOTS)
    groups = list(range(SHOTS))

    def blocked() -> None:
        within_title(ends, starts, groups, K)

    def bare() -> None:
        ends @ starts.T

    samples = side_by_side(blocked, bare, repeats=ctx.repeats(9, 2))
    pairs = SHOTS * SHOTS
    return Figure(
        name="matchcut-within",
        description=f"top-{K} match cuts of a {SHOTS}-shot title, D={WIDTH} ({pairs / samples.target_median / 1e6:.0f}"
        f" M pairs/s; bare product {pairs / samples.baseline_median / 1e6:.0f} M/s)",
        target_label="features.pairs.within_title(ends, starts, groups, 20)",
        baseline_label="ends @ starts.T (every score held, none kept)",
        samples=samples,
        max_ratio=MAX_WITHIN_RATIO,
        memory_target=ctx.memory(blocked),
        memory_baseline=ctx.memory(bare),
        notes={
            "shots": SHOTS,
            "width": WIDTH,
            "k": K,
            "pairs_per_s": pairs / samples.target_median,
            "baseline_pairs_per_s": pairs / samples.baseline_median,
        },
    )


def _across(ctx: Context, rng: np.random.Generator) -> Figure:
    """The query-time path (boundary HNSW indexes, candidates per shot, exact scores) against the exact blocked
    all-pairs answer over the same rows, with the recall of its top 10."""
    centres = rng.standard_normal((500, ACROSS_WIDTH))
    ends = [_clustered(rng, centres, SHOTS) for _ in range(TITLES)]
    starts = [_clustered(rng, centres, SHOTS) for _ in range(TITLES)]
    store = ctx.open_store()
    assets = [hashlib.sha256(f"bench title {i}".encode()).hexdigest() for i in range(TITLES)]
    keys = [hashlib.sha256(f"bench frame_match {i}".encode()).hexdigest() for i in range(TITLES)]
    store.insert_placeholder_values("frame_match", "bench", list(zip(assets, keys, strict=True)))
    began = time.perf_counter()
    for name, side in (("frame_ends", ends), ("frame_starts", starts)):
        rows = [
            (k, a, shot, side[i][shot])
            for i, (a, k) in enumerate(zip(assets, keys, strict=True))
            for shot in range(SHOTS)
        ]
        store.insert_vectors(name, "bench", rows)
    indexing_s = time.perf_counter() - began
    titles = [TitleRows(e, s, list(range(SHOTS))) for e, s in zip(ends, starts, strict=True)]
    found: list[tuple[str, int, str, int, float]] = []

    def query() -> None:
        found[:] = cross_title_pairs(store, "frame", "bench", assets, 10, model=None)

    def exact() -> None:
        across_titles(titles, 10)

    samples = side_by_side(query, exact, repeats=ctx.repeats(3, 1), warmup=0)
    which, pairs = across_titles(titles, 10)
    truth = {(assets[int(x)], a, assets[int(y)], b) for (x, y), (a, b, _) in zip(which, pairs.tuples(), strict=True)}
    recall = len(truth & {p[:4] for p in found}) / 10
    if recall < 0.9:
        raise BenchError(f"the cross-title query's top 10 has recall {recall:.2f} against the exact answer")
    return Figure(
        name="matchcut-across",
        description=f"top-10 cross-title match cuts of {TITLES} titles x {SHOTS} shots, D={ACROSS_WIDTH}, through "
        f"the boundary HNSW indexes ({CANDIDATES_PER_SHOT} candidates a shot): {samples.target_median:.1f} s, "
        f"recall@10 {recall:.2f} against exact all pairs",
        target_label="interfaces.matchcuts.cross_title_pairs (HNSW candidates, exact scores)",
        baseline_label="features.pairs.across_titles: every pair scored, in blocks",
        samples=samples,
        max_seconds=MAX_ACROSS_SECONDS,
        notes={
            "titles": TITLES,
            "shots": SHOTS,
            "width": ACROSS_WIDTH,
            "recall_at_10": recall,
            "candidates_per_shot": CANDIDATES_PER_SHOT,
            "indexing_s": round(indexing_s, 1),
        },
    )


def _clustered(rng: np.random.Generator, centres: Array, count: int) -> Array:
    rows = centres[rng.integers(0, len(centres), count)] + 0.6 * rng.standard_normal((count, centres.shape[1]))
    unit: Array = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    return unit


def _unit_rows(rng: np.random.Generator, count: int) -> Array:
    rows = rng.standard_normal((count, WIDTH)).astype(np.float32)
    unit: Array = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return unit
