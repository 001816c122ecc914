"""Self-supervised training of MediaFM by masked shot modeling: the loop, the optimizers and the schedule.

Its options are a :class:`.TrainOptions` (:mod:`.options`); batches come from :mod:`.data`, and the
checkpoints it leaves are :mod:`.checkpoint`'s. One step: draw a batch of titles (a random window of any
title longer than ``max_shots``), mask ``mask_ratio`` (20%) of each title's shots, reconstruct them, and
take one step of every optimizer on the cosine loss. Muon updates the 2-D weight matrices inside the
Transformer blocks; AdamW updates everything else. Both learning rates warm up linearly and then decay
along a cosine; gradients are clipped to norm 1.0; on CUDA the forward pass runs under bf16 autocast.

Training is deterministic on a CPU given its seed: the model is initialised from ``seed``, each epoch's
title order and each step's crops and masks are drawn from generators seeded by ``(seed, epoch)`` and
``(seed, step)``, and the CPU dropout generator's state is saved in every :class:`.Checkpoint`, so a run
resumed from a checkpoint takes exactly the steps the uninterrupted run would have taken. On CUDA the
dropout generator is the GPU's, which is not saved, and kernels are not bitwise reproducible: a resumed
run continues the same schedule, data order and optimizer state, but not bit for bit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import partial
from typing import cast

import numpy as np
import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR

from mediamesh.features.mediafm.checkpoint import Checkpoint, snapshot
from mediamesh.features.mediafm.data import Batch, TitleSequence, training_batch, validation_batches
from mediamesh.features.mediafm.masking import masked_cosine_loss
from mediamesh.features.mediafm.model import MediaFM, MediaFMConfig, autocast, eval_mode
from mediamesh.features.mediafm.options import OptimizerKind, TrainOptions

__all__ = [
    "HistoryPoint",
    "StepReport",
    "TrainResult",
    "make_optimizers",
    "split_parameters",
    "train",
]

GRAD_CLIP = 1.0
#: The cosine decays to this fraction of the peak learning rate, not to zero.
FINAL_LR_FRACTION = 0.1
#: The options a checkpoint records in its settings, beside the resolved ``warmup`` and ``steps``.
_RECORDED = ("batch_size", "lr", "muon_lr", "weight_decay", "mask_ratio", "seed")


@dataclass(frozen=True)
class StepReport:
    """What ``on_step`` is told after each optimizer step: ``lr`` is AdamW's (Muon's follows the same schedule);
    ``val_loss`` is given only on steps that evaluate.

    :meth:`checkpoint` snapshots the training state after this step (to save one every so often); call
    it inside ``on_step``, before training moves on.
    """

    step: int
    steps: int
    epoch: float
    train_loss: float
    val_loss: float | None
    lr: float
    grad_norm: float
    shots: int
    elapsed_s: float
    _snapshot: Callable[[], Checkpoint] = field(repr=False, compare=False)

    def checkpoint(self) -> Checkpoint:
        return self._snapshot()


@dataclass(frozen=True)
class HistoryPoint:
    """At ``step``: the mean training loss since the previous point (None at the start) and the validation
    loss (None without validation titles)."""

    step: int
    train_loss: float | None
    val_loss: float | None


@dataclass(frozen=True)
class TrainResult:
    """The trained ``model`` (eval mode), its loss ``history``, final ``metrics`` and the final checkpoint."""

    model: MediaFM
    history: list[HistoryPoint]
    metrics: dict[str, float]
    checkpoint: Checkpoint


def train(
    train_titles: Sequence[TitleSequence],
    val_titles: Sequence[TitleSequence],
    config: MediaFMConfig,
    options: TrainOptions | None = None,
    *,
    device: str | torch.device | None = None,
    on_step: Callable[[StepReport], None] | None = None,
    resume: Checkpoint | None = None,
) -> TrainResult:
    """Train MediaFM by masked shot modeling as ``options`` say (default :class:`TrainOptions`).

    ``train_titles`` may be a lazy sequence (one that reads a title from storage in ``__getitem__``): a
    title is read, and checked, only when a batch draws it. The validation titles are read once, up front.

    A run resumed from a checkpoint takes its model, optimizer and scheduler states (learning rates and
    weight decay included) and dropout generator from the checkpoint; pass the same options to continue
    exactly where it stopped. Validation runs every ``options.eval_interval`` steps and at the end.
    """
    options = options or TrainOptions()
    if not train_titles:
        raise ValueError("train: no training titles")
    steps_per_epoch = math.ceil(len(train_titles) / options.batch_size)
    total = options.total_steps(steps_per_epoch)
    warm, every = options.warmup_steps(total), options.eval_interval(total)
    if resume is not None:
        _check_resume(resume, config, options.optimizer, total)
    where = _device(device)
    settings = {name: getattr(options, name) for name in _RECORDED} | {"warmup": warm, "steps": total}
    with _forked_rng(where):
        torch.manual_seed(options.seed)
        model = MediaFM(config).to(where)
        optimizers = make_optimizers(model, options)
        schedulers = [LambdaLR(opt, _warmup_cosine(warm, total)) for opt in optimizers]
        start = 0
        if resume is not None:
            model.load_state_dict(resume.model_state)
            for opt, state in zip(optimizers, resume.optimizer_states, strict=True):
                opt.load_state_dict(state)
            for scheduler, state in zip(schedulers, resume.scheduler_states, strict=True):
                scheduler.load_state_dict(state)
            torch.set_rng_state(resume.rng_state)
            start = resume.step
        validation = validation_batches(val_titles, config, options)
        initial_val = _validate(model, validation, where)
        history = [HistoryPoint(start, None, initial_val)]
        window: list[float] = []
        shots_seen, began = 0, time.perf_counter()
        for step in range(start, total):
            batch, masked = training_batch(train_titles, config, options, step, steps_per_epoch)
            loss, grad_norm = _step(model, optimizers, schedulers, batch, masked, where)
            window.append(loss)
            shots_seen += batch.shots
            done = step + 1
            val_loss = _validate(model, validation, where) if done % every == 0 or done == total else None
            if val_loss is not None or done == total:
                history.append(HistoryPoint(done, float(np.mean(window)), val_loss))
                window = []
            if on_step is not None:
                elapsed = time.perf_counter() - began
                metrics = _metrics(history, initial_val, done, shots_seen, elapsed)
                on_step(
                    StepReport(
                        step=done,
                        steps=total,
                        epoch=done / steps_per_epoch,
                        train_loss=loss,
                        val_loss=val_loss,
                        lr=float(schedulers[-1].get_last_lr()[0]),
                        grad_norm=grad_norm,
                        shots=batch.shots,
                        elapsed_s=elapsed,
                        _snapshot=partial(
                            snapshot, model, optimizers, schedulers, options.optimizer, done, metrics, settings
                        ),
                    )
                )
        metrics = _metrics(history, initial_val, total, shots_seen, time.perf_counter() - began)
        checkpoint = snapshot(model, optimizers, schedulers, options.optimizer, total, metrics, settings)
    return TrainResult(model=model.eval(), history=history, metrics=metrics, checkpoint=checkpoint)


def split_parameters(model: MediaFM) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """``(muon, adamw)``: the 2-D weight matrices inside the Transformer blocks (attention query, key, value
    and output, feed-forward in and out), and every other trainable parameter, each exactly once."""
    muon = [p for block in model.blocks for p in block.parameters() if p.requires_grad and p.ndim == 2]
    chosen = {id(p) for p in muon}
    adamw = [p for p in model.parameters() if p.requires_grad and id(p) not in chosen]
    return muon, adamw


def make_optimizers(model: MediaFM, options: TrainOptions | None = None) -> list[torch.optim.Optimizer]:
    """Muon (``muon_lr``) for the blocks' weight matrices and AdamW (``lr``) for the rest; with ``"adamw"``,
    AdamW for everything (the ablation). AdamW decays only linear-layer weights: never biases, norms, the
    special tokens or the positional embeddings."""
    options = options or TrainOptions()
    lr, muon_lr, weight_decay = options.lr, options.muon_lr, options.weight_decay
    muon, adamw = split_parameters(model)
    if options.optimizer == "adamw":
        muon, adamw = [], muon + adamw
    linear_weights = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)}
    decayed = [p for p in adamw if id(p) in linear_weights]
    plain = [p for p in adamw if id(p) not in linear_weights]
    groups = [{"params": decayed, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]
    optimizers: list[torch.optim.Optimizer] = []
    if muon:
        optimizers.append(torch.optim.Muon(muon, lr=muon_lr, weight_decay=weight_decay))
    optimizers.append(torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.98), eps=1e-8))
    return optimizers


def _step(
    model: MediaFM,
    optimizers: list[torch.optim.Optimizer],
    schedulers: list[LambdaLR],
    batch: Batch,
    masked: Tensor,
    device: torch.device,
) -> tuple[float, float]:
    model.train()
    batch, masked = batch.to(device), masked.to(device)
    with autocast(device):
        out = model(batch.fused, batch.title, batch.title_present, batch.padding, masked)
    loss = masked_cosine_loss(out.reconstruction, batch.fused, masked)
    for opt in optimizers:
        opt.zero_grad(set_to_none=True)
    torch.autograd.backward(loss)
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
    for opt in optimizers:
        opt.step()
    for scheduler in schedulers:
        scheduler.step()
    return float(loss.item()), float(grad_norm.item())


def _validate(model: MediaFM, batches: list[tuple[Batch, Tensor]], device: torch.device) -> float | None:
    """The mean masked cosine loss over every masked validation shot (each shot weighs the same)."""
    if not batches:
        return None
    total, count = 0.0, 0
    with eval_mode(model), torch.inference_mode(), autocast(device):
        for batch, masked in batches:
            batch, masked = batch.to(device), masked.to(device)
            out = model(batch.fused, batch.title, batch.title_present, batch.padding, masked)
            n = int(masked.sum().item())
            total += float(masked_cosine_loss(out.reconstruction, batch.fused, masked).item()) * n
            count += n
    return total / count


def _metrics(
    history: list[HistoryPoint], initial_val: float | None, steps: int, shots: int, seconds: float
) -> dict[str, float]:
    metrics: dict[str, float] = {"steps": float(steps), "seconds": seconds, "shots_per_s": shots / max(seconds, 1e-9)}
    last = history[-1]
    if last.train_loss is not None:
        metrics["train_loss"] = last.train_loss
    if last.val_loss is not None:
        metrics["val_loss"] = last.val_loss
    if initial_val is not None:
        metrics["initial_val_loss"] = initial_val
    return metrics


def _warmup_cosine(warmup: int, total: int) -> Callable[[int], float]:
    """The learning-rate multiplier after ``step`` scheduler steps: linear warm-up, then cosine decay."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def _check_resume(resume: Checkpoint, config: MediaFMConfig, optimizer: OptimizerKind, total: int) -> None:
    if resume.config != config:
        raise ValueError(f"train: the checkpoint's config {resume.config} differs from {config}")
    if resume.optimizer != optimizer:
        raise ValueError(f"train: the checkpoint was trained with {resume.optimizer!r}, not {optimizer!r}")
    if resume.step > total:
        raise ValueError(f"train: the checkpoint is at step {resume.step}, past the requested {total} steps")


def _device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _forked_rng(device: torch.device) -> AbstractContextManager[None]:
    """Seed and use the global generators inside, restoring the caller's state afterwards."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return cast(AbstractContextManager[None], torch.random.fork_rng(devices=[index], device_type="cuda"))
    return cast(AbstractContextManager[None], torch.random.fork_rng(devices=[]))
