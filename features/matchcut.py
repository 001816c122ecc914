"""Match cutting: per shot, rows for how it ends and how it begins, and each title's best pairs of them.

Two flavours. ``frame_match`` describes a shot's last frame and its first by the video encoder's image
embedding beside a cheap structural descriptor (edges and where the light is, on coarse grids), so a cut
from one to the other keeps the framing and composition. ``motion_match`` describes the motion over a few
frames at each end by dense optical flow (OpenCV's Farneback), so a cut carries a movement on.
``frame_match_cuts`` and ``motion_match_cuts`` keep a title's top-K pairs, scored in bounded blocks
(:mod:`features.pairs`). Every one reads ``dedup``: a duplicate shot gets its representative's rows, and
the two are never a pair.

All four are ``on_demand``: an editor's query (``mediamesh matchcuts``) computes them, not every ingest, since
each representation costs a decoding pass over the whole encode.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from mediamesh.features.encoders import decode_frames, frame_batches, frame_embedder
from mediamesh.features.errors import ExecutionError
from mediamesh.features.models import batch_size, model_fingerprint, resolve_model
from mediamesh.features.pairs import within_title
from mediamesh.features.spec import feature
from mediamesh.features.values import BoundaryRows, DedupMap, EncodedMedia, MatchCut, MatchCuts, Shot, ShotTable

__all__ = [
    "EDGE_GRID",
    "FLOW_BINS",
    "LUMA_GRID",
    "MOTION_DIM",
    "REPEAT_ABOVE",
    "boundary_frames",
    "frame_match",
    "frame_match_cuts",
    "motion_descriptor",
    "motion_match",
    "motion_match_cuts",
    "roots",
    "structure_descriptor",
]

Array = np.ndarray[Any, Any]

#: The structural descriptor: centred Sobel magnitudes on an EDGE_GRID square grid, and centred luma on a
#: LUMA_GRID one, each unit-normed; a frame's aspect ratio is not kept, so titles of any shape compare.
EDGE_GRID = 16
LUMA_GRID = 8
_EDGE_WORK = 64
#: Directions of flow, in bins of 45 degrees; the motion row is those bins and the mean flow's direction.
FLOW_BINS = 8
MOTION_DIM = FLOW_BINS + 2
#: A frame pair scoring over this is one picture twice (a repeated card, a cut back to the same set-up), not a
#: match cut; a graded, reframed copy of a frame scores about 0.94.
REPEAT_ABOVE = 0.98
#: Flow is measured on frames shrunk to this width: motion at a cut is coarse, and this keeps it cheap.
FLOW_WIDTH = 128


@feature(version="1", resources="gpu", model=lambda: model_fingerprint("video"), on_demand=True)
def frame_match(
    encode: EncodedMedia, shots: ShotTable, dedup: DedupMap, *, structure_weight: float = 0.5
) -> BoundaryRows:
    """Per shot, unit rows for its last frame and its first: the video encoder's image embedding beside a
    coarse layout of edges and light, so ``ends[a] . starts[b]`` is ``(1 - w)`` times their embeddings'
    cosine plus ``w`` (``structure_weight``) times their layouts'."""
    if not 0.0 <= structure_weight <= 1.0:
        raise ValueError(f"structure_weight must be in [0, 1], got {structure_weight}")
    groups = roots(dedup, len(shots))
    unique = sorted(set(groups))
    bounds = {shot: boundary_frames(shots.shots[shot], shots.fps, encode.frame_count) for shot in unique}
    ref = resolve_model("video")
    embed, where = frame_embedder(ref)
    wanted = {index for first, last in bounds.values() for index in (first, last)}
    described: dict[int, Array] = {}
    for indices, frames in frame_batches(decode_frames(encode.path, wanted), batch_size("video")):
        for index, vector, rgb in zip(indices, embed(frames), frames, strict=True):
            described[index] = _frame_row(vector, structure_descriptor(rgb), structure_weight)
    width = len(next(iter(described.values()))) if described else EDGE_GRID**2 + LUMA_GRID**2
    ends_starts = {shot: (described[last], described[first]) for shot, (first, last) in bounds.items()}
    rows = _shared(groups, ends_starts, width)
    return BoundaryRows(
        rows,
        {
            "flavour": "frame",
            "role": ref.role,
            "kind": ref.kind,
            "model": ref.source,
            "fingerprint": ref.fingerprint,
            "device": where,
            "structure_weight": structure_weight,
            "layout": f"[embedding, edges {EDGE_GRID}x{EDGE_GRID}, luma {LUMA_GRID}x{LUMA_GRID}]",
            "unique_shots": len(unique),
            "dedup": dedup.method,
            "groups": groups,
        },
    )


@feature(version="1", resources="cpu", on_demand=True)
def motion_match(
    encode: EncodedMedia, shots: ShotTable, dedup: DedupMap, *, frames: int = 4, min_motion: float = 0.1
) -> BoundaryRows:
    """Per shot, unit rows for the motion over its last ``frames`` frames and its first: dense optical flow as
    a magnitude-weighted histogram of directions and the mean flow's direction; zeros where the mean flow is
    under ``min_motion`` pixels a frame (at 128 pixels wide), so still shots match nothing."""
    if frames < 2:
        raise ValueError(f"motion_match: frames must be at least 2 (flow is between frames), got {frames}")
    groups = roots(dedup, len(shots))
    unique = sorted(set(groups))
    windows: dict[tuple[int, int], list[int]] = {}
    for shot in unique:
        first, last = boundary_frames(shots.shots[shot], shots.fps, encode.frame_count)
        windows[(shot, 0)] = list(range(max(last - frames + 1, first), last + 1))
        windows[(shot, 1)] = list(range(first, min(first + frames, last + 1)))
    rows = {key: np.zeros(MOTION_DIM, np.float32) for key in windows}
    for key, greys in _windows(encode, windows):
        rows[key] = motion_descriptor(greys, min_motion=min_motion)
    data = _shared(groups, {shot: (rows[(shot, 0)], rows[(shot, 1)]) for shot in unique}, MOTION_DIM)
    return BoundaryRows(
        data,
        {
            "flavour": "motion",
            "frames": frames,
            "min_motion": min_motion,
            "flow": f"farneback at {FLOW_WIDTH} px wide",
            "layout": f"[direction histogram {FLOW_BINS}, mean flow direction 2]",
            "unique_shots": len(unique),
            "dedup": dedup.method,
            "groups": groups,
        },
    )


@feature(version="1", resources="cpu", on_demand=True)
def frame_match_cuts(
    frame_match: BoundaryRows, dedup: DedupMap, *, k: int = 20, repeat_above: float = REPEAT_ABOVE
) -> MatchCuts:
    """The title's ``k`` best frame match cuts, best first: shot a's last frame against shot b's first. A pair
    scoring over ``repeat_above`` shows the same picture twice (a title card that comes back): a repeat, not a
    match cut, and left out."""
    return _cuts("frame", frame_match, dedup, k, repeat_above)


@feature(version="1", resources="cpu", on_demand=True)
def motion_match_cuts(motion_match: BoundaryRows, dedup: DedupMap, *, k: int = 20) -> MatchCuts:
    """The title's ``k`` best motion match cuts, best first: the motion ending shot a against that starting b."""
    return _cuts("motion", motion_match, dedup, k)


def roots(dedup: DedupMap, shot_count: int) -> list[int]:
    """Per shot, the unique shot whose rows it shares (chains of duplicates followed to their start)."""
    if len(dedup.representative) != shot_count:
        raise ExecutionError(
            f"the dedup map covers {len(dedup.representative)} shots but the shot table has {shot_count}"
        )
    found: list[int] = []
    for shot, representative in enumerate(dedup.representative):
        if not 0 <= representative <= shot:
            raise ExecutionError(f"the dedup map says shot {shot} repeats shot {representative}, not an earlier shot")
        found.append(shot if representative == shot else found[representative])
    return found


def boundary_frames(shot: Shot, fps: float, frame_count: int) -> tuple[int, int]:
    """The shot's first frame and its last, as frame indices; a shot that begins with a fade or dissolve
    begins where that ends, since its frames before are partly the shot before."""
    last = max(min(shot.end_frame, frame_count) - 1, 0)
    first = min(max(shot.start_frame, 0), last)
    if shot.transition == "gradual" and shot.transition_end is not None:
        first = min(max(first, round(shot.transition_end * fps)), last)
    return first, last


def structure_descriptor(rgb: Array) -> Array:
    """The layout of an RGB frame, (EDGE_GRID**2 + LUMA_GRID**2,) float32 of unit norm (zeros when flat):
    Sobel magnitudes and luma, each averaged on a square grid, centred and unit-normed, then joined.

    Centring makes each half a correlation: a colour grade or an exposure change moves it little.
    """
    import cv2

    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    work = cv2.resize(grey, (_EDGE_WORK, _EDGE_WORK), interpolation=cv2.INTER_AREA).astype(np.float32)
    edges = cv2.magnitude(cv2.Sobel(work, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(work, cv2.CV_32F, 0, 1, ksize=3))
    edge_grid = cv2.resize(edges, (EDGE_GRID, EDGE_GRID), interpolation=cv2.INTER_AREA).ravel()
    luma_grid = cv2.resize(work, (LUMA_GRID, LUMA_GRID), interpolation=cv2.INTER_AREA).ravel()
    parts = [_unit(part - part.mean()) for part in (edge_grid, luma_grid)]
    return _unit(np.concatenate(parts))


def motion_descriptor(greys: list[Array], *, min_motion: float = 0.1) -> Array:
    """The motion over consecutive grey frames (all one size), (MOTION_DIM,) float32 of unit norm: Farneback
    flow between each two as a histogram of FLOW_BINS directions weighted by magnitude (summing to 1) and
    the mean flow over its mean magnitude (length 1 for a pan, near 0 for a zoom); zeros for fewer than two
    frames or a mean flow magnitude under ``min_motion`` pixels a frame."""
    import cv2

    if len(greys) < 2:
        return np.zeros(MOTION_DIM, np.float32)
    flows = np.stack(
        [
            cv2.calcOpticalFlowFarneback(before, after, None, 0.5, 3, 15, 3, 5, 1.2, 0)
            for before, after in itertools.pairwise(greys)
        ]
    ).reshape(-1, 2)
    magnitude = np.hypot(flows[:, 0], flows[:, 1])
    mean_magnitude = float(magnitude.mean())
    if mean_magnitude < min_motion:
        return np.zeros(MOTION_DIM, np.float32)
    angle = np.arctan2(flows[:, 1], flows[:, 0]) % (2 * np.pi)
    bins = np.minimum((angle / (2 * np.pi) * FLOW_BINS).astype(np.int64), FLOW_BINS - 1)
    histogram = np.bincount(bins, weights=magnitude, minlength=FLOW_BINS) / magnitude.sum()
    mean = flows.mean(axis=0) / mean_magnitude
    return _unit(np.concatenate([histogram, mean]).astype(np.float32))


def _frame_row(embedding: Array, layout: Array, structure_weight: float) -> Array:
    """One frame's row: its unit embedding and its layout, weighted so their dot products add as cosines."""
    parts = [
        math.sqrt(1.0 - structure_weight) * _unit(np.asarray(embedding, np.float32)),
        math.sqrt(structure_weight) * layout,
    ]
    return _unit(np.concatenate(parts))


def _cuts(flavour: str, rows: BoundaryRows, dedup: DedupMap, k: int, ceiling: float = math.inf) -> MatchCuts:
    if k < 1:
        raise ValueError(f"{flavour}_match_cuts: k must be at least 1, got {k}")
    groups = roots(dedup, len(rows.data))
    found = within_title(rows.ends, rows.starts, groups, k, ceiling=ceiling)
    return MatchCuts(flavour, tuple(MatchCut(a, b, round(score, 6)) for a, b, score in found.tuples()))


def _windows(encode: EncodedMedia, windows: dict[tuple[int, int], list[int]]) -> Iterator[tuple[Any, list[Array]]]:
    """Each window's frames, grey and shrunk to FLOW_WIDTH, as soon as its last frame is decoded; a frame is
    kept only until the last window that needs it is handed on, so memory follows the windows in flight."""
    import cv2

    needing: dict[int, int] = {}
    for indices in windows.values():
        for index in indices:
            needing[index] = needing.get(index, 0) + 1
    closing: dict[int, list[tuple[int, int]]] = {}
    for key, indices in windows.items():
        if indices:
            closing.setdefault(indices[-1], []).append(key)
    kept: dict[int, Array] = {}
    for index, rgb in decode_frames(encode.path, set(needing)):
        height, width = rgb.shape[:2]
        size = (FLOW_WIDTH, max(1, round(FLOW_WIDTH * height / width)))
        kept[index] = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_AREA)
        for key in closing.get(index, []):
            yield key, [kept[i] for i in windows[key]]
            for i in windows[key]:
                needing[i] -= 1
                if not needing[i]:
                    del kept[i]


def _shared(groups: list[int], unique_rows: dict[int, tuple[Array, Array]], width: int) -> Array:
    """(shots, 2, width) float32: each shot's (end, start) rows, a duplicate's copied from its representative."""
    data = np.zeros((len(groups), 2, width), np.float32)
    for shot, group in enumerate(groups):
        end, start = unique_rows[group]
        data[shot, 0], data[shot, 1] = end, start
    return data


def _unit(row: Array) -> Array:
    norm = float(np.linalg.norm(row))
    unit: Array = (row / norm if norm > 0 else np.zeros_like(row)).astype(np.float32)
    return unit
