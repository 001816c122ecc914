"""Encoding a search query the way the indexed values were encoded: same model, same fingerprint, same
pre-processing. Each function returns the unit query vector and the model fingerprint it came from, which
the searcher matches against the fingerprint recorded with each indexed vector.

- dialogue text: the sentence encoder of ``text_embedding``;
- visual text: the text tower of the CLIP model of ``video_embedding`` (the ``lite`` set has none);
- an image: the image path of ``video_embedding`` (the CLIP image tower, or the lite descriptors).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np

from mediamesh.features.encoders import frame_embedder
from mediamesh.features.errors import DefinitionError
from mediamesh.features.models import load_text_model, resolve_model
from mediamesh.features.models.device import autocast
from mediamesh.features.models.loaders import load_image_model

__all__ = ["BadQueryError", "QueryNotSupportedError", "decode_image", "image_query", "text_query", "visual_text_query"]

Array = np.ndarray[Any, Any]


class BadQueryError(DefinitionError):
    """A query that cannot be asked: empty text, an unreadable image, a time range that ends before it starts."""


class QueryNotSupportedError(BadQueryError):
    """A data source cannot encode this kind of query (the lite video set has no text tower, say)."""


def text_query(text: str) -> tuple[Array, str]:
    """``text`` as ``text_embedding`` encodes a shot's dialogue."""
    ref = resolve_model("text")
    model = load_text_model(ref)
    encoded = model.encode(
        [" ".join(text.split())], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return np.asarray(encoded, np.float32)[0], ref.fingerprint


def visual_text_query(text: str) -> tuple[Array, str]:
    """``text`` through the text tower of the CLIP model whose image tower made the video embeddings."""
    ref = resolve_model("video")
    if ref.kind == "lite":
        raise QueryNotSupportedError(
            "visual search by text needs a CLIP video model with a text tower; the lite video encoders have none "
            "(set MEDIAMESH_VIDEO_MODEL to a CLIP model, then backfill video_embedding)"
        )
    import torch
    from transformers import AutoTokenizer

    image_model = load_image_model(ref)
    model = image_model.model
    if not hasattr(model, "get_text_features") or ref.path is None:
        raise QueryNotSupportedError(f"the video model {ref.source!r} has no text tower to encode a text query")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(ref.path), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise QueryNotSupportedError(
            f"the video model {ref.source!r} has no tokenizer for text queries: {exc}"
        ) from exc
    tokens = tokenizer([text], padding=True, truncation=True, return_tensors="pt").to(image_model.device)
    with torch.inference_mode(), autocast(image_model.device):
        features = model.get_text_features(**tokens)
        if not isinstance(features, torch.Tensor):  # transformers 5 returns the text output, projected
            features = features.pooler_output
        features = features.float()
        features = features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return cast(Array, features.cpu().numpy()[0].astype(np.float32)), ref.fingerprint


def image_query(rgb: Array) -> tuple[Array, str]:
    """One RGB frame (H, W, 3, uint8) as ``video_embedding`` embeds each sampled frame."""
    ref = resolve_model("video")
    embed, _ = frame_embedder(ref)
    row = np.asarray(embed(np.ascontiguousarray(rgb[None, ...])), np.float32)[0]
    return row / max(float(np.linalg.norm(row)), 1e-12), ref.fingerprint


def decode_image(data: bytes | Path, *, name: str) -> Array:
    """An image file's pixels as RGB uint8 (Pillow reads JPEG, PNG, WebP, ...); ``name`` is for the error."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(data if isinstance(data, Path) else _bytes_io(data)) as image:
            return np.asarray(image.convert("RGB"), np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise BadQueryError(f"{name}: not a readable image ({exc})") from exc


def _bytes_io(data: bytes) -> Any:
    import io

    return io.BytesIO(data)
