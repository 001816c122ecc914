"""Shot boundaries on real standardized encodes, against the clips' reference cuts."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mediamesh.features.encode import encode
from mediamesh.features.errors import InputFileError
from mediamesh.features.shots import shot_bounds, shots
from mediamesh.features.spec import spec_of
from mediamesh.features.values import EncodedMedia, ShotTable, SourceMedia

DATA = Path(__file__).resolve().parents[1] / "data"
ONE_FRAME = 1 / 24

Encoded = Callable[[str], EncodedMedia]

# Shot starts (s) PySceneDetect finds on the original files (ContentDetector, threshold 27, min_scene_len 15).
REFERENCE_CUTS = {
    "testvideo.mp4": [1.001, 6.006, 13.146],
    "issue-134-rotate.mp4": [3.754, 8.759],
    "issue-195-aspect-ratio.mp4": [2.8, 6.8, 12.04, 16.84, 19.36],
    "big_buck_bunny_0_30.webm": [11.792, 15.667, 22.958],
}


@pytest.fixture(scope="module")
def encoded() -> Iterator[Encoded]:
    """``encoded(name)``: the default encode of ``tests/data/name``, computed on first use."""
    cache: dict[str, EncodedMedia] = {}

    def get(name: str) -> EncodedMedia:
        if name not in cache:
            cache[name] = encode(SourceMedia(asset=name, path=DATA / name, name=name))
        return cache[name]

    yield get
    for value in cache.values():
        shutil.rmtree(value.path.parent, ignore_errors=True)


@pytest.mark.parametrize("name", sorted(REFERENCE_CUTS))
def test_every_reference_cut_starts_a_shot_within_one_frame(encoded: Encoded, name: str) -> None:
    starts = [shot.start_time for shot in shots(encoded(name)).shots[1:]]
    for cut in REFERENCE_CUTS[name]:
        nearest = min(starts, key=lambda start: abs(start - cut))
        assert abs(nearest - cut) <= ONE_FRAME, f"no shot starts within a frame of {cut} s: {starts}"


@pytest.mark.parametrize("name", sorted(set(REFERENCE_CUTS) - {"testvideo.mp4"}))
def test_no_cut_beyond_the_reference(encoded: Encoded, name: str) -> None:
    assert len(shots(encoded(name))) == len(REFERENCE_CUTS[name]) + 1


def test_fast_action_at_24_fps_adds_cuts_the_original_rate_scores_just_below_threshold(
    encoded: Encoded,
) -> None:
    # testvideo is 29.97 fps; at 24 fps every fifth frame is dropped, so whip pans and flashes differ
    # more from frame to frame. The three extra starts score 27-37 here and 22-27 on the original.
    starts = [round(shot.start_time, 3) for shot in shots(encoded("testvideo.mp4")).shots]
    assert starts == [0.0, 1.0, 6.0, 7.125, 11.958, 13.167, 23.042]


@pytest.mark.parametrize("name", ["counter.mp4", "fades.mp4", "bigbuckbunny.mp4"])
def test_video_without_a_cut_is_one_shot_covering_every_frame(encoded: Encoded, name: str) -> None:
    value = encoded(name)
    table = shots(value)
    assert [(s.index, s.start_frame, s.end_frame) for s in table.shots] == [(0, 0, value.frame_count)]
    assert table.shots[0].end_time == pytest.approx(value.frame_count / 24)


def test_min_scene_len_counts_frames_of_the_original(encoded: Encoded) -> None:
    # counter.mp4's background changes colour every second. On the 10 fps original, 15 frames (1.5 s)
    # hide those changes, and they stay hidden on the 24 fps encode because min_scene_len still means
    # 15 frames of the original (36 of the encode). Six original frames (0.6 s) let them through.
    value = encoded("counter.mp4")
    assert (value.frame_count, value.source_fps) == (72, 10.0)
    assert [(s.start_frame, s.end_frame) for s in shots(value).shots] == [(0, 72)]
    assert [(s.start_frame, s.end_frame) for s in shots(value, min_scene_len=6).shots] == [(0, 24), (24, 48), (48, 72)]


def test_threshold_above_every_score_gives_one_shot(encoded: Encoded) -> None:
    value = encoded("testvideo.mp4")
    bounds = [(s.start_frame, s.end_frame) for s in shots(value, threshold=95.0).shots]
    assert bounds == [(0, value.frame_count)]


@pytest.mark.parametrize("name", [*sorted(REFERENCE_CUTS), "counter.mp4", "fades.mp4"])
def test_shots_cover_every_frame_once_in_order(encoded: Encoded, name: str) -> None:
    value = encoded(name)
    table = shots(value)
    assert isinstance(table, ShotTable)
    assert table.fps == 24.0
    assert table.shots[0].start_frame == 0
    assert table.shots[-1].end_frame == value.frame_count
    for i, shot in enumerate(table.shots):
        assert shot.index == i
        assert shot.start_frame < shot.end_frame
        assert shot.start_time == pytest.approx(shot.start_frame / 24)
        assert shot.end_time == pytest.approx(shot.end_frame / 24)
    for before, after in zip(table.shots, table.shots[1:], strict=False):
        assert before.end_frame == after.start_frame


def test_shot_bounds_from_cuts() -> None:
    assert shot_bounds([], 10) == [(0, 10)]
    assert shot_bounds([4, 7], 10) == [(0, 4), (4, 7), (7, 10)]
    assert shot_bounds([0, 7, 4, 4, 10, 12], 10) == [(0, 4), (4, 7), (7, 10)]


def test_missing_encode_file(tmp_path: Path) -> None:
    gone = EncodedMedia(
        path=tmp_path / "encode.mp4",
        width=640,
        height=360,
        fps=24.0,
        frame_count=10,
        duration=0.4,
        has_audio=False,
    )
    with pytest.raises(InputFileError, match=r"encode 'encode\.mp4' does not exist"):
        shots(gone)


def test_shots_is_a_plain_function_with_a_spec() -> None:
    spec = spec_of(shots)
    assert spec is not None
    assert (spec.ref, spec.input_names, spec.output) == ("shots@1", ("encode",), ShotTable)
    assert dict(spec.params) == {"threshold": 27.0, "min_scene_len": 15}
