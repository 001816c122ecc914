"""Shot thumbnails: a small picture of each unique shot, all in one sprite sheet, so that a page of a
2,000-shot title is one blob and one request."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mediamesh.features import frames as shared
from mediamesh.features.encoders import decode_frames, sample_frames
from mediamesh.features.spec import feature
from mediamesh.features.values import DedupMap, EncodedMedia, ShotTable, ShotThumbnails

if TYPE_CHECKING:
    from PIL import Image
else:

    class _Image:
        """``PIL.Image``, imported on first use: the registry is built without Pillow, and the body of
        :func:`thumbnails` (its code fingerprint) stays as it was."""

        def __getattr__(self, name: str) -> Any:
            from PIL import Image

            return getattr(Image, name)

    Image = _Image()

__all__ = ["MAX_SHEET_PX", "sheet_columns", "thumbnails", "tile_size"]

#: JPEG's largest side is 65,535 pixels; a sheet stays well inside it.
MAX_SHEET_PX = 60_000
_MIN_COLUMNS = 16


@feature(version="1", resources="cpu")
def thumbnails(
    encode: EncodedMedia, shots: ShotTable, dedup: DedupMap, *, width: int = 160, quality: int = 80
) -> ShotThumbnails:
    """One ``width``-pixel-wide JPEG tile per unique shot, from the middle frame of the shot, in one sprite sheet;
    tiles keep the encode's aspect (its pixels are square), and duplicates share their representative's tile."""
    if not 16 <= width <= 1024:
        raise ValueError(f"thumbnails: width must be in [16, 1024] pixels, got {width}")
    if not 1 <= quality <= 95:
        raise ValueError(f"thumbnails: quality must be in [1, 95], got {quality}")
    if len(dedup.representative) != len(shots):
        raise ValueError(f"thumbnails: dedup maps {len(dedup.representative)} shots, the table has {len(shots)}")
    unique = dedup.unique
    tile_of = {shot: tile for tile, shot in enumerate(unique)}
    tile_width, tile_height = tile_size(encode.width, encode.height, width)
    columns = sheet_columns(len(unique), tile_width, tile_height)
    rows = max(1, math.ceil(len(unique) / columns))
    sheet = Image.new("RGB", (columns * tile_width, rows * tile_height))
    middle = {shot: sample_frames(shots.shots[shot], 1, encode.frame_count)[0] for shot in unique}
    shots_at: dict[int, list[int]] = {}
    for shot, frame in middle.items():
        shots_at.setdefault(frame, []).append(shot)
    for frame, rgb in decode_frames(encode.path, set(shots_at)):
        tile = Image.fromarray(rgb).resize((tile_width, tile_height), Image.Resampling.LANCZOS, reducing_gap=2.0)
        for shot in shots_at[frame]:
            at = tile_of[shot]
            sheet.paste(tile, ((at % columns) * tile_width, (at // columns) * tile_height))
    out = Path(tempfile.mkdtemp(prefix="mediamesh-thumbnails-")) / "thumbnails.jpg"
    sheet.save(out, format="JPEG", quality=quality, optimize=True)
    tiles = tuple(tile_of[root] for root in dedup.representative)
    return ShotThumbnails(path=out, tile_width=tile_width, tile_height=tile_height, columns=columns, tiles=tiles)


@shared.hint("thumbnails")
def _thumbnail_frames(encode: EncodedMedia, shots: ShotTable, params: Mapping[str, Any]) -> set[int]:
    return {sample_frames(shot, 1, encode.frame_count)[0] for shot in shots.shots}


def tile_size(frame_width: int, frame_height: int, width: int) -> tuple[int, int]:
    """A tile ``width`` pixels wide with the frame's aspect (square pixels), at least one pixel high."""
    return width, max(1, round(width * frame_height / frame_width))


def sheet_columns(tiles: int, tile_width: int, tile_height: int) -> int:
    """Columns for ``tiles`` tiles: at least 16 (fewer only when there are fewer tiles), more when the sheet
    would grow past about square, so neither side nears JPEG's limit."""
    square = math.ceil(math.sqrt(tiles * tile_height / tile_width)) if tiles else 1
    columns = max(1, min(tiles, max(_MIN_COLUMNS, square)))
    if columns * tile_width > MAX_SHEET_PX or math.ceil(tiles / columns) * tile_height > MAX_SHEET_PX:
        raise ValueError(f"thumbnails: {tiles} tiles of {tile_width}x{tile_height} do not fit one sprite sheet")
    return columns
