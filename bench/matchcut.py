"""Match cutting's pair scoring on synthetic boundary rows, against bare matrix products of the same size.

Within a title: the blocked top-K of a 2,000-shot title (``features.pairs.within_title``) against one bare
``ends @ starts.T``, which holds every score at once and keeps none. Across titles: the exact blocked query
over 10 titles x 2,000 shots (``features.pairs.across_titles``) against the bare products of the same title
pairs, one 2,000 x 2,000 product at a time. Rows are as wide as ``frame_match``'s with CLIP ViT-B/32 (512)
beside the structural descriptor.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.context import Context
from bench.harness import Figure, measure_memory, side_by_side
from mediamesh.features.matchcut import EDGE_GRID, LUMA_GRID
from mediamesh.features.pairs import TitleRows, across_titles, within_title

__all__ = ["run"]

SHOTS = 2000
TITLES = 10
K = 20
WIDTH = 512 + EDGE_GRID**2 + LUMA_GRID**2
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
        memory_target=measure_memory(blocked),
        memory_baseline=measure_memory(bare),
        notes={
            "shots": SHOTS,
            "width": WIDTH,
            "k": K,
            "pairs_per_s": pairs / samples.target_median,
            "baseline_pairs_per_s": pairs / samples.baseline_median,
        },
    )


def _across(ctx: Context, rng: np.random.Generator) -> Figure:
    titles = [TitleRows(_unit_rows(rng, SHOTS), _unit_rows(rng, SHOTS), list(range(SHOTS))) for _ in range(TITLES)]

    def query() -> None:
        across_titles(titles, K)

    def bare() -> None:
        for x, a in enumerate(titles):
            for y, b in enumerate(titles):
                if x != y:
                    a.ends @ b.starts.T

    samples = side_by_side(query, bare, repeats=ctx.repeats(3, 1), warmup=0)
    pairs = TITLES * (TITLES - 1) * SHOTS * SHOTS
    return Figure(
        name="matchcut-across",
        description=f"exact top-{K} cross-title match cuts of {TITLES} titles x {SHOTS} shots, D={WIDTH} "
        f"({pairs / 1e6:.0f} M pairs, {samples.target_median:.1f} s)",
        target_label="features.pairs.across_titles(titles, 20)",
        baseline_label="the bare title-pair products, 2,000 x 2,000 at a time",
        samples=samples,
        max_seconds=MAX_ACROSS_SECONDS,
        notes={
            "titles": TITLES,
            "shots": SHOTS,
            "width": WIDTH,
            "pairs_per_s": pairs / samples.target_median,
            "baseline_pairs_per_s": pairs / samples.baseline_median,
            "recall_at_10": 1.0,  # exact: every pair is scored
        },
    )


def _unit_rows(rng: np.random.Generator, count: int) -> Array:
    rows = rng.standard_normal((count, WIDTH)).astype(np.float32)
    unit: Array = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return unit
