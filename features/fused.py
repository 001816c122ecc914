"""The fused tri-modal shot vector: video, audio and text, weighted equally."""

from __future__ import annotations

from typing import Any

import numpy as np

from mediamesh.features.errors import ExecutionError
from mediamesh.features.spec import feature
from mediamesh.features.values import ShotEmbeddings

__all__ = ["fused"]

MODALITIES = ("video", "audio", "text")


@feature(version="1", resources="cpu")
def fused(
    video_embedding: ShotEmbeddings,
    audio_embedding: ShotEmbeddings,
    text_embedding: ShotEmbeddings,
) -> ShotEmbeddings:
    """Each modality unit-normed (zero rows stay zero), concatenated, and unit-normed again: one vector per shot."""
    parts = dict(zip(MODALITIES, (video_embedding.data, audio_embedding.data, text_embedding.data), strict=True))
    _check_parts(parts)
    normed = {name: unit_rows(data) for name, data in parts.items()}
    data = unit_rows(np.concatenate(list(normed.values()), axis=1))
    return ShotEmbeddings(
        data,
        {
            "dims": {name: int(part.shape[1]) for name, part in parts.items()},
            "zero_rows": {name: int(np.count_nonzero(~part.any(axis=1))) for name, part in parts.items()},
            "fingerprints": {
                name: value.meta.get("fingerprint")
                for name, value in zip(MODALITIES, (video_embedding, audio_embedding, text_embedding), strict=True)
            },
        },
    )


def unit_rows(rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``rows`` as float32, each divided by its L2 norm; a zero row stays exactly zero."""
    rows = np.asarray(rows, np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.ascontiguousarray(np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0))


def _check_parts(parts: dict[str, np.ndarray[Any, Any]]) -> None:
    for name, data in parts.items():
        if data.ndim != 2:
            raise ExecutionError(f"fused: the {name} embedding must be (shots, D), got shape {data.shape}")
        if not np.isfinite(data).all():
            raise ExecutionError(f"fused: the {name} embedding has non-finite values")
    counts = {name: data.shape[0] for name, data in parts.items()}
    if len(set(counts.values())) != 1:
        listed = ", ".join(f"{name} {count}" for name, count in counts.items())
        raise ExecutionError(f"fused: the modalities disagree on the number of shots ({listed})")
