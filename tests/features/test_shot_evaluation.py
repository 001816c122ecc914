"""Scoring hard cuts against references on synthetic cut lists, and reading the reference CSV."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediamesh.features.errors import DefinitionError
from mediamesh.features.shot_evaluation import (
    CutReferenceError,
    CutScore,
    combined,
    match_cuts,
    read_reference_cuts,
    score_cuts,
)

DATA = Path(__file__).resolve().parents[1] / "data"
FPS = 25.0
FRAME = 1 / FPS


def test_a_perfect_detection_scores_one() -> None:
    score = score_cuts([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], fps=FPS, tolerance_frames=0)
    assert (score.precision, score.recall, score.f1) == (1.0, 1.0, 1.0)
    assert (score.missed, score.extra) == ((), ())


def test_one_frame_off_matches_at_tolerance_one_but_not_frame_exact() -> None:
    reference, detected = [1.0, 2.0], [1.0 + FRAME, 2.0]
    exact = score_cuts(reference, detected, fps=FPS, tolerance_frames=0)
    assert (exact.matched, exact.missed, exact.extra) == (1, (1.0,), (1.0 + FRAME,))
    assert (exact.precision, exact.recall, exact.f1) == (0.5, 0.5, 0.5)
    assert score_cuts(reference, detected, fps=FPS, tolerance_frames=1).matched == 2


def test_frame_exact_forgives_rounding_below_half_a_frame_but_not_more() -> None:
    # Reference times are rounded to milliseconds (13.146 for frame 394 at 29.97 fps, 13.1464 s).
    assert score_cuts([13.146], [394 * 1001 / 30000], fps=30000 / 1001, tolerance_frames=0).matched == 1
    assert score_cuts([1.0], [1.0 + 0.49 * FRAME], fps=FPS, tolerance_frames=0).matched == 1
    assert score_cuts([1.0], [1.0 + 0.51 * FRAME], fps=FPS, tolerance_frames=0).matched == 0
    assert score_cuts([1.0], [1.0 - 1.51 * FRAME], fps=FPS, tolerance_frames=1).matched == 0
    assert score_cuts([1.0], [1.0 + 2 * FRAME], fps=FPS, tolerance_frames=2).matched == 1


def test_the_tolerance_counts_frames_of_the_given_rate() -> None:
    off = 0.07  # 1.75 frames at 25 fps, 0.7 at 10 fps
    assert score_cuts([5.0], [5.0 + off], fps=25, tolerance_frames=1).matched == 0
    assert score_cuts([5.0], [5.0 + off], fps=10, tolerance_frames=1).matched == 1


def test_matching_is_one_to_one_and_nearest_first() -> None:
    # Both detections lie within tolerance of the first reference; the nearer one takes it, and the other
    # is free for the second reference rather than counted twice.
    assert match_cuts([1.0, 1.1], [1.02, 1.09], window=0.2) == [(0, 0), (1, 1)]
    assert match_cuts([1.0], [0.95, 1.01, 1.04], window=0.1) == [(0, 1)]
    # Greedy nearest-first: 1.05 goes to 1.06 (0.01 apart), though matching it to 1.0 would match both.
    assert match_cuts([1.0, 1.06], [1.05], window=0.1) == [(1, 0)]


def test_two_detections_near_one_cut_make_one_match_and_one_extra() -> None:
    score = score_cuts([2.0], [2.0, 2.0 + FRAME], fps=FPS, tolerance_frames=1)
    assert (score.matched, score.extra) == (1, (2.0 + FRAME,))
    assert (score.precision, score.recall) == (0.5, 1.0)
    assert score.f1 == pytest.approx(2 / 3)


def test_missed_and_extra_cuts_are_listed_in_time_order() -> None:
    score = score_cuts([9.0, 1.0, 5.0], [7.0, 5.0, 0.5, 3.0], fps=FPS, tolerance_frames=1)
    assert (score.matched, score.missed, score.extra) == (1, (1.0, 9.0), (0.5, 3.0, 7.0))
    assert (score.precision, score.recall) == (0.25, 1 / 3)


def test_clips_without_cuts_score_vacuously() -> None:
    nothing = score_cuts([], [], fps=FPS, tolerance_frames=1)
    assert (nothing.precision, nothing.recall, nothing.f1) == (1.0, 1.0, 1.0)
    false_alarm = score_cuts([], [4.0], fps=FPS, tolerance_frames=1)
    assert (false_alarm.precision, false_alarm.recall, false_alarm.f1) == (0.0, 1.0, 0.0)
    all_missed = score_cuts([4.0], [], fps=FPS, tolerance_frames=1)
    assert (all_missed.precision, all_missed.recall, all_missed.f1) == (1.0, 0.0, 0.0)


def test_combined_scores_sum_counts_across_clips() -> None:
    total = combined([CutScore(2, 3, 2, missed=(1.0,)), CutScore(0, 0, 2, extra=(1.0, 2.0)), CutScore(1, 1, 1)])
    assert total == CutScore(3, 4, 5)
    assert (total.precision, total.recall) == (0.6, 0.75)
    assert total.to_json(with_cuts=False) == {
        "precision": 0.6,
        "recall": 0.75,
        "f1": pytest.approx(2 / 3),
        "matched": 3,
        "reference": 4,
        "detected": 5,
    }


def test_bad_rates_and_tolerances_are_refused() -> None:
    with pytest.raises(ValueError, match="fps must be positive, got 0"):
        score_cuts([1.0], [1.0], fps=0, tolerance_frames=1)
    with pytest.raises(ValueError, match="tolerance_frames must be 0 or more, got -1"):
        score_cuts([1.0], [1.0], fps=FPS, tolerance_frames=-1)


def test_the_shipped_reference_csv_lists_every_clip_with_its_cuts() -> None:
    clips = {clip.name: clip for clip in read_reference_cuts(DATA / "shot_cuts.csv")}
    assert clips["testvideo.mp4"].cuts == (1.001, 6.006, 13.146)
    assert clips["big_buck_bunny_0_30.webm"].cuts == (11.792, 15.667, 22.958)
    assert clips["issue-195-aspect-ratio.mp4"].cuts == (2.8, 6.8, 12.04, 16.84, 19.36)
    assert {name for name, clip in clips.items() if not clip.cuts} == {"fades.mp4", "counter.mp4", "bigbuckbunny.mp4"}
    assert all(clip.path == DATA / name for name, clip in clips.items())
    assert len(clips) == 7


def _csv(tmp_path: Path, text: str) -> Path:
    (tmp_path / "clip.mp4").write_bytes(b"a clip")
    path = tmp_path / "cuts.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_rows_group_by_clip_in_first_appearance_resolve_against_the_csv_folder_and_sort(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "other.mp4").write_bytes(b"another clip")
    csv_path = _csv(
        tmp_path, f"path,cut_seconds\nclip.mp4,4.5\n\n{DATA / 'counter.mp4'},\nsub/other.mp4,2\nclip.mp4,1.25\n"
    )
    clips = read_reference_cuts(csv_path)
    assert [(clip.name, clip.path, clip.cuts) for clip in clips] == [
        ("clip.mp4", tmp_path / "clip.mp4", (1.25, 4.5)),
        (str(DATA / "counter.mp4"), DATA / "counter.mp4", ()),
        ("sub/other.mp4", tmp_path / "sub" / "other.mp4", (2.0,)),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"cuts\.csv, line 1: the header must be path,cut_seconds, got None"),
        ("clip,seconds\nclip.mp4,1\n", r"line 1: the header must be path,cut_seconds, got \['clip', 'seconds'\]"),
        ("path,cut_seconds\n", r"cuts\.csv: no clip after the header"),
        ("path,cut_seconds\nclip.mp4,1,2\n", r"line 2: expected 2 fields \(path, cut_seconds\), got 3"),
        ("path,cut_seconds\n,1\n", r"line 2: the path is empty"),
        ("path,cut_seconds\nclip.mp4,1\nmissing.mp4,2\n", r"line 3: no such clip 'missing\.mp4'"),
        ("path,cut_seconds\nclip.mp4,1.5s\n", r"line 2: cut_seconds '1\.5s' is not a number of seconds"),
        ("path,cut_seconds\nclip.mp4,-1\n", r"line 2: cut_seconds '-1' is not a time in the clip"),
        ("path,cut_seconds\nclip.mp4,nan\n", r"line 2: cut_seconds 'nan' is not a time in the clip"),
        ("path,cut_seconds\nclip.mp4,2\n\nclip.mp4,2.0\n", r"line 4: cut 2\.0 s of 'clip\.mp4' repeats line 2"),
        ("path,cut_seconds\nclip.mp4,\nclip.mp4,3\n", r"line 3: 'clip\.mp4' has no cut by line 2"),
        ("path,cut_seconds\nclip.mp4,3\nclip.mp4,\n", r"line 3: 'clip\.mp4' already has rows \(line 2\)"),
    ],
)
def test_a_bad_csv_is_one_error_naming_the_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(CutReferenceError, match=message) as raised:
        read_reference_cuts(_csv(tmp_path, text))
    assert str(raised.value).startswith(str(tmp_path / "cuts.csv"))
    assert isinstance(raised.value, DefinitionError)


def test_a_missing_csv_is_named(tmp_path: Path) -> None:
    with pytest.raises(CutReferenceError, match=r"nothing\.csv: cannot read the reference cuts: No such file"):
        read_reference_cuts(tmp_path / "nothing.csv")
