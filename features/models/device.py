"""Where the encoders run, and the autocast that goes with it."""

from __future__ import annotations

import contextlib
from typing import Any

from mediamesh.features.errors import ExecutionError
from mediamesh.features.models.settings import encoder_settings

__all__ = ["autocast", "device"]


def device() -> str:
    """Where the encoders run: ``"cuda"`` when CUDA is available and allowed, else ``"cpu"``."""
    wanted = encoder_settings().device
    if wanted == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if wanted == "cuda":
        raise ExecutionError("MEDIAMESH_DEVICE is 'cuda' but CUDA is not available on this machine")
    return "cpu"


def autocast(where: str) -> Any:
    """bf16 autocast on CUDA; nothing elsewhere."""
    import torch

    if where == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
