"""Contextual shot embeddings of a whole title: every shot sees the rest of the title, or as much of it as
one window holds.

A title longer than the window is covered by windows that overlap by half (stride ``window // 2``, the
last one flush with the title's end), and each shot takes its vector from the window in which it sits
most centrally, where it has the most context on its nearer side.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mediamesh.features.mediafm.model import MediaFM, autocast, eval_mode

__all__ = ["embed_title", "plan_windows"]

Array = np.ndarray[Any, Any]


def embed_title(
    model: MediaFM,
    fused: Array,
    title: Array | None,
    *,
    window: int | None = None,
    batch_size: int = 8,
    device: str | torch.device | None = None,
) -> Array:
    """The contextual embedding of every shot of a title, (N, hidden) float32, from its fused vectors
    ``fused`` (N, F) and metadata embedding ``title`` (T,) or None, in windows of ``window`` shots (default:
    the model's ``max_shots``, 512 for the presets). Nothing is masked; the model runs in
    eval mode (its mode is restored afterwards) on ``device``, to which it is moved when given (default:
    where its parameters are)."""
    config = model.config
    fused = np.asarray(fused, np.float32)
    if fused.ndim != 2 or fused.shape[1] != config.fused_dim or fused.shape[0] < 1:
        raise ValueError(f"embed_title: fused must be (shots >= 1, {config.fused_dim}), got {fused.shape}")
    if title is not None and np.shape(title) != (config.title_dim,):
        raise ValueError(f"embed_title: title must be ({config.title_dim},), got {np.shape(title)}")
    window = config.max_shots if window is None else window
    if not 1 <= window <= config.max_shots:
        raise ValueError(f"embed_title: window must be 1 to the model's max_shots ({config.max_shots}), got {window}")
    if batch_size < 1:
        raise ValueError(f"embed_title: batch_size must be at least 1, got {batch_size}")
    if device is not None:
        model.to(device)
    where = next(model.parameters()).device
    shots = fused.shape[0]
    starts, owner = plan_windows(shots, window)
    length = min(window, shots)
    # Each window owns one run of consecutive shots (owner never decreases); windows owning none are skipped.
    first_owned = np.searchsorted(owner, np.arange(len(starts)), side="left")
    last_owned = np.searchsorted(owner, np.arange(len(starts)), side="right")
    needed = [i for i in range(len(starts)) if last_owned[i] > first_owned[i]]
    source = torch.from_numpy(fused).to(where)
    title_row = None if title is None else torch.as_tensor(np.asarray(title, np.float32), device=where)
    out = np.empty((shots, config.hidden), np.float32)
    with (
        eval_mode(model),
        torch.inference_mode(),
        autocast(where),
    ):
        for begin in range(0, len(needed), batch_size):
            chosen = needed[begin : begin + batch_size]
            # One window is a view of the title; several are stacked into one batch.
            windows = [source[starts[i] : starts[i] + length] for i in chosen]
            batch = windows[0].unsqueeze(0) if len(windows) == 1 else torch.stack(windows)
            titles = None if title_row is None else title_row.expand(len(chosen), -1)
            hidden = model(batch, titles).hidden.float().cpu().numpy()
            for row, i in enumerate(chosen):
                a, b = first_owned[i], last_owned[i]
                out[a:b] = hidden[row, a - starts[i] : b - starts[i]]
    return out


def plan_windows(shots: int, window: int) -> tuple[list[int], Array]:
    """``(starts, owner)``: the first shot of each window of ``min(window, shots)`` shots covering a title of
    ``shots`` shots, and for each shot the index of the window where it is most central (the largest
    distance to that window's nearer edge; the earlier window on a tie). ``owner`` never decreases."""
    if shots < 1 or window < 1:
        raise ValueError(f"plan_windows: shots and window must be at least 1, got {shots} and {window}")
    if shots <= window:
        return [0], np.zeros(shots, np.int64)
    stride = max(1, window // 2)
    starts = list(range(0, shots - window + 1, stride))
    if starts[-1] != shots - window:
        starts.append(shots - window)
    index = np.arange(shots)
    begin = np.asarray(starts)[:, None]
    distance = np.minimum(index - begin, begin + window - 1 - index)
    # Shots outside a window get -1, below any inside one (whose distance is at least 0).
    distance = np.where(distance >= 0, distance, -1)
    return starts, distance.argmax(axis=0).astype(np.int64)
