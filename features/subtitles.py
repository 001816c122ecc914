"""Reading subtitles: sidecar files (SRT, WebVTT, ASS/SSA) and text subtitle streams inside a container.

Every reader returns :class:`~features.values.Cue` objects with plain text (styling, tags and line
breaks removed), times in seconds, sorted by start. A file that is empty or only whitespace, and a
track with no events (a WebVTT header alone, an ASS script whose ``[Events]`` are empty), give no cues;
a file that is not subtitles, or whose timings are broken (a time below 0, an end not after its start),
raises :class:`SubtitleError`.
"""

from __future__ import annotations

import codecs
import functools
import html
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

from mediamesh.features import processes
from mediamesh.features.errors import InputFileError, MediaError
from mediamesh.features.media import ffmpeg_exe
from mediamesh.features.values import Cue

if TYPE_CHECKING:
    from pysubs2.formats import FormatBase

__all__ = [
    "SubtitleError",
    "clean_text",
    "embedded_text_streams",
    "parse_subtitles",
    "read_embedded_stream",
    "read_subtitle_text",
]


class SubtitleError(MediaError):
    """A subtitle file or stream is not subtitles, or is malformed; the same bytes will fail again."""


def read_subtitle_text(path: Path, name: str) -> str:
    """The text of subtitle file ``path`` (called ``name`` in errors), decoded.

    UTF-8 (with or without BOM) and UTF-16/32 with BOM are read as such; anything else is decoded with
    charset-normalizer's best guess, else cp1252, else Latin-1. Binary data raises :class:`SubtitleError`.
    """
    data = _read_bytes(path, name)
    text = _decode(data)
    if _looks_binary(text):
        raise SubtitleError(f"cannot parse subtitles {name!r}: not a text file")
    return text


def parse_subtitles(path: Path, name: str) -> list[Cue]:
    """The cues of subtitle file ``path`` (SRT, WebVTT or ASS/SSA, told apart by content; the
    extension of ``name`` breaks ties), as plain text sorted by start."""
    return _parse_text(read_subtitle_text(path, name), what=repr(name), hint=_EXTENSION_FORMATS.get(_suffix(name)))


def embedded_text_streams(path: Path, *, name: str | None = None) -> list[tuple[int, str | None, str]]:
    """``(stream index, language, codec)`` of each text subtitle stream in container ``path`` (called
    ``name`` in errors, default its file name), in stream order; bitmap subtitles (DVD, PGS, DVB) are
    left out."""
    streams = _streams(path, name or path.name)
    return [(index, language, codec) for index, kind, language, codec in streams if kind == "text"]


def read_embedded_stream(path: Path, index: int, name: str) -> list[Cue]:
    """The cues of text subtitle stream ``index`` of container ``path`` (called ``name`` in errors),
    converted to SRT by ffmpeg and parsed as a sidecar would be.

    ASS/SSA streams are converted to ASS instead, because ffmpeg's SRT encoder keeps an ASS drawing's
    vector commands as text; other codecs go through SRT for its millisecond timing (ASS has centiseconds).
    """
    import ffmpeg

    what = f"stream {index} of {name!r}"
    found = {i: (kind, codec) for i, kind, _, codec in _streams(path, name)}
    if index not in found:
        raise SubtitleError(f"cannot read subtitle {what}: no such stream (the file has {len(found)})")
    kind, codec = found[index]
    if kind != "text":
        raise SubtitleError(f"cannot read subtitle {what}: it is a {kind} stream ({codec}), not text subtitles")
    fmt = "ass" if codec in ("ass", "ssa") else "srt"
    cmd = (
        ffmpeg.input(str(path))
        .output("pipe:1", map=f"0:{index}", f=fmt, **{"c:s": fmt})
        .global_args("-nostdin", "-hide_banner", "-loglevel", "error")
    )
    done = processes.run(cmd.compile(cmd=ffmpeg_exe()))
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        raise SubtitleError(f"cannot read subtitle {what}: ffmpeg: {lines[-1] if lines else 'no message'}")
    # ffmpeg's SRT and ASS muxers always write UTF-8.
    return _parse_text(done.stdout.decode("utf-8", errors="replace"), what=what, hint=fmt)


def _streams(path: Path, name: str) -> list[tuple[int, str, str | None, str]]:
    """``(index, kind, language, codec)`` of every stream of ``path``; ``kind`` is the stream type, or
    ``"text"``/``"bitmap"`` for subtitles."""
    import av
    import av.error

    if not path.is_file():
        raise InputFileError(f"{name!r} does not exist ({path})")
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            found: list[tuple[int, str, str | None, str]] = []
            for stream in container.streams:
                codec = stream.codec_context.codec if stream.codec_context is not None else None
                kind: str = stream.type
                if kind == "subtitle":
                    kind = "text" if codec is not None and codec.text_sub else "bitmap"
                language = stream.language or stream.metadata.get("language")
                found.append(
                    (
                        stream.index,
                        kind,
                        None if language in (None, "", "und") else language,
                        codec.canonical_name if codec is not None else "unknown",
                    )
                )
            return found
    except av.error.FFmpegError as exc:
        raise MediaError(f"cannot read the streams of {name!r}: {_reason(exc)}") from exc


_EXTENSION_FORMATS = {".srt": "srt", ".vtt": "vtt", ".webvtt": "vtt", ".ass": "ass", ".ssa": "ssa"}
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Short Western European texts score alike under every Latin code page, and charset-normalizer's first
# pick among equals is often cp1250 (ñ -> ń); cp1252 is by far the commonest legacy subtitle encoding.
_WESTERN = {"cp1252", "latin_1", "iso8859_15"}


def _read_bytes(path: Path, name: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputFileError(f"subtitle file {name!r} does not exist ({path})") from None
    except OSError as exc:
        raise InputFileError(f"cannot read subtitle file {name!r}: {_one_line(exc.strerror or str(exc))}") from exc


def _decode(data: bytes) -> str:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                break
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    import charset_normalizer

    matches = charset_normalizer.from_bytes(data)
    best = matches.best()
    if best is not None:
        tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
        return str(next((m for m in tied if m.encoding in _WESTERN), best))
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


# C0 and C1 control characters other than tab, line feed, vertical tab, form feed and carriage return.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")


def _looks_binary(text: str) -> bool:
    """True when the text holds a NUL, or control characters make up more than 1% of it."""
    return "\x00" in text or len(_CONTROL.findall(text)) * 100 > len(text)


def _parse_text(text: str, *, what: str, hint: str | None) -> list[Cue]:
    import pysubs2

    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        return []
    fmt, recognised = _detect_format(text, hint)
    if fmt is None:
        raise SubtitleError(f"cannot parse subtitles {what}: no cue found (not SRT, WebVTT or ASS/SSA)")
    if fmt in ("srt", "vtt"):
        _check_timing_lines(text, fmt, what)
    if fmt == "vtt":
        text = _vtt_cue_blocks(text)
    try:
        events = pysubs2.SSAFile.from_string(text, format_=fmt).events
    except (pysubs2.Pysubs2Error, ValueError) as exc:
        raise SubtitleError(f"cannot parse subtitles {what}: {_reason(exc)}") from exc
    dialogue = [event for event in events if not event.is_comment]
    if not dialogue and not recognised:
        raise SubtitleError(f"cannot parse subtitles {what}: no cue found")
    cues: list[Cue] = []
    for number, event in enumerate(dialogue, 1):
        # SRT and WebVTT times were checked with their signs, which pysubs2 drops, by _check_timing_lines.
        _check_cue_times(number, event.start / 1000, event.end / 1000, what)
        plain = clean_text(event.text)
        if plain:
            cues.append(Cue(start=event.start / 1000, end=event.end / 1000, text=plain))
    return sorted(cues, key=lambda cue: cue.start)


def _detect_format(text: str, hint: str | None) -> tuple[str | None, bool]:
    """The format the content says, else the extension's when the content says several or none; and
    whether the content says it (a file only the extension calls subtitles must hold a cue)."""
    guesses: set[str] = {guess for cls in _format_classes() if (guess := cls.guess_format(text)) is not None}
    if len(guesses) == 1:
        return guesses.pop(), True
    if hint is not None and (hint in guesses or not guesses):
        return hint, bool(guesses)
    return (min(guesses), True) if guesses else (None, False)


@functools.cache
def _format_classes() -> tuple[type[FormatBase], ...]:
    from pysubs2.formats import SubripFormat, SubstationFormat, WebVTTFormat

    return (SubripFormat, WebVTTFormat, SubstationFormat)


_TIMING_CANDIDATE = re.compile(r"^\s*-?\d.*-->")


def _check_timing_lines(text: str, fmt: str, what: str) -> None:
    """Every line that looks like a timing line must hold two timestamps (pysubs2 would otherwise read
    a broken one as text of the cue before it), and give valid cue times read with their signs (pysubs2
    reads ``-00:00:01,000`` as one second)."""
    from pysubs2.formats import SubripFormat, WebVTTFormat

    timestamp = WebVTTFormat.TIMESTAMP if fmt == "vtt" else SubripFormat.TIMESTAMP
    signed = re.compile(rf"(-?){timestamp.pattern}")
    cue = 0
    for number, line in enumerate(text.split("\n"), 1):
        if not _TIMING_CANDIDATE.match(line):
            continue
        stamps = signed.findall(line)
        if len(stamps) != 2:
            shown = line.strip()
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise SubtitleError(f"cannot parse subtitles {what}: malformed timing on line {number}: {shown!r}")
        cue += 1
        start, end = (_signed_seconds(sign, groups) for sign, *groups in stamps)
        _check_cue_times(cue, start, end, what)


def _signed_seconds(sign: str, groups: list[str]) -> float:
    """Seconds of the groups of an SRT (h, m, s, fraction) or WebVTT ("h:" or "", m, s, fraction) timestamp."""
    hours, minutes, secs, fraction = groups
    whole = int(hours.rstrip(":") or 0) * 3600 + int(minutes) * 60 + int(secs)
    seconds = whole + int(fraction) / 10.0 ** len(fraction)
    return -seconds if sign else seconds


def _check_cue_times(number: int, start: float, end: float, what: str) -> None:
    """A cue's times must be finite and not below 0, and it must end after it starts."""
    if not (math.isfinite(start) and math.isfinite(end)):
        problem = f"has a time that is not a number (start {start} s, end {end} s)"
    elif end < start:
        problem = f"ends ({end:.3f} s) before it starts ({start:.3f} s)"
    elif end == start:
        problem = f"ends when it starts ({start:.3f} s)"
    elif start < 0:
        problem = f"starts before 0 ({start:.3f} s, ending at {end:.3f} s)"
    else:
        return
    raise SubtitleError(f"cannot parse subtitles {what}: cue {number} {problem}")


def _vtt_cue_blocks(text: str) -> str:
    """The WebVTT cue blocks alone, without their identifiers: NOTE, STYLE and REGION blocks and cue
    ids would otherwise end up in the text of the cue before them."""
    blocks: list[str] = []
    for block in re.split(r"\n[ \t]*\n", text):
        lines = block.split("\n")
        timing = next((i for i, line in enumerate(lines) if "-->" in line), None)
        if timing is not None:
            blocks.append("\n".join(lines[timing:]))
    return "WEBVTT\n\n" + "\n\n".join(blocks) + "\n"


_OVERRIDE_BLOCK = re.compile(r"(\{[^{}]*\})")
_DRAWING = re.compile(r"\\p(\d+)")
_MARKUP_TAG = re.compile(r"</?[A-Za-z][^<>]*>|<\d[\d:.]*>")


def clean_text(text: str) -> str:
    """Plain text of a cue: ASS override blocks and drawings, HTML/WebVTT tags and line breaks removed,
    entities decoded, whitespace collapsed."""
    parts: list[str] = []
    drawing = False
    for part in _OVERRIDE_BLOCK.split(text):
        if part.startswith("{") and part.endswith("}"):
            for scale in _DRAWING.findall(part):
                drawing = int(scale) > 0
        elif not drawing:
            parts.append(part)
    plain = "".join(parts).replace("\\N", " ").replace("\\n", " ").replace("\\h", " ")
    plain = html.unescape(_MARKUP_TAG.sub("", plain))
    return " ".join(plain.split())


def _suffix(name: str) -> str:
    return Path(name).suffix.lower()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _reason(exc: BaseException) -> str:
    text = _one_line(str(exc)) or type(exc).__name__
    return text[:1].lower() + text[1:]
