"""Choosing the title's subtitle track and mapping its cues to shots, on real files and muxed clips."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediamesh.features.spec import spec_of
from mediamesh.features.subtitles import SubtitleError
from mediamesh.features.timed_text import cues_per_shot, language_matches, timed_text
from mediamesh.features.values import Cue, ShotTable, SourceMedia, Subtitles, SubtitleTrack, TimedText
from tests.features.test_subtitles import ASS, SRT, mux, write

DATA = Path(__file__).resolve().parents[1] / "data"
NO_STREAMS = SourceMedia(asset="counter", path=DATA / "counter.mp4", name="counter.mp4")

# Four shots at 24 fps: [0, 1), [1, 1.5), [1.5, 2.75), [2.75, 3) seconds.
SHOTS = ShotTable.from_frames(24.0, [(0, 24), (24, 36), (36, 66), (66, 72)])


def track(directory: Path, name: str, text: str, language: str | None) -> SubtitleTrack:
    return SubtitleTrack(path=write(directory, name, text), name=name, language=language)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> SourceMedia:
    """counter.mp4 with an ASS stream in French (index 1) and an SRT stream in English (index 2)."""
    directory = tmp_path_factory.mktemp("timed_text")
    path = mux(
        directory / "two.mkv",
        [(write(directory, "fr.ass", ASS), "ass", "fre"), (write(directory, "en.srt", SRT), "subrip", "eng")],
    )
    return SourceMedia(asset="two", path=path, name="two.mkv")


def test_sidecar_cues_per_shot(tmp_path: Path) -> None:
    subtitles = Subtitles(tracks=(track(tmp_path, "movie.en.srt", SRT, "en"),))
    value = timed_text(NO_STREAMS, subtitles, SHOTS)
    assert value.origin == "sidecar:movie.en.srt"
    assert value.language == "en"
    assert value.cues == (Cue(0.5, 1.2, "Hello there, General."), Cue(1.5, 2.75, "Second cue"))
    # Cue 0 spans the first cut; cue 1 starts exactly at shot 2 and ends exactly where shot 3 starts.
    assert value.per_shot == ((0,), (0,), (1,), ())
    assert [value.shot_text(i) for i in range(4)] == [
        "Hello there, General.",
        "Hello there, General.",
        "Second cue",
        "",
    ]


def test_a_cue_spanning_many_shots_is_in_each_and_order_is_cue_order() -> None:
    cues = [Cue(0.0, 10.0, "long"), Cue(0.2, 0.3, "short"), Cue(1.0, 1.0, "instant"), Cue(1.2, 1.6, "x")]
    assert cues_per_shot(cues, SHOTS) == ((0, 1), (0, 3), (0, 3), (0,))
    assert cues_per_shot([], SHOTS) == ((), (), (), ())


def test_attached_track_in_the_wanted_language(tmp_path: Path) -> None:
    subtitles = Subtitles(
        tracks=(
            track(tmp_path, "movie.fr.ass", ASS, "fr"),
            track(tmp_path, "movie.en-US.srt", SRT, "en-US"),
        )
    )
    assert timed_text(NO_STREAMS, subtitles, SHOTS).origin == "sidecar:movie.en-US.srt"
    assert timed_text(NO_STREAMS, subtitles, SHOTS, language="FR").origin == "sidecar:movie.fr.ass"
    assert timed_text(NO_STREAMS, subtitles, SHOTS, language="de").origin == "sidecar:movie.fr.ass"


def test_attached_track_without_language_is_taken_when_it_is_the_first(tmp_path: Path) -> None:
    subtitles = Subtitles(tracks=(track(tmp_path, "a.srt", SRT, None), track(tmp_path, "b.ass", ASS, None)))
    value = timed_text(NO_STREAMS, subtitles, SHOTS)
    assert (value.origin, value.language) == ("sidecar:a.srt", None)


def test_attached_tracks_win_over_streams(tmp_path: Path, clip: SourceMedia) -> None:
    subtitles = Subtitles(tracks=(track(tmp_path, "commentary.ass", ASS, "fr"),))
    assert timed_text(clip, subtitles, SHOTS).origin == "sidecar:commentary.ass"


def test_broken_chosen_track_is_an_error_not_a_fall_back(tmp_path: Path, clip: SourceMedia) -> None:
    broken = track(tmp_path, "movie.en.srt", "1\n00:00:0x,000 --> 00:00:02,000\nHi\n", "en")
    subtitles = Subtitles(tracks=(broken, track(tmp_path, "movie.fr.srt", SRT, "fr")))
    with pytest.raises(SubtitleError, match=r"cannot parse subtitles 'movie\.en\.srt': malformed timing"):
        timed_text(clip, subtitles, SHOTS)


def test_stream_in_the_wanted_language(clip: SourceMedia) -> None:
    value = timed_text(clip, Subtitles(), SHOTS)
    assert (value.origin, value.language) == ("stream:2", "eng")
    assert [cue.text for cue in value.cues] == ["Hello there, General.", "Second cue"]
    assert value.per_shot == ((0,), (0,), (1,), ())


def test_first_stream_when_none_is_in_the_wanted_language(clip: SourceMedia) -> None:
    value = timed_text(clip, Subtitles(), SHOTS, language="ja")
    assert (value.origin, value.language) == ("stream:1", "fre")
    assert [cue.text for cue in value.cues] == ["First cue", "Sign", "Later line"]
    assert value.per_shot == ((0,), (0,), (1, 2), (2,))


def test_no_subtitles_at_all() -> None:
    value = timed_text(NO_STREAMS, Subtitles(), SHOTS)
    assert value == TimedText(cues=(), per_shot=((), (), (), ()), origin="none", language=None)
    assert value.shot_text(3) == ""


def test_value_round_trips_through_json(tmp_path: Path) -> None:
    value = timed_text(NO_STREAMS, Subtitles(tracks=(track(tmp_path, "x.srt", SRT, "en"),)), SHOTS)
    assert TimedText.from_json(value.to_json()) == value


@pytest.mark.parametrize(
    ("tag", "wanted", "matches"),
    [
        ("en", "en", True),
        ("en-US", "en", True),
        ("EN_gb", "en", True),
        ("eng", "en", True),
        ("en-US", "EN-us", True),
        ("ger", "de", True),
        ("en", "en-US", False),
        ("en-GB", "en-US", False),
        ("est", "es", False),
        ("fr", "en", False),
        (None, "en", False),
    ],
)
def test_language_matches(tag: str | None, wanted: str, matches: bool) -> None:
    assert language_matches(tag, wanted) is matches


def test_timed_text_is_a_plain_function_with_a_spec() -> None:
    spec = spec_of(timed_text)
    assert spec is not None
    assert (spec.ref, spec.input_names, spec.output) == ("timed_text@1", ("source", "subtitles", "shots"), TimedText)
    assert dict(spec.params) == {"language": "en"}
