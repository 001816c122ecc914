"""Probing media files with PyAV, and finding the ffmpeg binary the media features run."""

from __future__ import annotations

import functools
import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from mediamesh.features.errors import InputFileError, MediaError

if TYPE_CHECKING:
    import av
    import av.error

__all__ = ["MediaInfo", "ffmpeg_exe", "probe"]


@dataclass(frozen=True)
class MediaInfo:
    """What a media file holds, as a player would show it.

    ``width``/``height`` are the stored frame size; ``display_width``/``display_height`` the size shown,
    after the sample aspect ratio and the rotation are applied. ``rotation`` is the counterclockwise
    angle in degrees of the container's display matrix, as ffprobe reports it (-90: shown turned a
    quarter clockwise); ffmpeg applies it when it decodes (autorotate).
    """

    width: int
    height: int
    sample_aspect_ratio: Fraction
    display_width: int
    display_height: int
    rotation: int
    fps: float
    duration: float
    has_audio: bool
    video_codec: str


def probe(path: Path, *, name: str | None = None) -> MediaInfo:
    """Probe ``path``, decoding its first video frame (where the display matrix lives).

    Errors name the file as ``name`` (default: the file's name): a missing, empty or unreadable file
    raises :class:`InputFileError`; a file that is not a video (a still image, audio only), is truncated
    or cannot be decoded raises :class:`MediaError`. Messages are one line.
    """
    import av
    import av.error

    label = name or path.name
    _check_readable(path, label)
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if _is_image_format(container.format.name):
                raise MediaError(f"{label!r} is a still image, not a video")
            video = _first_video_stream(container, label)
            frames = container.decode(video)
            frame = _first_frame(frames, label)
            if video.codec_context.name in _IMAGE_CODECS and next(frames, None) is None:
                raise MediaError(f"{label!r} is a still image, not a video")
            has_audio = any(s.type == "audio" for s in container.streams)
            duration = _duration(container, video)
            fps = _fps(video)
            codec = video.codec_context.name
            stored_sar = video.sample_aspect_ratio or video.codec_context.sample_aspect_ratio
    except av.error.FFmpegError as exc:
        raise _decode_error(exc, label) from exc

    sar = _sample_aspect_ratio(stored_sar)
    rotation = _normalised_rotation(frame.rotation)
    display_width = max(1, round(frame.width * sar))
    display_height = frame.height
    if rotation % 180:
        display_width, display_height = display_height, display_width
    return MediaInfo(
        width=frame.width,
        height=frame.height,
        sample_aspect_ratio=sar,
        display_width=display_width,
        display_height=display_height,
        rotation=rotation,
        fps=fps,
        duration=duration,
        has_audio=has_audio,
        video_codec=codec,
    )


@functools.cache
def ffmpeg_exe() -> str:
    """The ffmpeg on PATH, else the binary bundled with ``imageio-ffmpeg``."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def _sample_aspect_ratio(sar: Fraction | None) -> Fraction:
    """The sample aspect ratio, 1:1 where the stream leaves it unset (0/1) or absurd."""
    if not sar or sar <= 0 or not 0.1 <= sar <= 10:
        return Fraction(1)
    return sar


def _check_readable(path: Path, label: str) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputFileError(f"{label!r} does not exist ({path})") from None
    except OSError as exc:
        raise InputFileError(f"cannot read {label!r}: {_reason(exc)}") from exc
    if not path.is_file():
        raise InputFileError(f"{label!r} is not a regular file ({path})")
    if size == 0:
        raise InputFileError(f"{label!r} is empty (0 bytes)")
    try:
        with path.open("rb") as f:
            f.read(1)
    except OSError as exc:
        raise InputFileError(f"cannot read {label!r}: {_reason(exc)}") from exc


def _first_video_stream(container: av.container.InputContainer, label: str) -> av.VideoStream:
    import av

    for stream in container.streams.video:
        # Cover art in audio files is a one-picture "video" stream; it is not a video.
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise MediaError(f"{label!r} has no video stream")


def _first_frame(frames: Iterator[av.VideoFrame], label: str) -> av.VideoFrame:
    frame = next(frames, None)
    if frame is None:
        raise MediaError(f"cannot decode {label!r}: no video frame could be decoded")
    return frame


# Demuxers that read one picture per file (ffmpeg's ``*_pipe`` image demuxers, ``image2``, ``ico``).
_IMAGE_FORMATS = frozenset({"image2", "image2pipe", "ico"})
# Codecs of pictures. A stream of one of them holding a single frame is a picture in a video container
# (a PNG in Matroska); with more frames it is a video (MJPEG in AVI or MOV, an animated GIF).
_IMAGE_CODECS = frozenset(
    {
        "apng", "bmp", "dds", "dpx", "exr", "gif", "hdr", "jpeg2000", "jpegls", "jpegxl", "ljpeg", "mjpeg",
        "pam", "pbm", "pcx", "pgm", "pgmyuv", "photocd", "pictor", "png", "ppm", "psd", "qoi", "sgi",
        "sunrast", "svg", "targa", "tiff", "webp", "xbm", "xpm", "xwd",
    }
)  # fmt: skip


def _is_image_format(format_name: str) -> bool:
    return any(n.endswith("_pipe") or n in _IMAGE_FORMATS for n in format_name.split(","))


def _duration(container: av.container.InputContainer, video: av.VideoStream) -> float:
    import av

    if video.duration is not None and video.time_base is not None:
        return float(video.duration * video.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0


def _fps(video: av.VideoStream) -> float:
    rate = video.average_rate or video.guessed_rate or video.base_rate
    return float(rate) if rate else 0.0


def _normalised_rotation(degrees: float) -> int:
    """A multiple of 90 in (-180, 180]; other angles are rounded to the nearest quarter turn."""
    quarter = round(degrees / 90) % 4 if math.isfinite(degrees) else 0
    return {0: 0, 1: 90, 2: 180, 3: -90}[quarter]


def _decode_error(exc: av.error.FFmpegError, label: str) -> InputFileError | MediaError:
    reason = _reason(exc)
    if isinstance(exc, OSError):
        return InputFileError(f"cannot read {label!r}: {reason}")
    return MediaError(f"cannot decode {label!r}: {reason}")


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    text = " ".join(str(text).split())
    return text[:1].lower() + text[1:]
