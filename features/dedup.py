"""Near-duplicate shots, found by difference hashes of a few frames sampled in each shot."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mediamesh.features import frames as shared
from mediamesh.features.errors import InputFileError, MediaError
from mediamesh.features.spec import feature
from mediamesh.features.values import DedupMap, EncodedMedia, Shot, ShotTable

__all__ = ["dedup", "dhash", "representatives", "sample_frames"]


@feature(version="1", resources="cpu")
def dedup(encode: EncodedMedia, shots: ShotTable, *, frames: int = 3, max_distance: int = 6) -> DedupMap:
    """Near-duplicate shots: each shot mapped to the earlier shot it repeats, by perceptual hashes of
    sampled frames.

    Each shot is hashed at ``frames`` frames spread uniformly over it (64-bit dHash); shot j repeats
    shot i when each of its hashes is within ``max_distance`` bits of i's hash at the same place.
    """
    if frames < 1:
        raise ValueError(f"dedup: frames must be at least 1, got {frames}")
    if not 0 <= max_distance <= 64:
        raise ValueError(f"dedup: max_distance must be in [0, 64] bits, got {max_distance}")
    samples = [sample_frames(shot, frames) for shot in shots.shots]
    hashes = _hash_frames(encode, {i for sample in samples for i in sample})
    table = np.array([[hashes[i] for i in sample] for sample in samples], dtype=np.uint64).reshape(-1, frames)
    return DedupMap(representative=representatives(table, max_distance), method=f"dhash64x{frames}<={max_distance}")


@shared.hint("dedup")
def _dedup_frames(encode: EncodedMedia, shots: ShotTable, params: Mapping[str, Any]) -> set[int]:
    count = max(int(params.get("frames", 3)), 1)
    return {i for shot in shots.shots for i in sample_frames(shot, count)}


def sample_frames(shot: Shot, frames: int) -> list[int]:
    """``frames`` frame indices spread uniformly over ``[start_frame, end_frame)``, each at the middle of
    its share; a shot shorter than ``frames`` repeats some, so every shot has the same number."""
    length = max(1, shot.end_frame - shot.start_frame)
    return [shot.start_frame + (2 * k + 1) * length // (2 * frames) for k in range(frames)]


def representatives(hashes: np.ndarray[Any, np.dtype[np.uint64]], max_distance: int) -> tuple[int, ...]:
    """For each row of ``hashes`` (shots x sampled frames), the earliest earlier unique row whose every
    hash is within ``max_distance`` bits of it, else the row's own index."""
    count, frames = hashes.shape
    unique = np.empty((count, frames), dtype=np.uint64)
    unique_index: list[int] = []
    result: list[int] = []
    for j in range(count):
        seen = len(unique_index)
        if seen:
            differing = np.unpackbits((unique[:seen] ^ hashes[j]).view(np.uint8), axis=1)
            bits = differing.reshape(seen, frames, 64).sum(axis=2)
            matches = np.flatnonzero((bits <= max_distance).all(axis=1))
            if matches.size:
                result.append(unique_index[int(matches[0])])
                continue
        unique[seen] = hashes[j]
        unique_index.append(j)
        result.append(j)
    return tuple(result)


def dhash(gray: np.ndarray[Any, Any]) -> int:
    """The 64-bit difference hash of a grayscale image: shrunk to 9x8, each bit says whether a pixel is
    brighter than its left neighbour."""
    import cv2

    small = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA)
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def _hash_frames(encode: EncodedMedia, wanted: set[int]) -> dict[int, int]:
    """dHash of each ``wanted`` frame, by index in decoding order, from one pass that stops at the last (or
    none: see :mod:`features.frames`)."""
    if not encode.path.is_file():
        raise InputFileError(f"encode {encode.path.name!r} does not exist ({encode.path})")
    hashes = {index: dhash(grey) for index, grey in shared.read(encode.path, wanted, "gray")}
    if len(hashes) < len(wanted):
        raise MediaError(
            f"encode {encode.path.name!r} has {encode.frame_count} frames, but the shots need frame {max(wanted)}; "
            "were they found on another encode?"
        )
    return hashes
