"""MediaFM checkpoints: everything needed to rebuild a trained model or to resume its training, as bytes."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import Tensor
from torch.optim.lr_scheduler import LambdaLR

from mediamesh.features.errors import DefinitionError
from mediamesh.features.mediafm.model import MediaFM, MediaFMConfig
from mediamesh.features.mediafm.options import OptimizerKind, optimizer_kind

__all__ = ["CHECKPOINT_FORMAT", "Checkpoint", "snapshot"]

CHECKPOINT_FORMAT = 1


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
        try:
            optimizer = optimizer_kind(payload["optimizer"])
        except DefinitionError as error:
            raise ValueError(f"MediaFM checkpoint: {error}") from error
        return cls(
            config=MediaFMConfig.from_dict(payload["config"]),
            model_state=payload["model"],
            optimizer=optimizer,
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


def snapshot(
    model: MediaFM,
    optimizers: list[torch.optim.Optimizer],
    schedulers: list[LambdaLR],
    optimizer: OptimizerKind,
    step: int,
    metrics: dict[str, float],
    settings: dict[str, Any],
) -> Checkpoint:
    """The training state now, copied to the CPU (the dropout generator is the CPU one: see :mod:`.training`)."""
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


def _to_cpu(value: Any) -> Any:
    """``value`` with every tensor in it copied to the CPU (optimizer and scheduler states)."""
    if isinstance(value, Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {key: _to_cpu(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_cpu(item) for item in value)
    return value
