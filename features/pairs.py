"""The top-K pairs of rows by dot product, scored in blocks so memory stays bounded whatever the row count.

Match cutting scores the end of every shot against the start of every other: about 2,000 x 2,000 pairs in a
title, and a title set's square across titles. Scores are made a block of ``ROWS x COLUMNS`` at a time and
only the entries that beat the current K-th best leave the block, so the largest allocation is about
``ROWS * COLUMNS * 20`` bytes (the block, its masks and the indices of its hits), never ``shots ** 2``.

Ties are broken by ``a`` then ``b``, so the answer does not depend on the block sizes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "COLUMNS",
    "ROWS",
    "Exclusion",
    "Pairs",
    "TitleRows",
    "TopK",
    "across_titles",
    "representatives",
    "top_pairs",
    "within_title",
]

Array = np.ndarray[Any, Any]
#: Given a block's end-row ids and start-row ids, a boolean (rows, columns) mask, True where a pair is excluded.
Exclusion = Callable[[Array, Array], Array]

#: Rows and columns of one block of scores: 256 x 1024 float32 is 1 MiB.
ROWS = 256
COLUMNS = 1024
# Cross-title pairs carry their title in the high part of the id: a title has fewer shots than this.
_TITLE_STRIDE = 1 << 32


@dataclass(frozen=True, eq=False)
class Pairs:
    """Pairs best first: row ``a[i]`` of the ends with row ``b[i]`` of the starts scores ``score[i]``."""

    a: Array
    b: Array
    score: Array

    def __len__(self) -> int:
        return len(self.a)

    def tuples(self) -> list[tuple[int, int, float]]:
        return [(int(a), int(b), float(s)) for a, b, s in zip(self.a, self.b, self.score, strict=True)]


@dataclass(frozen=True, eq=False)
class TitleRows:
    """One title's boundary rows for a cross-title query: ``ends`` and ``starts`` (shots, D), and per shot the
    shot whose rows it shares (its dedup representative, itself when unique)."""

    ends: Array
    starts: Array
    groups: Sequence[int]


class TopK:
    """The ``k`` best (score, a, b) seen so far, fed a block of scores at a time; scores must beat ``floor`` and
    not pass ``ceiling``."""

    def __init__(self, k: int, floor: float = -np.inf, ceiling: float = np.inf) -> None:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.k = k
        self.floor = floor
        self.ceiling = ceiling
        self.score = np.empty(0, np.float32)
        self.a = np.empty(0, np.int64)
        self.b = np.empty(0, np.int64)

    def offer(self, block: Array, rows: Array, columns: Array) -> None:
        """Take the entries of ``block`` (len(rows), len(columns)) that can still be among the best; ``rows``
        and ``columns`` are the ids its entries are reported by. ``block`` may be overwritten."""
        flat = block.reshape(-1)
        if self.ceiling < np.inf:
            flat[flat > self.ceiling] = -np.inf
        # A full pool admits only what ties or beats its worst, so most blocks hand on a handful of entries.
        passing = flat >= self.score[-1] if len(self.score) == self.k else flat > self.floor
        count = int(np.count_nonzero(passing))
        if not count:
            return
        if count > self.k:  # an early block: first cut it to its own best, four bytes an entry at most
            values = flat[passing]
            values.partition(count - self.k)
            passing &= flat >= values[count - self.k]
            del values
        hits = np.flatnonzero(passing)
        r, c = np.divmod(hits, block.shape[1])
        self._keep(
            np.concatenate([self.score, flat[hits]]),
            np.concatenate([self.a, rows[r]]),
            np.concatenate([self.b, columns[c]]),
        )

    def pairs(self) -> Pairs:
        return Pairs(self.a.copy(), self.b.copy(), self.score.copy())

    def _keep(self, score: Array, a: Array, b: Array) -> None:
        if len(score) > self.k:
            kth = np.partition(score, len(score) - self.k)[len(score) - self.k]
            chosen = np.flatnonzero(score >= kth)
            score, a, b = score[chosen], a[chosen], b[chosen]
        order = np.lexsort((b, a, -score))[: self.k]
        self.score, self.a, self.b = score[order].astype(np.float32), a[order], b[order]


def top_pairs(
    ends: Array,
    starts: Array,
    k: int,
    *,
    exclude: Exclusion | None = None,
    floor: float = -np.inf,
    rows: int = ROWS,
    columns: int = COLUMNS,
) -> Pairs:
    """The ``k`` pairs (a, b) with the highest ``ends[a] . starts[b]`` above ``floor``, best first, except
    those ``exclude`` masks; scored ``rows x columns`` at a time."""
    ends, starts = _rows(ends), _rows(starts)
    if ends.shape[1] != starts.shape[1]:
        raise ValueError(f"ends have {ends.shape[1]} columns but starts have {starts.shape[1]}")
    best = TopK(k, floor)
    _score_into(best, ends, starts, np.arange(len(ends)), np.arange(len(starts)), exclude, rows, columns)
    return best.pairs()


def within_title(
    ends: Array,
    starts: Array,
    groups: Sequence[int],
    k: int,
    *,
    floor: float = 0.0,
    ceiling: float = np.inf,
    rows: int = ROWS,
    columns: int = COLUMNS,
) -> Pairs:
    """A title's ``k`` best match cuts: shot a's end against shot b's start, over the unique shots of
    ``groups`` (a duplicate is represented by its representative); never a shot with itself or with the shot
    that follows it (that cut is already in the title). Pairs scoring ``floor`` or less are no match; pairs
    scoring over ``ceiling`` are the same picture again (a repeat), not a match."""
    keep = representatives(groups)
    if len(groups) != len(ends) or len(groups) != len(starts):
        raise ValueError(f"{len(groups)} groups for {len(ends)} end rows and {len(starts)} start rows")

    def adjacent(a: Array, b: Array) -> Array:
        mask: Array = (b[None, :] == a[:, None]) | (b[None, :] == a[:, None] + 1)
        return mask

    ends, starts = _rows(ends), _rows(starts)
    best = TopK(k, floor, ceiling)
    _score_into(best, ends, starts, keep, keep, adjacent, rows, columns)
    return best.pairs()


def across_titles(
    titles: Sequence[TitleRows],
    k: int,
    *,
    floor: float = 0.0,
    rows: int = ROWS,
    columns: int = COLUMNS,
) -> tuple[Array, Pairs]:
    """The ``k`` best match cuts between different titles, exactly: every unique shot's end in one title
    against every unique shot's start in each other title, blocked.

    Returns each pair's title of ``a`` and ``b`` as an (n, 2) array, and the pairs (shot indices within their
    titles). The cost is ``shots ** 2``; an approximate index narrows the candidates where that is too much.
    """
    kept = [representatives(t.groups) for t in titles]
    best = TopK(k, floor)
    for x, (title_a, keep_a) in enumerate(zip(titles, kept, strict=True)):
        for y, (title_b, keep_b) in enumerate(zip(titles, kept, strict=True)):
            if x != y:
                ends, starts = _rows(title_a.ends), _rows(title_b.starts)
                tags = (x * _TITLE_STRIDE, y * _TITLE_STRIDE)
                _score_into(best, ends, starts, keep_a, keep_b, None, rows, columns, tags)
    found = best.pairs()
    which = np.stack([found.a // _TITLE_STRIDE, found.b // _TITLE_STRIDE], axis=1)
    return which, Pairs(found.a % _TITLE_STRIDE, found.b % _TITLE_STRIDE, found.score)


def representatives(groups: Sequence[int]) -> Array:
    """The shots that stand for their group (those that are their own representative), in order."""
    group = np.asarray(groups, np.int64)
    return np.flatnonzero(group == np.arange(len(group)))


def _score_into(
    best: TopK,
    ends: Array,
    starts: Array,
    ids_a: Array,
    ids_b: Array,
    exclude: Exclusion | None,
    rows: int,
    columns: int,
    tags: tuple[int, int] = (0, 0),
) -> None:
    """Offer ``best`` every pair of ``ends[ids_a]`` and ``starts[ids_b]``, a block at a time, reported as the
    ids plus ``tags``; the rows of a block are gathered then, so a subset of rows costs no copy of them all."""
    if rows < 1 or columns < 1:
        raise ValueError(f"a block needs at least one row and one column, got {rows} x {columns}")
    for r0 in range(0, len(ids_a), rows):
        block_a = ids_a[r0 : r0 + rows]
        block_ends = _gather(ends, block_a)
        for c0 in range(0, len(ids_b), columns):
            block_b = ids_b[c0 : c0 + columns]
            scores = block_ends @ _gather(starts, block_b).T
            if exclude is not None:
                scores[exclude(block_a, block_b)] = -np.inf
            best.offer(scores, block_a + tags[0], block_b + tags[1])


def _gather(array: Array, ids: Array) -> Array:
    """``array[ids]``, as a view when ``ids`` is a run of consecutive rows."""
    if len(ids) and ids[-1] - ids[0] == len(ids) - 1:
        return array[ids[0] : ids[-1] + 1]
    return array[ids]


def _rows(array: Array) -> Array:
    rows = np.asarray(array, np.float32)
    if rows.ndim != 2:
        raise ValueError(f"expected rows (n, D), got an array of shape {rows.shape}")
    return rows
