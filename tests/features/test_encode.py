"""The standardized encode, run with real ffmpeg on real clips; each clip is encoded once per module."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest

from mediamesh.features import default_registry, spec_of
from mediamesh.features.encode import encode
from mediamesh.features.errors import InputFileError, MediaError
from mediamesh.features.media import ffmpeg_exe, probe
from mediamesh.features.values import EncodedMedia, SourceMedia

DATA = Path(__file__).resolve().parents[1] / "data"

Encoded = Callable[[str], EncodedMedia]


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


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temp dir that ``tempfile`` uses, to check what encode leaves behind."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


def test_non_square_pixels_become_square_at_display_aspect(encoded: Encoded) -> None:
    value = encoded("issue-195-aspect-ratio.mp4")
    assert (value.width, value.height) == (640, 360)
    with av.open(str(value.path)) as container:
        video = container.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (640, 360)
        assert video.sample_aspect_ratio == 1
    info = probe(value.path)
    assert (info.display_width, info.display_height) == (640, 360)


def test_square_pixel_source_keeps_its_aspect(encoded: Encoded) -> None:
    value = encoded("testvideo.mp4")
    assert (value.width, value.height) == (640, 360)


@pytest.mark.parametrize(
    "name",
    ["testvideo.mp4", "issue-134-rotate.mp4", "issue-195-aspect-ratio.mp4", "bigbuckbunny.mp4"],
)
def test_output_is_h264_yuv420p_at_constant_24_fps(encoded: Encoded, name: str) -> None:
    value = encoded(name)
    assert value.fps == 24.0
    with av.open(str(value.path)) as container:
        video = container.streams.video[0]
        assert video.codec_context.name == "h264"
        assert video.codec_context.pix_fmt == "yuv420p"
        assert video.average_rate == 24
        pts = sorted(p.pts for p in container.demux(video) if p.pts is not None)
        assert video.time_base is not None
        steps = {round(float((b - a) * video.time_base) * 24, 6) for a, b in itertools.pairwise(pts)}
        assert steps == {1.0}, "frame timestamps are not one 1/24 s step apart"
    with av.open(str(value.path)) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    assert value.frame_count == decoded == len(pts)
    assert abs(value.frame_count - round(value.duration * 24)) <= 1
    assert value.duration == pytest.approx(probe(DATA / name).duration, abs=0.1)


def test_container_rotation_is_applied(encoded: Encoded) -> None:
    source = DATA / "issue-134-rotate.mp4"
    info = probe(source)
    value = encoded("issue-134-rotate.mp4")
    assert info.rotation == -90
    assert (value.width, value.height) == (152, 360)

    original = _gray_frame_at(source, 5.0)
    target = _gray_frame_at(value.path, 5.0)
    upright = _correlation(np.rot90(original, k=info.rotation // 90), target)
    as_stored = _correlation(original, target)
    turned_the_other_way = _correlation(np.rot90(original, k=-info.rotation // 90), target)
    assert upright > 0.95
    assert as_stored < 0.5
    assert turned_the_other_way < 0.5
    with av.open(str(value.path)) as container:
        assert next(container.decode(video=0)).rotation == 0, "the encode still carries a display matrix"


def test_audio_is_mono_aac_at_16_khz(encoded: Encoded) -> None:
    value = encoded("bigbuckbunny.mp4")
    assert value.has_audio is True
    assert value.sample_rate == 16000
    with av.open(str(value.path)) as container:
        (audio,) = container.streams.audio
        assert audio.codec_context.name == "aac"
        assert audio.codec_context.sample_rate == 16000
        assert audio.codec_context.channels == 1


def test_video_without_audio_is_valid(encoded: Encoded) -> None:
    value = encoded("testvideo.mp4")
    assert value.has_audio is False
    assert value.sample_rate is None
    assert value.frame_count > 0
    with av.open(str(value.path)) as container:
        assert not container.streams.audio


def test_params_set_height_and_rate(scratch: Path) -> None:
    value = encode(SourceMedia(asset="counter", path=DATA / "counter.mp4"), height=240, fps=12.0)
    try:
        assert (value.width, value.height) == (426, 240)
        assert value.fps == 12.0
        assert value.frame_count == 36  # 3 s at 12 fps
        assert value.path.name == "encode.mp4"
        assert value.path.parent.parent == scratch
        assert value.path.parent.name.startswith("mediamesh-encode-")
    finally:
        shutil.rmtree(value.path.parent)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"height": 361}, "height must be an even number"),
        ({"fps": 0.0}, r"fps must be in \(0, 1000\]"),
        ({"audio_rate": 0}, "audio_rate must be at least 1000 Hz"),
    ],
)
def test_bad_params_fail_before_any_work(scratch: Path, params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode(SourceMedia(asset="counter", path=DATA / "counter.mp4"), **params)
    assert not list(scratch.iterdir())


def test_webm_with_vorbis_encodes(encoded: Encoded) -> None:
    value = encoded("big_buck_bunny_0_30.webm")
    assert (value.width, value.height, value.frame_count) == (640, 360, 720)
    assert value.sample_rate == 16000


def test_zero_byte_file(scratch: Path, tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").touch()
    with pytest.raises(InputFileError, match=r"'empty\.mp4' is empty \(0 bytes\)"):
        encode(SourceMedia(asset="a", path=tmp_path / "empty.mp4"))
    assert not list(scratch.iterdir())


def test_truncated_mp4(scratch: Path, tmp_path: Path) -> None:
    data = (DATA / "testvideo.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) * 2 // 5])
    with pytest.raises(MediaError, match=r"cannot decode 'cut\.mp4': invalid data found"):
        encode(SourceMedia(asset="a", path=tmp_path / "cut.mp4"))
    assert not list(scratch.iterdir())


def test_truncated_faststart_mp4_fails_in_ffmpeg(scratch: Path, tmp_path: Path) -> None:
    # With the index (moov) first, a truncated file still probes; only its missing media data fails.
    faststart = tmp_path / "faststart.mp4"
    remux = [ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(DATA / "bigbuckbunny.mp4"), "-c", "copy"]
    subprocess.run([*remux, "-movflags", "+faststart", str(faststart)], check=True)
    data = faststart.read_bytes()
    (tmp_path / "half.mp4").write_bytes(data[: len(data) * 3 // 5])
    assert probe(tmp_path / "half.mp4").duration > 5
    with pytest.raises(MediaError, match=r"^ffmpeg could not encode 'half\.mp4': .*corrupt"):
        encode(SourceMedia(asset="a", path=tmp_path / "half.mp4"))
    assert not list(scratch.iterdir())


def test_text_file_named_mp4(scratch: Path, tmp_path: Path) -> None:
    (tmp_path / "readme.mp4").write_text("not a video\n")
    with pytest.raises(MediaError, match=r"cannot decode 'readme\.mp4'"):
        encode(SourceMedia(asset="a", path=tmp_path / "readme.mp4"))
    assert not list(scratch.iterdir())


def test_missing_path(scratch: Path, tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match=r"'gone\.mp4' does not exist"):
        encode(SourceMedia(asset="a", path=tmp_path / "gone.mp4"))
    assert not list(scratch.iterdir())


def test_errors_name_the_source_name_not_the_blob_path(scratch: Path, tmp_path: Path) -> None:
    (tmp_path / "3f9a0c").write_text("not a video\n")
    with pytest.raises(MediaError, match=r"^cannot decode 'trailer\.mov'"):
        encode(SourceMedia(asset="3f9a0c", path=tmp_path / "3f9a0c", name="trailer.mov"))


def test_encode_is_a_plain_function_with_a_spec() -> None:
    spec = spec_of(encode)
    assert spec is not None
    assert (spec.ref, spec.resources, spec.input_names) == ("encode@1", "cpu", ("source",))
    assert dict(spec.params) == {"height": 360, "fps": 24.0, "audio_rate": 16000}
    assert spec.output is EncodedMedia
    assert default_registry().closure(["shots"]) == ("encode", "shots")


def _gray_frame_at(path: Path, seconds: float) -> np.ndarray:
    """The frame shown nearest ``seconds``, as stored (PyAV does not apply a display matrix)."""
    best: tuple[float, av.VideoFrame] | None = None
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            distance = abs((frame.time or 0.0) - seconds)
            if best is None or distance < best[0]:
                best = (distance, frame)
            elif frame.time is not None and frame.time > seconds:
                break
    assert best is not None
    return np.asarray(best[1].to_ndarray(format="gray"), dtype=np.float64)


def _correlation(image: np.ndarray, target: np.ndarray) -> float:
    resized = cv2.resize(image, (target.shape[1], target.shape[0]), interpolation=cv2.INTER_AREA)
    return float(np.corrcoef(resized.ravel(), target.ravel())[0, 1])
