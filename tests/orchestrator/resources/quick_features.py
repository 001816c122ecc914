"""Features for the command line's catalogue read (``test_quick_cli.py``): a shot table, something read from
it, one that always fails, and one that waits for a MediaFM checkpoint. The test copies this file into a
folder of its own, so that it can change a feature's version there."""

from __future__ import annotations

from mediamesh.features import MediaFMCheckpoint, ShotTable, SourceMedia, feature


@feature(version="1")
def cuts(source: SourceMedia) -> ShotTable:
    """Two shots over the asset's bytes, as if one per half at 25 fps."""
    frames = max(2, source.path.stat().st_size)
    return ShotTable.from_frames(25.0, [(0, frames // 2), (frames // 2, frames)])


@feature(version="1")
def cut_count(cuts: ShotTable) -> ShotTable:
    """The same table: a second shot table, read through its lineage."""
    return cuts


@feature(version="1")
def broken(source: SourceMedia) -> ShotTable:
    """Always fails, so the asset has a failed attempt."""
    raise ValueError(f"{source.name} cannot be cut")


@feature(version="1")
def contextual_cuts(cuts: ShotTable, mediafm: MediaFMCheckpoint) -> ShotTable:
    """Waits for a promoted checkpoint."""
    return cuts
