"""The title's timed text: one subtitle track, and per shot the cues shown during it."""

from __future__ import annotations

from bisect import bisect_left

from mediamesh.features.spec import feature
from mediamesh.features.subtitles import embedded_text_streams, parse_subtitles, read_embedded_stream
from mediamesh.features.values import Cue, ShotTable, SourceMedia, Subtitles, SubtitleTrack, TimedText

__all__ = ["cues_per_shot", "language_matches", "timed_text"]


@feature(version="1", resources="cpu")
def timed_text(source: SourceMedia, subtitles: Subtitles, shots: ShotTable, *, language: str = "en") -> TimedText:
    """The title's timed text (a sidecar or attached subtitle file, else a text subtitle stream in the
    container), with the cues overlapping each shot.

    An attached track always wins over the container's streams; among each, the first whose language
    matches ``language`` ("en" matches "en-US" and "eng"), else the first. A broken chosen track is an
    error, never a silent fall back to another.
    """
    if subtitles.tracks:
        track = _choose_track(subtitles.tracks, language)
        cues = parse_subtitles(track.path, track.name)
        origin, chosen_language = f"sidecar:{track.name}", track.language
    else:
        name = source.name or source.path.name
        streams = embedded_text_streams(source.path, name=name)
        if not streams:
            return TimedText(cues=(), per_shot=tuple(() for _ in shots.shots), origin="none")
        index, chosen_language, _ = next((s for s in streams if language_matches(s[1], language)), streams[0])
        cues = read_embedded_stream(source.path, index, name)
        origin = f"stream:{index}"
    return TimedText(
        cues=tuple(cues),
        per_shot=cues_per_shot(cues, shots),
        origin=origin,
        language=chosen_language,
    )


def _choose_track(tracks: tuple[SubtitleTrack, ...], language: str) -> SubtitleTrack:
    return next((t for t in tracks if language_matches(t.language, language)), tracks[0])


def cues_per_shot(cues: list[Cue], shots: ShotTable) -> tuple[tuple[int, ...], ...]:
    """For each shot, the indices of the cues (sorted by start) overlapping its ``[start_time, end_time)``."""
    starts = [cue.start for cue in cues]
    # No cue starting more than the longest cue's duration before a shot can reach into it.
    longest = max((cue.end - cue.start for cue in cues), default=0.0)
    per_shot: list[tuple[int, ...]] = []
    for shot in shots.shots:
        first = bisect_left(starts, shot.start_time - longest - 1e-6)
        last = bisect_left(starts, shot.end_time)
        per_shot.append(tuple(i for i in range(first, last) if cues[i].end > shot.start_time))
    return tuple(per_shot)


def language_matches(tag: str | None, wanted: str) -> bool:
    """True when language tag ``tag`` is ``wanted`` or a more specific form of it, case-insensitively:
    "en" matches "en", "EN-us", "en_GB" and the ISO 639-2 "eng"."""
    if tag is None:
        return False
    have, want = _subtags(tag), _subtags(wanted)
    return have[: len(want)] == want


def _subtags(tag: str) -> list[str]:
    primary, *rest = tag.strip().lower().replace("_", "-").split("-")
    return [_ISO639_2.get(primary, primary), *rest]


# ISO 639-2 (bibliographic and terminology) codes that containers use -> the ISO 639-1 codes people type.
_ISO639_2 = {
    "afr": "af", "ara": "ar", "baq": "eu", "ben": "bn", "bul": "bg", "cat": "ca", "ces": "cs", "chi": "zh",
    "cym": "cy", "cze": "cs", "dan": "da", "deu": "de", "dut": "nl", "ell": "el", "eng": "en", "est": "et",
    "eus": "eu", "fas": "fa", "fin": "fi", "fra": "fr", "fre": "fr", "ger": "de", "gle": "ga", "glg": "gl",
    "gre": "el", "guj": "gu", "heb": "he", "hin": "hi", "hrv": "hr", "hun": "hu", "ice": "is", "ind": "id",
    "isl": "is", "ita": "it", "jpn": "ja", "kan": "kn", "kor": "ko", "lav": "lv", "lit": "lt", "mal": "ml",
    "mar": "mr", "may": "ms", "msa": "ms", "nld": "nl", "nno": "nn", "nob": "nb", "nor": "no", "pan": "pa",
    "per": "fa", "pol": "pl", "por": "pt", "ron": "ro", "rum": "ro", "rus": "ru", "slk": "sk", "slo": "sk",
    "slv": "sl", "spa": "es", "srp": "sr", "swa": "sw", "swe": "sv", "tam": "ta", "tel": "te", "tgl": "tl",
    "tha": "th", "tur": "tr", "ukr": "uk", "urd": "ur", "vie": "vi", "wel": "cy", "zho": "zh",
}  # fmt: skip
