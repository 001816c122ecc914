"""How wide a model's rows are, read from its directory's configuration without loading it.

An encoder with nothing to encode (a title without text or audio) still returns a row of zeros per shot, as
wide as the model's rows: these give that width without loading the model. Each answers None for a layout it
does not know for certain, and the encoder then loads the model and asks it, as it does for real input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mediamesh.features.models.resolution import ModelRef

__all__ = ["audio_width", "text_width"]

# sentence-transformers' pooling modes as the boolean keys of older configs, each one concatenated row.
_LEGACY_POOLING_KEYS = (
    "pooling_mode_cls_token",
    "pooling_mode_max_tokens",
    "pooling_mode_mean_tokens",
    "pooling_mode_mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens",
    "pooling_mode_lasttoken",
)
# Modules after the pooling that keep the width (they have no width of their own to report).
_WIDTH_KEEPING = ("Normalize", "Dropout")


def audio_width(ref: ModelRef) -> int | None:
    """The hidden size of the wav2vec2-style model ``ref`` names, from its ``config.json``."""
    config = _json(ref.path / "config.json") if ref.available and ref.path is not None else None
    return _width(config.get("hidden_size")) if isinstance(config, dict) else None


def text_width(ref: ModelRef) -> int | None:
    """The width of what the sentence-transformers model ``ref`` names encodes to, from its module list:
    the last module that sets a width (a pooling or a dense layer), as sentence-transformers finds it."""
    if not ref.available or ref.path is None:
        return None
    modules = _json(ref.path / "modules.json")
    settings = _json(ref.path / "config_sentence_transformers.json")
    truncated = isinstance(settings, dict) and settings.get("truncate_dim") is not None
    if not isinstance(modules, list) or truncated:
        return None
    for module in reversed(modules):
        if not isinstance(module, dict):
            return None
        kind = str(module.get("type", "")).rpartition(".")[2]
        if kind in _WIDTH_KEEPING:
            continue
        config = _json(ref.path / str(module.get("path", "")) / "config.json")
        if not isinstance(config, dict):
            return None
        if kind == "Pooling":
            return _pooled_width(config)
        if kind == "Dense":
            return _width(config.get("out_features"))
        return None
    return None


def _pooled_width(config: dict[str, Any]) -> int | None:
    """A pooling layer's width: the token width once per pooling mode, their rows concatenated."""
    width = _width(config.get("embedding_dimension", config.get("word_embedding_dimension")))
    if width is None:
        return None
    mode = config.get("pooling_mode")
    if mode is None:
        modes = sum(1 for key in _LEGACY_POOLING_KEYS if config.get(key) is True)
    elif isinstance(mode, str):
        modes = 1
    elif isinstance(mode, list) and mode and all(isinstance(m, str) for m in mode):
        modes = len(mode)
    else:
        return None
    return width * modes if modes else None


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _width(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
