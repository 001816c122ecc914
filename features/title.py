"""The title's metadata as one vector: the [GLOBAL] context of the contextual shot embeddings."""

from __future__ import annotations

import numpy as np

from mediamesh.features.encoders import loaded_device
from mediamesh.features.models import load_text_model, model_fingerprint, resolve_model, text_dimension, text_width
from mediamesh.features.spec import feature
from mediamesh.features.values import TitleEmbedding, TitleMetadata

__all__ = ["title_embedding"]


@feature(version="2", resources="gpu", model=lambda: model_fingerprint("text"))
def title_embedding(title: TitleMetadata) -> TitleEmbedding:
    """The sentence embedding of the title, synopsis and tags; zeros with ``present: False`` when there are none."""
    ref = resolve_model("text")
    text = title.text()
    # Without metadata the zeros need the model's width and device, not the model.
    width = None if text else text_width(ref)
    if width is not None:
        meta = {"role": "text", "model": ref.source, "fingerprint": ref.fingerprint, "device": loaded_device()}
        return TitleEmbedding(np.zeros(width, np.float32), {**meta, "present": False})
    model = load_text_model(ref)
    dim = text_dimension(model)
    meta = {"role": "text", "model": ref.source, "fingerprint": ref.fingerprint, "device": str(model.device)}
    if not text:
        return TitleEmbedding(np.zeros(dim, np.float32), {**meta, "present": False})
    vector = model.encode([text], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)[0]
    return TitleEmbedding(np.ascontiguousarray(vector, dtype=np.float32), {**meta, "present": True, "text": text})
