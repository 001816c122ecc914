"""Self-supervised training of MediaFM by masked shot modeling, and the checkpoints it leaves.

One step: draw a batch of titles (a random window of any title longer than ``max_shots``), mask 20% of
each title's shots, reconstruct them, and take one step of every optimizer on the cosine loss. Muon
updates the 2-D weight matrices inside the Transformer blocks; AdamW updates everything else. Both
learning rates warm up linearly and then decay along a cosine; gradients are clipped to norm 1.0; on
CUDA the forward pass runs under bf16 autocast.

Training is deterministic on a CPU given its seed: the model is initialised from ``seed``, each epoch's
title order and each step's crops and masks are drawn from generators seeded by ``(seed, epoch)`` and
``(seed, step)``, and the CPU dropout generator's state is saved in every :class:`Checkpoint`, so a run
resumed from a checkpoint takes exactly the steps the uninterrupted run would have taken. On CUDA the
dropout generator is the GPU's, which is not saved, and kernels are not bitwise reproducible: a resumed
run continues the same schedule, data order and optimizer state, but not bit for bit.
"""

from __future__ import annotations

import hashlib
import io
import math
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, cast, get_args

import numpy as np
import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR

from mediamesh.features.mediafm.masking import choose_masked, masked_cosine_loss
from mediamesh.features.mediafm.model import MediaFM, MediaFMConfig, autocast, eval_mode

__all__ = [
    "Checkpoint",
    "HistoryPoint",
    "OptimizerKind",
    "StepReport",
    "TitleSequence",
    "TrainResult",
    "make_optimizers",
    "split_parameters",
    "train",
]

Array = np.ndarray[Any, Any]
OptimizerKind = Literal["muon", "adamw"]

CHECKPOINT_FORMAT = 1
#: Validation masks are drawn from this seed whatever the training seed, so runs compare on the same task.
VALIDATION_SEED = 0
GRAD_CLIP = 1.0
#: The cosine decays to this fraction of the peak learning rate, not to zero.
FINAL_LR_FRACTION = 0.1


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


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """Everything needed to rebuild a trained model or to resume its training, serialisable to bytes.

    ``sha256`` is the hash of :meth:`to_bytes`; a checkpoint read with :meth:`from_bytes` keeps the bytes
    it was read from, so its hash is that of the stored artefact.
    """

    config: MediaFMConfig
    model_state: dict[str, Tensor]
    optimizer: OptimizerKind
    optimizer_states: list[dict[str, Any]]
    scheduler_states: list[dict[str, Any]]
    step: int
    rng_state: Tensor
    metrics: dict[str, float]
    settings: dict[str, Any]
    _data: bytes | None = field(default=None, repr=False)

    def to_bytes(self) -> bytes:
        if self._data is None:
            buffer = io.BytesIO()
            torch.save(
                {
                    "format": CHECKPOINT_FORMAT,
                    "config": self.config.to_dict(),
                    "model": self.model_state,
                    "optimizer": self.optimizer,
                    "optimizer_states": self.optimizer_states,
                    "scheduler_states": self.scheduler_states,
                    "step": self.step,
                    "rng": {"torch": self.rng_state},
                    "metrics": self.metrics,
                    "settings": self.settings,
                },
                buffer,
            )
            object.__setattr__(self, "_data", buffer.getvalue())
        return cast(bytes, self._data)

    @classmethod
    def from_bytes(cls, data: bytes) -> Checkpoint:
        try:
            payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as error:
            raise ValueError(f"not a MediaFM checkpoint: {type(error).__name__}: {error}") from error
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
            raise ValueError(f"not a MediaFM checkpoint of format {CHECKPOINT_FORMAT} (found {found!r})")
        if payload["optimizer"] not in get_args(OptimizerKind):
            raise ValueError(f"MediaFM checkpoint: unknown optimizer {payload['optimizer']!r}")
        return cls(
            config=MediaFMConfig.from_dict(payload["config"]),
            model_state=payload["model"],
            optimizer=payload["optimizer"],
            optimizer_states=payload["optimizer_states"],
            scheduler_states=payload["scheduler_states"],
            step=int(payload["step"]),
            rng_state=payload["rng"]["torch"],
            metrics=dict(payload["metrics"]),
            settings=dict(payload["settings"]),
            _data=bytes(data),
        )

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.to_bytes()).hexdigest()

    def model(self, device: str | torch.device | None = None) -> MediaFM:
        """A MediaFM with this checkpoint's weights, in eval mode, on ``device`` (default: CPU)."""
        model = MediaFM(self.config)
        model.load_state_dict(self.model_state)
        return model.to(torch.device(device or "cpu")).eval()


def train(
    train_titles: Sequence[TitleSequence],
    val_titles: Sequence[TitleSequence],
    config: MediaFMConfig,
    *,
    steps: int | None = None,
    epochs: int | None = None,
    batch_size: int = 8,
    lr: float = 1e-3,
    muon_lr: float = 0.02,
    weight_decay: float = 0.01,
    warmup: int | None = None,
    mask_ratio: float = 0.2,
    optimizer: OptimizerKind = "muon",
    eval_every: int | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    on_step: Callable[[StepReport], None] | None = None,
    resume: Checkpoint | None = None,
) -> TrainResult:
    """Train MediaFM by masked shot modeling until step ``steps`` (or ``epochs`` passes over the titles).

    ``train_titles`` may be a lazy sequence (one that reads a title from storage in ``__getitem__``): a
    title is read, and checked, only when a batch draws it. The validation titles are read once, up front.

    ``steps`` counts from the start of training, so a run resumed from a checkpoint at step 600 with
    ``steps=1000`` takes 400 more; its model, optimizer and scheduler states (learning rates and weight
    decay included) and dropout generator come from the checkpoint; pass the same ``seed``, ``batch_size``
    and ``steps`` to continue exactly where it stopped. ``warmup`` defaults to
    5% of the steps; validation runs every ``eval_every`` steps (default: a tenth of them) and at the end.
    """
    if not train_titles:
        raise ValueError("train: no training titles")
    if batch_size < 1:
        raise ValueError(f"train: batch_size must be at least 1, got {batch_size}")
    if optimizer not in get_args(OptimizerKind):
        raise ValueError(f"train: optimizer must be 'muon' or 'adamw', got {optimizer!r}")
    steps_per_epoch = math.ceil(len(train_titles) / batch_size)
    total = _total_steps(steps, epochs, steps_per_epoch)
    warm = max(1, round(0.05 * total)) if warmup is None else warmup
    every = max(1, total // 10) if eval_every is None else eval_every
    if warm < 0 or every < 1:
        raise ValueError(f"train: warmup must be >= 0 and eval_every >= 1, got {warm} and {every}")
    if resume is not None:
        _check_resume(resume, config, optimizer, total)
    where = _device(device)
    settings = {
        "batch_size": batch_size,
        "lr": lr,
        "muon_lr": muon_lr,
        "weight_decay": weight_decay,
        "warmup": warm,
        "mask_ratio": mask_ratio,
        "seed": seed,
        "steps": total,
    }
    with _forked_rng(where):
        torch.manual_seed(seed)
        model = MediaFM(config).to(where)
        optimizers = make_optimizers(model, optimizer, lr=lr, muon_lr=muon_lr, weight_decay=weight_decay)
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
        validation = _validation_batches(val_titles, config, batch_size, mask_ratio)
        initial_val = _validate(model, validation, where)
        history = [HistoryPoint(start, None, initial_val)]
        window: list[float] = []
        shots_seen, began = 0, time.perf_counter()
        for step in range(start, total):
            batch, masked = _training_batch(train_titles, config, step, steps_per_epoch, batch_size, mask_ratio, seed)
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
                        _snapshot=partial(_snapshot, model, optimizers, schedulers, optimizer, done, metrics, settings),
                    )
                )
        metrics = _metrics(history, initial_val, total, shots_seen, time.perf_counter() - began)
        checkpoint = _snapshot(model, optimizers, schedulers, optimizer, total, metrics, settings)
    return TrainResult(model=model.eval(), history=history, metrics=metrics, checkpoint=checkpoint)


def split_parameters(model: MediaFM) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """``(muon, adamw)``: the 2-D weight matrices inside the Transformer blocks (attention query, key, value
    and output, feed-forward in and out), and every other trainable parameter, each exactly once."""
    muon = [p for block in model.blocks for p in block.parameters() if p.requires_grad and p.ndim == 2]
    chosen = {id(p) for p in muon}
    adamw = [p for p in model.parameters() if p.requires_grad and id(p) not in chosen]
    return muon, adamw


def make_optimizers(
    model: MediaFM,
    optimizer: OptimizerKind = "muon",
    *,
    lr: float = 1e-3,
    muon_lr: float = 0.02,
    weight_decay: float = 0.01,
) -> list[torch.optim.Optimizer]:
    """Muon (``muon_lr``) for the blocks' weight matrices and AdamW (``lr``) for the rest; with ``"adamw"``,
    AdamW for everything (the ablation). AdamW decays only linear-layer weights: never biases, norms, the
    special tokens or the positional embeddings."""
    muon, adamw = split_parameters(model)
    if optimizer == "adamw":
        muon, adamw = [], muon + adamw
    elif optimizer != "muon":
        raise ValueError(f"make_optimizers: optimizer must be 'muon' or 'adamw', got {optimizer!r}")
    linear_weights = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)}
    decayed = [p for p in adamw if id(p) in linear_weights]
    plain = [p for p in adamw if id(p) not in linear_weights]
    groups = [{"params": decayed, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]
    optimizers: list[torch.optim.Optimizer] = []
    if muon:
        optimizers.append(torch.optim.Muon(muon, lr=muon_lr, weight_decay=weight_decay))
    optimizers.append(torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.98), eps=1e-8))
    return optimizers


@dataclass(frozen=True)
class _Batch:
    """Padded tensors for one forward pass (on CPU until :meth:`to`), and how many real shots they hold."""

    fused: Tensor
    title: Tensor
    title_present: Tensor
    padding: Tensor
    lengths: list[int]

    @property
    def shots(self) -> int:
        return sum(self.lengths)

    def to(self, device: torch.device) -> _Batch:
        return _Batch(
            self.fused.to(device),
            self.title.to(device),
            self.title_present.to(device),
            self.padding.to(device),
            self.lengths,
        )


def _collate(parts: Sequence[tuple[Array, Array | None]], config: MediaFMConfig) -> _Batch:
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
    return _Batch(
        torch.from_numpy(fused),
        torch.from_numpy(title),
        torch.from_numpy(present),
        torch.from_numpy(padding),
        lengths,
    )


def _training_batch(
    titles: Sequence[TitleSequence],
    config: MediaFMConfig,
    step: int,
    steps_per_epoch: int,
    batch_size: int,
    mask_ratio: float,
    seed: int,
) -> tuple[_Batch, Tensor]:
    """Step ``step``'s batch and mask, a function of ``(seed, step)`` alone."""
    epoch, index = divmod(step, steps_per_epoch)
    order = np.random.default_rng([seed, 0, epoch]).permutation(len(titles))
    chosen = order[index * batch_size : (index + 1) * batch_size]
    rng = np.random.default_rng([seed, 1, step])
    parts: list[tuple[Array, Array | None]] = []
    for i in chosen:
        title = _checked(titles[int(i)], config, "train")
        start = int(rng.integers(0, len(title) - config.max_shots + 1)) if len(title) > config.max_shots else 0
        parts.append((title.fused[start : start + config.max_shots], title.title))
    batch = _collate(parts, config)
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    return batch, choose_masked(batch.lengths, batch.fused.shape[1], mask_ratio, generator)


def _validation_batches(
    titles: Sequence[TitleSequence], config: MediaFMConfig, batch_size: int, mask_ratio: float
) -> list[tuple[_Batch, Tensor]]:
    """Fixed batches and masks: a title longer than ``max_shots`` is split into near-equal consecutive chunks."""
    parts: list[tuple[Array, Array | None]] = []
    for title in (_checked(title, config, "validation") for title in titles):
        chunks = math.ceil(len(title) / config.max_shots)
        parts.extend((chunk, title.title) for chunk in np.array_split(title.fused, chunks))
    generator = torch.Generator().manual_seed(VALIDATION_SEED)
    batches = []
    for start in range(0, len(parts), batch_size):
        batch = _collate(parts[start : start + batch_size], config)
        batches.append((batch, choose_masked(batch.lengths, batch.fused.shape[1], mask_ratio, generator)))
    return batches


def _step(
    model: MediaFM,
    optimizers: list[torch.optim.Optimizer],
    schedulers: list[LambdaLR],
    batch: _Batch,
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


def _validate(model: MediaFM, batches: list[tuple[_Batch, Tensor]], device: torch.device) -> float | None:
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


def _snapshot(
    model: MediaFM,
    optimizers: list[torch.optim.Optimizer],
    schedulers: list[LambdaLR],
    optimizer: OptimizerKind,
    step: int,
    metrics: dict[str, float],
    settings: dict[str, Any],
) -> Checkpoint:
    """The training state now, copied to the CPU (the dropout generator is the CPU one: see the module doc)."""
    return Checkpoint(
        config=model.config,
        model_state={name: value.detach().cpu().clone() for name, value in model.state_dict().items()},
        optimizer=optimizer,
        optimizer_states=[_to_cpu(opt.state_dict()) for opt in optimizers],
        scheduler_states=[_to_cpu(scheduler.state_dict()) for scheduler in schedulers],
        step=step,
        rng_state=torch.get_rng_state(),
        metrics=metrics,
        settings=settings,
    )


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


def _total_steps(steps: int | None, epochs: int | None, steps_per_epoch: int) -> int:
    if (steps is None) == (epochs is None):
        raise ValueError("train: give exactly one of steps and epochs")
    total = steps if steps is not None else cast(int, epochs) * steps_per_epoch
    if total < 1:
        raise ValueError(f"train: steps and epochs must be at least 1, got steps={steps}, epochs={epochs}")
    return total


def _checked(title: TitleSequence, config: MediaFMConfig, role: str) -> TitleSequence:
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


def _to_cpu(value: Any) -> Any:
    """``value`` with every tensor in it copied to the CPU (optimizer and scheduler states)."""
    if isinstance(value, Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {key: _to_cpu(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_cpu(item) for item in value)
    return value
