"""Match cutting without video: blocked top-K pairs over synthetic rows, exclusions, memory, and the descriptors."""

from __future__ import annotations

import tracemalloc
from typing import Any

import cv2
import numpy as np
import pytest

from mediamesh.features.matchcut import (
    MOTION_DIM,
    REPEAT_ABOVE,
    boundary_frames,
    frame_match,
    frame_match_cuts,
    motion_descriptor,
    motion_match,
    motion_match_cuts,
    roots,
    structure_descriptor,
)
from mediamesh.features.pairs import TitleRows, TopK, across_titles, top_pairs, within_title
from mediamesh.features.spec import spec_of
from mediamesh.features.values import BoundaryRows, DedupMap, MatchCut, MatchCuts, Shot

Array = np.ndarray[Any, Any]
#: Peak Python-heap bytes (tracemalloc, NumPy included) of a 2,000-shot title's top-20 at D = 512, inputs
#: aside: the default 256 x 1024 block and its masks, against 16 MB for the bare score matrix alone.
MEMORY_BOUND = 6 * 2**20


def unit_rows(rng: np.random.Generator, n: int, d: int) -> Array:
    rows = rng.standard_normal((n, d)).astype(np.float32)
    normed: Array = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return normed


def brute_force(ends: Array, starts: Array, k: int, excluded: Array, floor: float = -np.inf) -> list[tuple[int, int]]:
    """The top-k of the whole score matrix, ties by (a, b): what the blocked search must reproduce."""
    scores = ends.astype(np.float64) @ starts.T.astype(np.float64)
    a, b = np.nonzero(~excluded & (scores > floor))
    order = np.lexsort((b, a, -scores[a, b]))[:k]
    return [(int(a[i]), int(b[i])) for i in order]


def test_planted_pairs_come_first_and_no_shot_meets_itself_or_the_next() -> None:
    rng = np.random.default_rng(0)
    ends, starts = unit_rows(rng, 300, 64), unit_rows(rng, 300, 64)
    planted = [(17, 200), (250, 3), (90, 91), (40, 40), (120, 60)]  # (90, 91) is a cut already; (40, 40) itself
    for i, (a, b) in enumerate(planted):
        row = ends[a] + 0.01 * i * unit_rows(rng, 1, 64)[0]
        starts[b] = row / np.linalg.norm(row)
    found = within_title(ends, starts, list(range(300)), 3).tuples()
    assert [(a, b) for a, b, _ in found] == [(17, 200), (250, 3), (120, 60)]
    assert found[0][2] == pytest.approx(1.0, abs=1e-5)


def test_duplicates_are_represented_once_and_never_paired_with_each_other() -> None:
    rng = np.random.default_rng(1)
    ends, starts = unit_rows(rng, 50, 16), unit_rows(rng, 50, 16)
    groups = list(range(50))
    for duplicate, of in ((30, 10), (31, 10), (45, 2)):
        groups[duplicate] = of
        ends[duplicate], starts[duplicate] = ends[of], starts[of]
    ends[10] = starts[10] = ends[2] = starts[2] = ends[45]  # every duplicate's rows alike: any pair would win
    starts[8] = ends[4]  # the one true match
    pairs = within_title(ends, starts, groups, 2000).tuples()
    shots = {s for a, b, _ in pairs for s in (a, b)}
    assert not shots & {30, 31, 45}
    assert all(groups[a] != groups[b] and b != a + 1 for a, b, _ in pairs)
    assert (4, 8) in [(a, b) for a, b, _ in pairs[:3]]


@pytest.mark.parametrize(("rows", "columns"), [(1, 1), (7, 13), (64, 2000), (256, 1024)])
def test_blocked_top_k_equals_the_full_matrix_top_k(rows: int, columns: int) -> None:
    rng = np.random.default_rng(2)
    # Rounded rows give many exactly equal scores, so the tie order is tested too.
    ends = np.round(unit_rows(rng, 203, 8) * 4) / 4
    starts = np.round(unit_rows(rng, 211, 8) * 4) / 4
    groups = list(range(203))
    a, b = np.meshgrid(np.arange(203), np.arange(211), indexing="ij")
    adjacent = (b == a) | (b == a + 1)
    expected = brute_force(ends, starts[:203], 40, adjacent[:, :203], floor=0.0)
    found = within_title(ends, starts[:203], groups, 40, rows=rows, columns=columns)
    assert list(zip(found.a.tolist(), found.b.tolist(), strict=True)) == expected

    def odd_with_odd(r: Array, c: Array) -> Array:
        mask: Array = (r[:, None] % 2 == 1) & (c[None, :] % 2 == 1)
        return mask

    plain = top_pairs(ends, starts, 25, exclude=odd_with_odd, rows=rows, columns=columns)
    assert list(zip(plain.a.tolist(), plain.b.tolist(), strict=True)) == brute_force(
        ends, starts, 25, a % 2 & b % 2 == 1
    )
    assert np.all(np.diff(plain.score) <= 0)


def test_across_titles_is_the_exact_answer_over_pairs_of_different_titles() -> None:
    rng = np.random.default_rng(3)
    sizes = [40, 1, 75, 30]
    titles = [TitleRows(unit_rows(rng, n, 12), unit_rows(rng, n, 12), list(range(n))) for n in sizes]
    titles[2] = TitleRows(titles[2].ends, titles[2].starts, [0, 0, *range(2, 75)])  # shot 1 repeats shot 0
    titles[0].starts[5] = titles[3].ends[7]
    titles[3].starts[0] = titles[3].ends[9]  # within one title: never reported here
    which, pairs = across_titles(titles, 30, rows=16, columns=16)
    ends, starts = np.concatenate([t.ends for t in titles]), np.concatenate([t.starts for t in titles])
    title_of = np.repeat(np.arange(4), sizes)
    shot_of = np.concatenate([np.arange(n) for n in sizes])
    duplicate = (title_of == 2) & (shot_of == 1)
    excluded = (title_of[:, None] == title_of[None, :]) | duplicate[:, None] | duplicate[None, :]
    expected = brute_force(ends, starts, 30, excluded, floor=0.0)
    got = [(int(t[0]), int(a), int(t[1]), int(b)) for t, a, b in zip(which, pairs.a, pairs.b, strict=True)]
    assert got == [(title_of[x], shot_of[x], title_of[y], shot_of[y]) for x, y in expected]
    assert got[0] == (3, 7, 0, 5)


def test_a_2000_shot_title_stays_under_the_memory_bound() -> None:
    rng = np.random.default_rng(4)
    ends, starts = unit_rows(rng, 2000, 512), unit_rows(rng, 2000, 512)
    groups = list(range(2000))
    tracemalloc.start()
    try:
        within_title(ends, starts, groups, 20)
        _, blocked = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        full = ends @ starts.T
        _, bare = tracemalloc.get_traced_memory()
        del full
    finally:
        tracemalloc.stop()
    assert blocked < MEMORY_BOUND < bare


def test_top_k_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="k must be at least 1"):
        TopK(0)
    with pytest.raises(ValueError, match="ends have 3 columns but starts have 4"):
        top_pairs(np.zeros((2, 3)), np.zeros((2, 4)), 1)
    with pytest.raises(ValueError, match="3 groups for 2 end rows"):
        within_title(np.zeros((2, 3)), np.zeros((2, 3)), [0, 1, 2], 1)
    with pytest.raises(ValueError, match=r"expected rows \(n, D\)"):
        top_pairs(np.zeros(3), np.zeros(3), 1)


def test_cuts_features_read_rows_and_dedup() -> None:
    rng = np.random.default_rng(5)
    ends, starts = unit_rows(rng, 6, 10), unit_rows(rng, 6, 10)
    near = ends[1] + 0.25 * unit_rows(rng, 1, 10)[0]  # a graded, reframed copy: alike, not the same picture
    starts[4] = near / np.linalg.norm(near)
    starts[3] = ends[0]  # the same picture again (a card that comes back): a repeat, not a match cut
    ends[5], starts[5] = ends[2], starts[2]  # shot 5 repeats shot 2
    rows = BoundaryRows(np.stack([ends, starts], axis=1), {"flavour": "frame"})
    dedup = DedupMap((0, 1, 2, 3, 4, 2), "test")
    cuts = frame_match_cuts(rows, dedup, k=3)
    assert isinstance(cuts, MatchCuts) and cuts.flavour == "frame" and len(cuts.pairs) <= 3
    score = float(ends[1] @ starts[4])
    assert 0.9 < score < REPEAT_ABOVE
    assert cuts.pairs[0] == MatchCut(1, 4, pytest.approx(score, abs=1e-5))
    assert all(5 not in (p.a, p.b) for p in cuts.pairs)
    assert (0, 3) not in {(p.a, p.b) for p in cuts.pairs}
    assert (0, 3) in {(p.a, p.b) for p in frame_match_cuts(rows, dedup, k=3, repeat_above=1.01).pairs}
    assert MatchCuts.from_json(cuts.to_json()) == cuts
    assert motion_match_cuts(rows, dedup, k=1).flavour == "motion"
    with pytest.raises(ValueError, match="k must be at least 1"):
        frame_match_cuts(rows, dedup, k=0)


def test_the_features_are_plain_functions_with_specs() -> None:
    specs = {f.__name__: spec_of(f) for f in (frame_match, motion_match, frame_match_cuts, motion_match_cuts)}
    assert all(specs.values())
    assert specs["frame_match"] is not None and specs["frame_match"].input_names == ("encode", "shots", "dedup")
    assert specs["frame_match_cuts"] is not None and dict(specs["frame_match_cuts"].params) == {
        "k": 20,
        "repeat_above": REPEAT_ABOVE,
    }
    assert specs["motion_match_cuts"] is not None and specs["motion_match_cuts"].input_names == (
        "motion_match",
        "dedup",
    )


def test_roots_follow_chains_and_refuse_a_forward_reference() -> None:
    assert roots(DedupMap((0, 0, 1, 3), "m"), 4) == [0, 0, 0, 3]
    with pytest.raises(Exception, match="repeats shot 2, not an earlier shot"):
        roots(DedupMap((0, 2, 2), "m"), 3)
    with pytest.raises(Exception, match="covers 2 shots but the shot table has 3"):
        roots(DedupMap((0, 1), "m"), 3)


def test_boundary_frames_skip_a_dissolve_into_the_shot() -> None:
    assert boundary_frames(Shot(1, 24, 48, 1.0, 2.0, "cut"), 24.0, 100) == (24, 47)
    assert boundary_frames(Shot(1, 24, 48, 1.0, 2.0, "gradual", 1.0, 1.5), 24.0, 100) == (36, 47)
    assert boundary_frames(Shot(1, 90, 120, 3.75, 5.0, "cut"), 24.0, 100) == (90, 99)


def scene(seed: int, size: tuple[int, int] = (180, 480)) -> Array:
    """A textured grey scene, smooth enough for optical flow to follow."""
    noise = np.random.default_rng(seed).random((size[0] // 6, size[1] // 6)).astype(np.float32)
    image = cv2.resize(noise, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
    return np.clip(image * 255, 0, 255).astype(np.uint8)


def pan(image: Array, step: int, frames: int = 4, width: int = 128) -> list[Array]:
    """Frames of a camera panning over ``image`` by ``step`` pixels a frame (positive: to the right)."""
    start = 150 if step < 0 else 10
    return [np.ascontiguousarray(image[:72, start + i * step : start + i * step + width]) for i in range(frames)]


def test_pans_the_same_way_over_different_scenes_match_and_opposite_ones_do_not() -> None:
    right_a, right_b, left = pan(scene(0), 3), pan(scene(1), 4), pan(scene(2), -3)
    a, b, c = (motion_descriptor(frames) for frames in (right_a, right_b, left))
    assert a.shape == (MOTION_DIM,) and np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
    assert float(a @ b) > 0.95
    assert float(a @ c) < 0.1
    still = [scene(0)[:72, :128]] * 4
    assert not motion_descriptor(still).any()
    assert not motion_descriptor(right_a[:1]).any()


def test_a_graded_shifted_copy_keeps_its_layout() -> None:
    rng = np.random.default_rng(6)
    base = cv2.resize(rng.random((9, 16, 3)).astype(np.float32), (320, 180), interpolation=cv2.INTER_CUBIC)
    rgb = np.clip(base * 255, 0, 255).astype(np.uint8)
    graded = np.clip(np.roll(rgb, (3, 4), axis=(0, 1)).astype(np.float32) * [1.1, 0.9, 0.8] + 12, 0, 255)
    other = np.clip(cv2.resize(rng.random((9, 16, 3)).astype(np.float32), (320, 180)) * 255, 0, 255)
    layout, copy, different = (structure_descriptor(x.astype(np.uint8)) for x in (rgb, graded, other))
    assert np.linalg.norm(layout) == pytest.approx(1.0, abs=1e-5)
    assert float(layout @ copy) > 0.9 > 0.5 > float(layout @ different)
    assert not structure_descriptor(np.full((90, 160, 3), 7, np.uint8)).any()
