"""A plugin module named beside ``builtin`` in ``MEDIAMESH_FEATURES``: a feature that reads the built-in ``encode``."""

from __future__ import annotations

from mediamesh.features import EncodedMedia, feature
from tests.orchestrator.resources.counting_features import Number


@feature(version="1")
def encoded_frames(encode: EncodedMedia) -> Number:
    """How many frames the standardized encode has."""
    return Number(encode.frame_count)
