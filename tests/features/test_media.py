"""Probing real clips with PyAV, and the errors bad input gets."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from mediamesh.features.errors import InputFileError, MediaError
from mediamesh.features.media import ffmpeg_exe, probe

DATA = Path(__file__).resolve().parents[1] / "data"


def test_probe_reads_size_rate_duration_and_streams() -> None:
    info = probe(DATA / "testvideo.mp4")
    assert (info.width, info.height) == (1280, 720)
    assert (info.display_width, info.display_height) == (1280, 720)
    assert info.sample_aspect_ratio == 1
    assert info.rotation == 0
    assert info.fps == pytest.approx(30000 / 1001)
    assert info.duration == pytest.approx(24.0, abs=0.05)
    assert info.has_audio is False
    assert info.video_codec == "h264"


def test_probe_reads_container_rotation() -> None:
    info = probe(DATA / "issue-134-rotate.mp4")
    assert (info.width, info.height) == (1280, 544)
    assert info.rotation == -90
    assert (info.display_width, info.display_height) == (544, 1280)
    assert info.has_audio is True


def test_probe_applies_sample_aspect_ratio_to_display_size() -> None:
    info = probe(DATA / "issue-195-aspect-ratio.mp4")
    assert (info.width, info.height) == (704, 576)
    assert info.sample_aspect_ratio == Fraction(16, 11)
    assert (info.display_width, info.display_height) == (1024, 576)


def test_probe_reads_webm() -> None:
    info = probe(DATA / "big_buck_bunny_0_30.webm")
    assert info.video_codec == "vp8"
    assert info.fps == 24
    assert info.duration == pytest.approx(30.0, abs=0.05)
    assert info.has_audio is True


def test_missing_file_is_an_input_file_error(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match=r"'nowhere\.mp4' does not exist"):
        probe(tmp_path / "nowhere.mp4")


def test_zero_byte_file_is_an_input_file_error(tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").touch()
    with pytest.raises(InputFileError, match=r"^'empty\.mp4' is empty \(0 bytes\)$"):
        probe(tmp_path / "empty.mp4")


def test_directory_is_an_input_file_error(tmp_path: Path) -> None:
    (tmp_path / "folder.mp4").mkdir()
    with pytest.raises(InputFileError, match=r"'folder\.mp4' is not a regular file"):
        probe(tmp_path / "folder.mp4")


def test_text_file_is_a_media_error(tmp_path: Path) -> None:
    (tmp_path / "notes.mp4").write_text("these are not the frames you are looking for\n")
    with pytest.raises(MediaError, match=r"^cannot decode 'notes\.mp4': invalid data found when processing"):
        probe(tmp_path / "notes.mp4")


def test_truncated_mp4_is_a_media_error(tmp_path: Path) -> None:
    data = (DATA / "testvideo.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) * 2 // 5])
    with pytest.raises(MediaError, match=r"^cannot decode 'cut\.mp4': invalid data"):
        probe(tmp_path / "cut.mp4")


def test_audio_only_file_is_a_media_error(tmp_path: Path) -> None:
    audio = tmp_path / "sound.m4a"
    subprocess.run(
        [
            ffmpeg_exe(),
            "-nostdin",
            "-v",
            "error",
            "-i",
            str(DATA / "bigbuckbunny.mp4"),
            "-vn",
            "-c",
            "copy",
            str(audio),
        ],
        check=True,
    )
    with pytest.raises(MediaError, match=r"^'sound\.m4a' has no video stream$"):
        probe(audio)


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-y", *args], check=True)


def frame_of_counter(out: Path, *options: str) -> Path:
    """The first frame of ``counter.mp4``, small, written as ``out`` (the format follows the extension)."""
    ffmpeg("-i", str(DATA / "counter.mp4"), "-frames:v", "1", "-vf", "scale=64:36", *options, str(out))
    return out


@pytest.mark.parametrize("name", ["still.png", "still.jpg", "still.webp", "still.bmp", "still.gif", "still.tiff"])
def test_an_image_file_is_a_still_image(tmp_path: Path, name: str) -> None:
    image = frame_of_counter(tmp_path / name)
    with pytest.raises(MediaError, match=rf"^'{name}' is a still image, not a video$"):
        probe(image)
    # The demuxer goes by the bytes, not the name.
    renamed = image.rename(tmp_path / "movie.mp4")
    with pytest.raises(MediaError, match=r"^'movie\.mp4' is a still image, not a video$"):
        probe(renamed)


@pytest.mark.parametrize(("name", "codec"), [("one.mkv", "png"), ("one.mp4", "png"), ("one.mkv", "mjpeg")])
def test_one_picture_in_a_video_container_is_a_still_image(tmp_path: Path, name: str, codec: str) -> None:
    clip = frame_of_counter(tmp_path / name, "-c:v", codec)
    with pytest.raises(MediaError, match=rf"^'{name}' is a still image, not a video$"):
        probe(clip)


@pytest.mark.parametrize("name", ["motion.avi", "motion.mov"])
def test_mjpeg_video_is_a_video(tmp_path: Path, name: str) -> None:
    clip = tmp_path / name
    ffmpeg("-i", str(DATA / "counter.mp4"), "-t", "1", "-vf", "scale=64:36", "-c:v", "mjpeg", str(clip))
    info = probe(clip)
    assert (info.video_codec, info.width, info.height, info.fps) == ("mjpeg", 64, 36, 10.0)
    assert info.duration == pytest.approx(1.0)


def test_an_animated_gif_is_a_video(tmp_path: Path) -> None:
    clip = tmp_path / "motion.gif"
    ffmpeg("-i", str(DATA / "counter.mp4"), "-t", "1", "-vf", "scale=64:36", str(clip))
    info = probe(clip)
    assert (info.video_codec, info.fps) == ("gif", 10.0)
    assert info.duration == pytest.approx(1.0)


def test_errors_name_the_given_name_over_the_path(tmp_path: Path) -> None:
    (tmp_path / "0a1b2c").touch()
    with pytest.raises(InputFileError, match=r"^'holiday\.mov' is empty"):
        probe(tmp_path / "0a1b2c", name="holiday.mov")


def test_ffmpeg_exe_runs_and_has_libx264() -> None:
    encoders = [ffmpeg_exe(), "-hide_banner", "-encoders"]
    result = subprocess.run(encoders, capture_output=True, text=True, check=True)
    assert "libx264" in result.stdout
    assert " aac " in result.stdout
