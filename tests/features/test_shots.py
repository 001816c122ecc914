"""Shots on real standardized encodes: cuts found on the originals, placed on the encodes' frames."""

from __future__ import annotations

import bisect
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from mediamesh.features import transnet
from mediamesh.features.encode import encode
from mediamesh.features.errors import InputFileError
from mediamesh.features.shots import encode_frame, shot_bounds, shots
from mediamesh.features.spec import spec_of
from mediamesh.features.values import EncodedMedia, ShotTable, SourceMedia

DATA = Path(__file__).resolve().parents[1] / "data"

Encoded = Callable[[str], tuple[SourceMedia, EncodedMedia]]


@pytest.fixture(scope="module")
def encoded() -> Iterator[Encoded]:
    """``encoded(name)``: the source and default encode of ``tests/data/name``, computed on first use."""
    cache: dict[str, tuple[SourceMedia, EncodedMedia]] = {}

    def get(name: str) -> tuple[SourceMedia, EncodedMedia]:
        if name not in cache:
            source = SourceMedia(asset=name, path=DATA / name, name=name)
            cache[name] = (source, encode(source))
        return cache[name]

    yield get
    for _, value in cache.values():
        shutil.rmtree(value.path.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def testvideo_shots(encoded: Encoded) -> ShotTable:
    return shots(*encoded("testvideo.mp4"))


@pytest.fixture(scope="module")
def fades_transnet(encoded: Encoded) -> ShotTable:
    return shots(*encoded("fades.mp4"), detector="transnetv2")


def _bounds(table: ShotTable) -> list[tuple[int, int, str | None]]:
    return [(s.start_frame, s.end_frame, s.transition) for s in table.shots]


def test_testvideo_cuts_land_on_the_encode_frames_that_first_show_them(testvideo_shots: ShotTable) -> None:
    # 29.97 fps to 24: the cuts at source frames 30, 180 and 394 first show at encode frames 24, 144, 316,
    # and the frames the encode drops add no cut.
    table = testvideo_shots
    assert _bounds(table) == [(0, 24, None), (24, 144, "cut"), (144, 316, "cut"), (316, 577, "cut")]
    assert [s.start_time for s in table.shots] == [0.0, 1.0, 6.0, 13.166667]


@pytest.mark.parametrize("name", ["counter.mp4", "testvideo.mp4"])
def test_each_encode_frame_shows_the_source_frame_the_mapping_says(encoded: Encoded, name: str) -> None:
    # counter.mp4 (10 fps) has each frame shown two or three times at 24 fps; testvideo.mp4 (29.97) loses one in five.
    source, value = encoded(name)
    original, times = _gray(source.path)
    frames, _ = _gray(value.path)
    first_shown = [encode_frame(t - times[0], value.fps) for t in times]
    for n, frame in enumerate(frames):
        distance = ((original - frame) ** 2).mean(axis=(1, 2))
        mapped = bisect.bisect_right(first_shown, n) - 1
        assert distance[mapped] <= distance.min() + 1.0, f"encode frame {n}: shows {distance.argmin()}, not {mapped}"


def test_counter_is_one_shot_and_min_scene_len_counts_source_frames(encoded: Encoded) -> None:
    source, value = encoded("counter.mp4")
    assert _bounds(shots(source, value)) == [(0, 72, None)]
    assert _bounds(shots(source, value, min_scene_len=6)) == [(0, 24, None), (24, 48, "cut"), (48, 72, "cut")]


def test_fades_with_transnetv2_begin_shots_with_gradual_transitions(fades_transnet: ShotTable) -> None:
    # fades.mp4 dips to black near 3.36 s and 6.68 s: a fade-out ends and a fade-in begins at each.
    gradual = [s for s in fades_transnet.shots if s.transition == "gradual"]
    assert gradual and all(s.transition == "gradual" for s in fades_transnet.shots[1:])
    for shot in gradual:
        assert shot.transition_start == shot.start_time
        assert shot.transition_start < shot.transition_end <= shot.end_time  # type: ignore[operator]
    for dip in (3.36, 6.68):
        assert any(abs(s.transition_end - dip) <= 0.3 for s in gradual), gradual  # type: ignore[operator]
        assert any(abs(s.transition_start - dip) <= 0.3 for s in gradual), gradual  # type: ignore[operator]


@pytest.mark.parametrize("name", ["testvideo.mp4", "counter.mp4", "fades.mp4"])
def test_shots_cover_every_frame_once_in_order(
    encoded: Encoded, testvideo_shots: ShotTable, fades_transnet: ShotTable, name: str
) -> None:
    _, value = encoded(name)
    shared = {"testvideo.mp4": testvideo_shots, "fades.mp4": fades_transnet}
    table = shared[name] if name in shared else shots(*encoded(name))
    assert table.fps == 24.0
    assert table.shots[0].start_frame == 0 and table.shots[0].transition is None
    assert table.shots[-1].end_frame == value.frame_count
    for i, shot in enumerate(table.shots):
        assert shot.index == i
        assert shot.start_frame < shot.end_frame
        assert shot.start_time == pytest.approx(shot.start_frame / 24)
        assert shot.end_time == pytest.approx(shot.end_frame / 24)
    for before, after in zip(table.shots, table.shots[1:], strict=False):
        assert before.end_frame == after.start_frame


def test_encode_frame_rounds_half_up_from_the_first_frame() -> None:
    assert [encode_frame(i / 10, 24.0) for i in range(5)] == [0, 2, 5, 7, 10]
    assert encode_frame(500 * 1001 / 24000, 24.0) == 501  # 500.5 rounds up, as ffmpeg's fps filter does
    assert encode_frame(1.0, 24.0, start=0.03) == 24  # round(24.72) - round(0.72)


def test_shot_bounds_from_cuts() -> None:
    assert shot_bounds([], 10) == [(0, 10)]
    assert shot_bounds([4, 7], 10) == [(0, 4), (4, 7), (7, 10)]
    assert shot_bounds([0, 7, 4, 4, 10, 12], 10) == [(0, 4), (4, 7), (7, 10)]


def test_shot_table_json_round_trip_and_old_tables_load() -> None:
    table = ShotTable.from_frames(24.0, [(0, 24), (24, 60), (60, 72)], [("cut", None), ("gradual", 36)])
    assert ShotTable.from_json(table.to_json()) == table
    gradual = table.shots[2]
    assert (gradual.transition, gradual.transition_start, gradual.transition_end) == ("gradual", 2.5, 1.5)
    old = {"fps": 24.0, "shots": [{"index": 0, "start_frame": 0, "end_frame": 24, "start_time": 0.0, "end_time": 1.0}]}
    shot = ShotTable.from_json(old).shots[0]
    assert (shot.end_frame, shot.transition, shot.transition_start, shot.transition_end) == (24, None, None, None)


def test_missing_files(tmp_path: Path) -> None:
    gone = EncodedMedia(
        path=tmp_path / "encode.mp4", width=640, height=360, fps=24.0, frame_count=10, duration=0.4, has_audio=False
    )
    source = SourceMedia(asset="a", path=DATA / "counter.mp4")
    with pytest.raises(InputFileError, match=r"encode 'encode\.mp4' does not exist"):
        shots(source, gone)


def test_shots_is_a_plain_function_with_a_spec() -> None:
    spec = spec_of(shots)
    assert spec is not None
    assert (spec.ref, spec.input_names, spec.output) == ("shots@2", ("source", "encode"), ShotTable)
    assert dict(spec.params) == {
        "detector": "content",
        "threshold": 27.0,
        "min_scene_len": 15,
        "adaptive_threshold": 3.0,
        "min_content_val": 15.0,
        "transnet_threshold": 0.5,
        "transnet_cut_frames": 2,
    }
    assert spec.model_fingerprint() == transnet.fingerprint()


def _gray(path: Path) -> tuple[np.ndarray[Any, Any], list[float]]:
    """Every frame of ``path`` as 64x36 gray, and its time (s)."""
    frames, times = [], []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.reformat(64, 36, format="gray").to_ndarray().astype(np.float32))
            times.append(float(frame.time or 0.0))
    return np.stack(frames), times
