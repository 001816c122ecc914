"""MediaFM's contextual shot embeddings: every shot of a title seen in the context of the whole title."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from mediamesh.features.errors import ExecutionError
from mediamesh.features.models import device
from mediamesh.features.spec import feature
from mediamesh.features.values import MediaFMCheckpoint, ShotEmbeddings, TitleEmbedding

if TYPE_CHECKING:
    from mediamesh.features.mediafm import MediaFM

__all__ = ["NoCheckpointError", "contextual"]


class NoCheckpointError(ExecutionError):
    """No MediaFM checkpoint is promoted: train and promote one (random weights are never used)."""


# Version 2: the same computation; its code now imports through the mediamesh.* root (issue 10).
@feature(version="2", resources="gpu")
def contextual(fused: ShotEmbeddings, title_embedding: TitleEmbedding, mediafm: MediaFMCheckpoint) -> ShotEmbeddings:
    """Per shot, MediaFM's hidden state with the whole title (and its metadata as [GLOBAL]) in context."""
    if mediafm.path is None or mediafm.sha256 is None:
        raise NoCheckpointError(
            "no MediaFM checkpoint is promoted: run `mediamesh train mediafm`, then `mediamesh promote mediafm ID`"
        )
    from mediamesh.features.mediafm import embed_title

    where = device()
    model = _model(mediafm.path, mediafm.sha256, where)
    config = model.config
    if fused.data.shape[1] != config.fused_dim:
        raise ExecutionError(
            f"checkpoint {mediafm.sha256[:12]} was trained on {config.fused_dim}-dimensional fused vectors, "
            f"but these are {fused.data.shape[1]}-dimensional (other encoders?): train a checkpoint for them"
        )
    present = bool(title_embedding.meta.get("present", True))
    title = title_embedding.data if present and title_embedding.data.shape[0] == config.title_dim else None
    data = embed_title(model, fused.data, title, device=where)
    return ShotEmbeddings(
        data,
        {
            "checkpoint": mediafm.sha256,
            "hidden": config.hidden,
            "layers": config.layers,
            "window": config.max_shots,
            "title_context": title is not None,
            "device": where,
        },
    )


_lock = threading.Lock()
_models: dict[tuple[str, str], MediaFM] = {}


def _model(path: Path, sha256: str, where: str) -> MediaFM:
    """The checkpoint's model in eval mode, loaded once per (checkpoint, device)."""
    from mediamesh.features.mediafm import Checkpoint

    with _lock:
        if (sha256, where) not in _models:
            _models[(sha256, where)] = Checkpoint.from_bytes(path.read_bytes()).model(where)
        return _models[(sha256, where)]
