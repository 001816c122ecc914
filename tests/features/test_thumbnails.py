"""Shot thumbnails on a real standardized encode: one tile per unique shot from its middle frame, in the encode's
aspect, duplicates sharing a tile, and sheets of thousands of tiles laid out inside JPEG's limits."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mediamesh.features.dedup import dedup
from mediamesh.features.encode import encode
from mediamesh.features.encoders import decode_frames
from mediamesh.features.shots import shots
from mediamesh.features.spec import spec_of
from mediamesh.features.thumbnails import MAX_SHEET_PX, sheet_columns, thumbnails, tile_size
from mediamesh.features.values import DedupMap, EncodedMedia, ShotTable, ShotThumbnails, SourceMedia

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(autouse=True)
def _scratch_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The feature writes its sheet in a ``mediamesh-*`` scratch folder, which the engine removes once it is
    stored; called directly here, the folder goes with the test's own."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


@pytest.fixture(scope="module")
def title(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EncodedMedia, ShotTable, DedupMap]]:
    """issue-195-aspect-ratio.mp4 (16:9 on display, anamorphic in the file): its encode, shots and dedup map."""
    original = SourceMedia(asset="a", path=DATA / "issue-195-aspect-ratio.mp4", name="issue-195-aspect-ratio.mp4")
    encoded = encode(original)
    table = shots(original, encoded)
    yield encoded, table, dedup(encoded, table)
    shutil.rmtree(encoded.path.parent, ignore_errors=True)


def _tiles(value: ShotThumbnails) -> list[np.ndarray]:
    with Image.open(value.path) as sheet:
        return [
            np.asarray(sheet.convert("RGB").crop(value.box(shot)), dtype=np.float32) for shot in range(len(value.tiles))
        ]


def test_one_tile_per_shot_from_its_middle_frame_in_the_encodes_aspect(
    title: tuple[EncodedMedia, ShotTable, DedupMap],
) -> None:
    encoded, table, unique = title
    value = thumbnails(encoded, table, unique)
    try:
        assert (encoded.width, encoded.height) == (640, 360)
        assert (value.tile_width, value.tile_height, value.columns) == (160, 90, 6)
        assert value.tiles == (0, 1, 2, 3, 4, 5)
        with Image.open(value.path) as sheet:
            assert (sheet.format, sheet.size) == ("JPEG", (6 * 160, 90))
        middles = {(s.start_frame + s.end_frame) // 2: s.index for s in table.shots}
        frames = {middles[i]: rgb for i, rgb in decode_frames(encoded.path, set(middles))}
        shrunk = [
            np.asarray(Image.fromarray(frames[i]).resize((160, 90), Image.Resampling.LANCZOS), dtype=np.float32)
            for i in sorted(frames)
        ]
        # Each tile is nearest its own shot's middle frame, by far: a JPEG of it, not of a neighbour.
        for shot, tile in enumerate(_tiles(value)):
            errors = [float(np.abs(tile - frame).mean()) for frame in shrunk]
            assert int(np.argmin(errors)) == shot and errors[shot] < 6, errors
    finally:
        shutil.rmtree(value.path.parent, ignore_errors=True)


def test_duplicates_share_their_representatives_tile(title: tuple[EncodedMedia, ShotTable, DedupMap]) -> None:
    encoded, table, _ = title
    repeats = DedupMap(representative=(0, 1, 0, 3, 1, 5), method="given")
    value = thumbnails(encoded, table, repeats, width=64)
    try:
        assert value.tiles == (0, 1, 0, 2, 1, 3)
        assert (value.tile_width, value.tile_height, value.columns) == (64, 36, 4)
        with Image.open(value.path) as sheet:
            assert sheet.size == (4 * 64, 36)
        assert value.box(2) == value.box(0) == (0, 0, 64, 36) and value.box(5) == (192, 0, 256, 36)
        again = ShotThumbnails.from_file(value.path, value.to_meta())
        assert again == value
    finally:
        shutil.rmtree(value.path.parent, ignore_errors=True)


def test_the_feature_reads_the_encode_shots_and_dedup_and_checks_its_params(
    title: tuple[EncodedMedia, ShotTable, DedupMap],
) -> None:
    spec = spec_of(thumbnails)
    assert spec is not None
    assert [i.name for i in spec.inputs] == ["encode", "shots", "dedup"]
    assert spec.params == {"width": 160, "quality": 80} and spec.output is ShotThumbnails
    encoded, table, unique = title
    with pytest.raises(ValueError, match=r"width must be in \[16, 1024\] pixels, got 8"):
        thumbnails(encoded, table, unique, width=8)
    with pytest.raises(ValueError, match=r"dedup maps 2 shots, the table has 6"):
        thumbnails(encoded, table, DedupMap(representative=(0, 1), method="given"))


def test_thousands_of_tiles_fit_one_sheet_of_any_aspect() -> None:
    assert tile_size(640, 360, 160) == (160, 90)
    assert tile_size(202, 360, 160) == (160, 285)  # portrait
    assert sheet_columns(6, 160, 90) == 6 and sheet_columns(20, 160, 90) == 16
    for tile_width, tile_height in [(160, 90), (160, 285), (160, 20)]:
        for count in (1, 2000, 20_000):
            columns = sheet_columns(count, tile_width, tile_height)
            assert columns * tile_width <= MAX_SHEET_PX
            assert -(-count // columns) * tile_height <= MAX_SHEET_PX
    with pytest.raises(ValueError, match="do not fit one sprite sheet"):
        sheet_columns(1_000_000, 160, 285)
