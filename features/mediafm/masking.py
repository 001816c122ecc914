"""Masked shot modeling: which shots to hide, and how far the model's guess is from the hidden shot."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["choose_masked", "mask_count", "masked_cosine_loss"]


def choose_masked(
    lengths: Sequence[int], max_len: int, ratio: float = 0.2, generator: torch.Generator | None = None
) -> Tensor:
    """A bool (B, max_len) mask: in row b, exactly :func:`mask_count` of the first ``lengths[b]`` positions,
    drawn uniformly without replacement; padding is never masked. Row b draws its positions from
    ``generator`` after row b-1, so a seeded generator gives the same mask every time."""
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"choose_masked: ratio must be in (0, 1], got {ratio}")
    masked = torch.zeros(len(lengths), max_len, dtype=torch.bool)
    for row, length in enumerate(lengths):
        if not 1 <= length <= max_len:
            raise ValueError(f"choose_masked: sequence {row} has {length} shots; expected 1 to {max_len}")
        positions = torch.randperm(length, generator=generator)[: mask_count(length, ratio)]
        masked[row, positions] = True
    return masked


def mask_count(length: int, ratio: float = 0.2) -> int:
    """How many of ``length`` shots are masked: ``round(ratio * length)`` (half to even), at least one."""
    return max(1, round(ratio * length))


def masked_cosine_loss(reconstruction: Tensor, target: Tensor, masked: Tensor) -> Tensor:
    """The mean, over masked positions, of ``1 - cos(reconstruction, target)``; computed in float32."""
    if reconstruction.shape != target.shape:
        raise ValueError(
            f"masked_cosine_loss: reconstruction {tuple(reconstruction.shape)} and target {tuple(target.shape)} differ"
        )
    if masked.shape != reconstruction.shape[:-1]:
        raise ValueError(f"masked_cosine_loss: masked must be {tuple(reconstruction.shape[:-1])}, got {masked.shape}")
    cosine = F.cosine_similarity(reconstruction[masked].float(), target[masked].float(), dim=-1, eps=1e-8)
    if cosine.numel() == 0:
        raise ValueError("masked_cosine_loss: no position is masked")
    return (1.0 - cosine).mean()
