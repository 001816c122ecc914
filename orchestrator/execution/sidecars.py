"""Files that come with a video at ingest: subtitle sidecars next to it, or named on the command line."""

from __future__ import annotations

import json
import re
from pathlib import Path

from mediamesh.features.errors import InputFileError
from mediamesh.features.values import TitleMetadata

__all__ = ["SUBTITLE_SUFFIXES", "find_subtitle_sidecars", "read_title_sidecar", "subtitle_language"]

SUBTITLE_SUFFIXES = (".srt", ".vtt")
# A BCP 47-ish language tag between the stem and the suffix: movie.en.srt, movie.pt-BR.vtt, movie.eng.srt.
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?$")


def find_subtitle_sidecars(video: Path) -> list[tuple[Path, str | None]]:
    """Subtitle files beside ``video`` with the same stem (``movie.srt``, ``movie.en.vtt``), with languages."""
    found: list[tuple[Path, str | None]] = []
    try:
        candidates = sorted(video.parent.iterdir())
    except OSError:
        return found
    for path in candidates:
        if path.suffix.lower() not in SUBTITLE_SUFFIXES or not path.is_file():
            continue
        if path.stem == video.stem:
            found.append((path, None))
        elif path.stem.startswith(video.stem + "."):
            tag = path.stem[len(video.stem) + 1 :]
            if _LANGUAGE.match(tag):
                found.append((path, tag.replace("_", "-")))
    return found


def subtitle_language(path: Path) -> str | None:
    """The language tag in a subtitle file's name (``film.en.srt`` -> ``en``), or None."""
    parts = path.name.split(".")
    if len(parts) >= 3 and _LANGUAGE.match(parts[-2]):
        return parts[-2].replace("_", "-")
    return None


def read_title_sidecar(video: Path) -> TitleMetadata | None:
    """Title metadata from ``movie.json`` beside ``movie.mp4`` (keys ``title``, ``synopsis``, ``tags``), if any.

    A sidecar that is not a JSON object with those keys is an error naming the file.
    """
    path = video.with_suffix(".json")
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputFileError(f"cannot read title metadata {path.name!r}: {exc}") from exc
    if not isinstance(data, dict):
        raise InputFileError(f"title metadata {path.name!r} must be a JSON object with title, synopsis and tags")
    unknown = set(data) - {"title", "synopsis", "tags"}
    if unknown:
        raise InputFileError(f"title metadata {path.name!r} has unknown keys {sorted(unknown)}")
    tags = data.get("tags")
    if tags is not None and not (isinstance(tags, str) or all(isinstance(t, str) for t in tags)):
        raise InputFileError(f"title metadata {path.name!r}: tags must be a list of strings")
    for key in ("title", "synopsis"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise InputFileError(f"title metadata {path.name!r}: {key} must be a string")
    return TitleMetadata.from_json(data)
