"""The standardized encode: the derivative every other media feature reads."""

from __future__ import annotations

import re
import shutil
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

from mediamesh.features import processes
from mediamesh.features.errors import MediaError
from mediamesh.features.media import MediaInfo, ffmpeg_exe, probe
from mediamesh.features.spec import feature
from mediamesh.features.values import EncodedMedia, SourceMedia

__all__ = ["encode"]


@feature(version="1", resources="cpu")
def encode(
    source: SourceMedia,
    *,
    height: int = 360,
    fps: float = 24.0,
    audio_rate: int = 16000,
) -> EncodedMedia:
    """The standardized derivative: H.264 yuv420p at `height` pixels, square pixels, upright, constant
    `fps`, mono audio at `audio_rate` Hz."""
    _check_params(height=height, fps=fps, audio_rate=audio_rate)
    name = source.name or source.path.name
    info = probe(source.path, name=name)
    workdir = Path(tempfile.mkdtemp(prefix="mediamesh-encode-"))
    try:
        out = workdir / "encode.mp4"
        _run_ffmpeg(source.path, out, info, name=name, height=height, fps=fps, audio_rate=audio_rate)
        return _verify(out, name=name, fps=fps, source_fps=info.fps)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def output_size(info: MediaInfo, height: int) -> tuple[int, int]:
    """The encode's frame size: ``height`` rows, the display aspect kept, the width rounded to even."""
    width = 2 * round(info.display_width * height / info.display_height / 2)
    return max(2, width), height


def _run_ffmpeg(
    src: Path,
    out: Path,
    info: MediaInfo,
    *,
    name: str,
    height: int,
    fps: float,
    audio_rate: int,
) -> None:
    import ffmpeg

    width, height = output_size(info, height)
    rate = Fraction(fps).limit_denominator(1001)
    inp = ffmpeg.input(str(src))
    # ffmpeg applies the display matrix itself (autorotate) before this graph, and drops it from the
    # output; the fps filter comes first so that frames it drops are never scaled.
    video = (
        inp["v:0"]
        .filter("fps", fps=f"{rate.numerator}/{rate.denominator}")
        .filter("scale", width, height)
        .filter("setsar", "1")
    )
    streams: list[Any] = [video]
    options: dict[str, Any] = {
        "vcodec": "libx264",
        "preset": "veryfast",
        "pix_fmt": "yuv420p",
        "movflags": "+faststart",
        "map_metadata": -1,
        "map_chapters": -1,
    }
    if info.has_audio:
        streams.append(inp["a:0"])
        options.update(acodec="aac", ac=1, ar=audio_rate)
    cmd = (
        ffmpeg.output(*streams, str(out), **options)
        .global_args("-nostdin", "-hide_banner", "-loglevel", "error", "-xerror")
        .overwrite_output()
    )
    done = processes.run(cmd.compile(cmd=ffmpeg_exe()))
    if done.returncode != 0:
        raise MediaError(f"ffmpeg could not encode {name!r}: {_last_line(done.stderr)}")


def _check_params(*, height: int, fps: float, audio_rate: int) -> None:
    """Reject params libx264 and the fps filter cannot honour, before any work starts."""
    if height < 2 or height % 2:
        raise ValueError(f"encode: height must be an even number >= 2, got {height}")
    if not 0 < fps <= 1000:
        raise ValueError(f"encode: fps must be in (0, 1000], got {fps}")
    if audio_rate < 1000:
        raise ValueError(f"encode: audio_rate must be at least 1000 Hz, got {audio_rate}")


def _verify(out: Path, *, name: str, fps: float, source_fps: float | None) -> EncodedMedia:
    """Read the encode back; an empty or unreadable result is an error, never a value."""
    import av
    import av.error

    try:
        with av.open(str(out)) as container:
            video = container.streams.video[0]
            frame_count = video.frames or sum(1 for p in container.demux(video) if p.size)
            duration = float(video.duration * video.time_base) if video.duration and video.time_base else 0.0
            audio = container.streams.audio[0] if container.streams.audio else None
            width, height = video.codec_context.width, video.codec_context.height
            sample_rate = audio.codec_context.sample_rate if audio is not None else None
    except (av.error.FFmpegError, IndexError) as exc:
        raise MediaError(f"ffmpeg wrote an unreadable encode of {name!r}: {exc}") from exc
    if frame_count <= 0:
        raise MediaError(f"ffmpeg wrote no video frames for {name!r}")
    return EncodedMedia(
        path=out,
        width=width,
        height=height,
        fps=fps,
        frame_count=frame_count,
        duration=duration or frame_count / fps,
        has_audio=audio is not None,
        sample_rate=sample_rate,
        source_fps=source_fps,
    )


_LOG_PREFIX = re.compile(r"^(\[[^\]]*\]\s*)+")
# ffmpeg's own bookkeeping after an error; the line before them says what went wrong.
_BOOKKEEPING = re.compile(r"^(Conversion failed!|Task finished with error|Terminating thread)")


def _last_line(stderr: bytes | None) -> str:
    """The last line of ffmpeg's stderr that says what went wrong, without its ``[tag @ 0x...]`` prefix."""
    text = (stderr or b"").decode(errors="replace")
    lines = [_LOG_PREFIX.sub("", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    telling = [line for line in lines if not _BOOKKEEPING.match(line)]
    return (telling or lines or ["no error message"])[-1]
