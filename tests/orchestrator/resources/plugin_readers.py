"""A second plugin module: a feature that reads another plugin's feature (``plugin_features.encoded_frames``)."""

from __future__ import annotations

from mediamesh.features import feature
from tests.orchestrator.resources.counting_features import Number


@feature(version="1")
def frames_doubled(encoded_frames: Number) -> Number:
    """Twice the encode's frame count."""
    return Number(encoded_frames.value * 2)
