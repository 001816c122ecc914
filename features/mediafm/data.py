"""What training reads: titles of fused shot vectors, checked, cropped, padded into batches and masked."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mediamesh.features.mediafm.masking import choose_masked
from mediamesh.features.mediafm.model import MediaFMConfig
from mediamesh.features.mediafm.options import TrainOptions

__all__ = ["VALIDATION_SEED", "Batch", "TitleSequence", "checked", "collate", "training_batch", "validation_batches"]

Array = np.ndarray[Any, Any]

#: Validation masks are drawn from this seed whatever the training seed, so runs compare on the same task.
VALIDATION_SEED = 0


@dataclass(frozen=True, eq=False)
class TitleSequence:
    """One title's fused shot vectors ``fused`` (N, F) float32, in shot order, and its metadata embedding
    ``title`` (T,), or None when the title has none."""

    asset: str
    fused: Array
    title: Array | None = None

    def __len__(self) -> int:
        return int(self.fused.shape[0])


@dataclass(frozen=True)
class Batch:
    """Padded tensors for one forward pass (on CPU until :meth:`to`), and how many real shots they hold."""

    fused: Tensor
    title: Tensor
    title_present: Tensor
    padding: Tensor
    lengths: list[int]

    @property
    def shots(self) -> int:
        return sum(self.lengths)

    def to(self, device: torch.device) -> Batch:
        return Batch(
            self.fused.to(device),
            self.title.to(device),
            self.title_present.to(device),
            self.padding.to(device),
            self.lengths,
        )


def collate(parts: Sequence[tuple[Array, Array | None]], config: MediaFMConfig) -> Batch:
    """``(fused, title)`` pairs padded into one batch."""
    lengths = [len(fused) for fused, _ in parts]
    longest = max(lengths)
    fused = np.zeros((len(parts), longest, config.fused_dim), np.float32)
    title = np.zeros((len(parts), config.title_dim), np.float32)
    present = np.zeros(len(parts), np.bool_)
    padding = np.ones((len(parts), longest), np.bool_)
    for row, (shots, vector) in enumerate(parts):
        fused[row, : len(shots)] = shots
        padding[row, : len(shots)] = False
        if vector is not None:
            title[row], present[row] = vector, True
    return Batch(
        torch.from_numpy(fused),
        torch.from_numpy(title),
        torch.from_numpy(present),
        torch.from_numpy(padding),
        lengths,
    )


def training_batch(
    titles: Sequence[TitleSequence], config: MediaFMConfig, options: TrainOptions, step: int, steps_per_epoch: int
) -> tuple[Batch, Tensor]:
    """Step ``step``'s batch and mask, a function of ``(seed, step)`` alone."""
    seed, batch_size = options.seed, options.batch_size
    epoch, index = divmod(step, steps_per_epoch)
    order = np.random.default_rng([seed, 0, epoch]).permutation(len(titles))
    chosen = order[index * batch_size : (index + 1) * batch_size]
    rng = np.random.default_rng([seed, 1, step])
    parts: list[tuple[Array, Array | None]] = []
    for i in chosen:
        title = checked(titles[int(i)], config, "train")
        start = int(rng.integers(0, len(title) - config.max_shots + 1)) if len(title) > config.max_shots else 0
        parts.append((title.fused[start : start + config.max_shots], title.title))
    batch = collate(parts, config)
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    return batch, choose_masked(batch.lengths, batch.fused.shape[1], options.mask_ratio, generator)


def validation_batches(
    titles: Sequence[TitleSequence], config: MediaFMConfig, options: TrainOptions
) -> list[tuple[Batch, Tensor]]:
    """Fixed batches and masks: a title longer than ``max_shots`` is split into near-equal consecutive chunks."""
    parts: list[tuple[Array, Array | None]] = []
    for title in (checked(title, config, "validation") for title in titles):
        chunks = math.ceil(len(title) / config.max_shots)
        parts.extend((chunk, title.title) for chunk in np.array_split(title.fused, chunks))
    generator = torch.Generator().manual_seed(VALIDATION_SEED)
    batches = []
    for start in range(0, len(parts), options.batch_size):
        batch = collate(parts[start : start + options.batch_size], config)
        batches.append((batch, choose_masked(batch.lengths, batch.fused.shape[1], options.mask_ratio, generator)))
    return batches


def checked(title: TitleSequence, config: MediaFMConfig, role: str) -> TitleSequence:
    """``title``, or a ValueError naming it when its shape does not fit ``config`` or it is not finite."""
    fused = title.fused
    if fused.ndim != 2 or fused.shape[1] != config.fused_dim or fused.shape[0] < 1:
        raise ValueError(
            f"{role} title {title.asset!r}: fused must be (shots >= 1, {config.fused_dim}), got {fused.shape}"
        )
    if not np.isfinite(fused).all():
        raise ValueError(f"{role} title {title.asset!r}: fused has non-finite values")
    if title.title is not None and title.title.shape != (config.title_dim,):
        raise ValueError(f"{role} title {title.asset!r}: title must be ({config.title_dim},), got {title.title.shape}")
    return title
