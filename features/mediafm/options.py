"""The options of a MediaFM training run, defined once: the trainer, the Python API and the CLI all read them here.

Each field's ``metadata["help"]`` is the help text the CLI shows for its option; variants are made with
:func:`dataclasses.replace`, which validates them again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from mediamesh.features.errors import DefinitionError

__all__ = ["DEFAULT_STEPS", "OPTIMIZERS", "OptimizerKind", "TrainOptions", "optimizer_kind"]

OptimizerKind = Literal["muon", "adamw"]
OPTIMIZERS: tuple[OptimizerKind, ...] = get_args(OptimizerKind)
#: How long a run is when neither ``steps`` nor ``epochs`` is given.
DEFAULT_STEPS = 300


def _help(text: str) -> dict[str, Any]:
    return {"help": text}


@dataclass(frozen=True)
class TrainOptions:
    """How MediaFM is trained: length, batch, optimizers and their schedule, masking, validation and seed.

    ``steps`` counts from the start of training, so a run resumed from a checkpoint at step 600 with
    ``steps=1000`` takes 400 more; give at most one of ``steps`` and ``epochs``.
    """

    steps: int | None = field(
        default=None,
        metadata=_help(f"Optimizer steps (default {DEFAULT_STEPS} when --epochs is not given)."),
    )
    epochs: int | None = field(default=None, metadata=_help("Passes over the training titles."))
    batch_size: int = field(default=8, metadata=_help("Titles per step."))
    lr: float = field(default=1e-3, metadata=_help("Peak learning rate of AdamW."))
    muon_lr: float = field(default=0.02, metadata=_help("Peak learning rate of Muon."))
    weight_decay: float = field(default=0.01, metadata=_help("Weight decay of both optimizers."))
    warmup: int | None = field(default=None, metadata=_help("Warm-up steps (default: 5% of the steps)."))
    mask_ratio: float = field(default=0.2, metadata=_help("Fraction of each title's shots masked and reconstructed."))
    optimizer: OptimizerKind = field(
        default="muon", metadata=_help("muon (Muon for hidden matrices + AdamW) or adamw.")
    )
    eval_every: int | None = field(
        default=None, metadata=_help("Validate every N steps (default: a tenth of the steps).")
    )
    seed: int = field(default=0, metadata=_help("Random seed."))

    def __post_init__(self) -> None:
        optimizer_kind(self.optimizer)
        if self.steps is not None and self.epochs is not None:
            raise DefinitionError(f"give at most one of steps and epochs, got steps={self.steps}, epochs={self.epochs}")
        _at_least(1, steps=self.steps, epochs=self.epochs, batch_size=self.batch_size, eval_every=self.eval_every)
        _at_least(0, warmup=self.warmup)
        if not (self.lr > 0 and self.muon_lr > 0 and math.isfinite(self.lr) and math.isfinite(self.muon_lr)):
            raise DefinitionError(f"lr and muon_lr must be positive, got lr={self.lr}, muon_lr={self.muon_lr}")
        if not self.weight_decay >= 0:
            raise DefinitionError(f"weight_decay must be at least 0, got {self.weight_decay}")
        if not 0.0 < self.mask_ratio <= 1.0:
            raise DefinitionError(f"mask_ratio must be in (0, 1], got {self.mask_ratio}")

    def total_steps(self, steps_per_epoch: int) -> int:
        """Where training stops, counted from its start."""
        if self.steps is not None:
            return self.steps
        if self.epochs is not None:
            return self.epochs * steps_per_epoch
        return DEFAULT_STEPS

    def warmup_steps(self, total: int) -> int:
        return max(1, round(0.05 * total)) if self.warmup is None else self.warmup

    def eval_interval(self, total: int) -> int:
        return max(1, total // 10) if self.eval_every is None else self.eval_every


def optimizer_kind(name: object) -> OptimizerKind:
    """``name`` as an optimizer kind, or a DefinitionError naming the choices."""
    if name not in OPTIMIZERS:
        raise DefinitionError(f"optimizer must be {' or '.join(map(repr, OPTIMIZERS))}, got {name!r}")
    return name


def _at_least(least: int, **values: int | None) -> None:
    for name, value in values.items():
        if value is not None and value < least:
            raise DefinitionError(f"{name} must be at least {least}, got {value}")
