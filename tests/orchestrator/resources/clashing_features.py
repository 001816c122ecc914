"""A plugin module that defines a ``shots`` of its own without saying it replaces the built-in one."""

from __future__ import annotations

from mediamesh.features import EncodedMedia, ShotTable, feature


@feature(version="2")
def shots(encode: EncodedMedia) -> ShotTable:
    """The whole encode as one shot."""
    return ShotTable.from_frames(encode.fps, [(0, encode.frame_count)])
