"""Files that come with a video: subtitles and title metadata beside it, found by name.

A sidecar shares its video's stem: ``movie.srt``, ``movie.en.vtt`` and ``movie.json`` go with ``movie.mp4``.
Matching works on names alone (a file's path or an object's ``s3://bucket/key``), so a folder and a
landing bucket follow one rule.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from mediamesh.features.errors import InputFileError
from mediamesh.features.values import TitleMetadata

__all__ = [
    "SIDECAR_SUFFIXES",
    "SUBTITLE_SUFFIXES",
    "TITLE_SUFFIX",
    "is_sidecar",
    "parse_title_sidecar",
    "sidecar_stems",
    "subtitle_language",
    "subtitle_sidecars",
    "title_sidecar",
]

SUBTITLE_SUFFIXES = (".srt", ".vtt")
TITLE_SUFFIX = ".json"
#: Names with these suffixes describe a video; they are attached to it, never assets of their own.
SIDECAR_SUFFIXES = (*SUBTITLE_SUFFIXES, TITLE_SUFFIX)
# A BCP 47-ish language tag between the stem and the suffix: movie.en.srt, movie.pt-BR.vtt, movie.eng.srt.
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?$")


def is_sidecar(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in SIDECAR_SUFFIXES


def subtitle_sidecars(video: str, siblings: Iterable[str]) -> list[tuple[str, str | None]]:
    """The subtitle names among ``siblings`` that go with ``video``, with their languages, in name order."""
    path = PurePosixPath(video)
    found: list[tuple[str, str | None]] = []
    for name in sorted(siblings):
        candidate = PurePosixPath(name)
        if candidate.parent != path.parent or candidate.suffix.lower() not in SUBTITLE_SUFFIXES:
            continue
        if candidate.stem == path.stem:
            found.append((name, None))
        elif candidate.stem.startswith(path.stem + "."):
            tag = candidate.stem[len(path.stem) + 1 :]
            if _LANGUAGE.match(tag):
                found.append((name, tag.replace("_", "-")))
    return found


def title_sidecar(video: str, siblings: Iterable[str]) -> str | None:
    """The title metadata name among ``siblings`` that goes with ``video`` (``movie.json``), if any."""
    wanted = PurePosixPath(video).with_suffix(TITLE_SUFFIX)  # a path, not text: PurePosixPath folds s3:// to s3:/
    return next((name for name in siblings if PurePosixPath(name) == wanted), None)


def sidecar_stems(sidecar: str) -> list[str]:
    """The stems a video must have for ``sidecar`` to go with it (``movie.en.srt``: ``movie.en``, ``movie``)."""
    path = PurePosixPath(sidecar)
    stems = [path.stem]
    if path.suffix.lower() in SUBTITLE_SUFFIXES and subtitle_language(Path(path.name)) is not None:
        stems.append(path.stem.rsplit(".", 1)[0])
    return stems


def subtitle_language(path: Path) -> str | None:
    """The language tag in a subtitle file's name (``film.en.srt`` -> ``en``), or None."""
    parts = path.name.split(".")
    if len(parts) >= 3 and _LANGUAGE.match(parts[-2]):
        return parts[-2].replace("_", "-")
    return None


def parse_title_sidecar(path: Path, name: str) -> TitleMetadata:
    """Title metadata from the JSON file ``path`` (keys ``title``, ``synopsis``, ``tags``); errors say ``name``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputFileError(f"cannot read title metadata {name!r}: {exc}") from exc
    if not isinstance(data, dict):
        raise InputFileError(f"title metadata {name!r} must be a JSON object with title, synopsis and tags")
    unknown = set(data) - {"title", "synopsis", "tags"}
    if unknown:
        raise InputFileError(f"title metadata {name!r} has unknown keys {sorted(unknown)}")
    tags = data.get("tags")
    if tags is not None and not (isinstance(tags, str) or all(isinstance(t, str) for t in tags)):
        raise InputFileError(f"title metadata {name!r}: tags must be a list of strings")
    for key in ("title", "synopsis"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise InputFileError(f"title metadata {name!r}: {key} must be a string")
    return TitleMetadata.from_json(data)
