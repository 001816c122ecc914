"""Cheap features for engine tests. ``CALLS`` counts real calls per (feature, asset); tests reset it."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Self

from mediamesh.features import JsonValue, MediaError, SourceMedia, Subtitles, TitleMetadata, TransientError, feature

CALLS: Counter[tuple[str, str]] = Counter()
_lock = threading.Lock()


@dataclass(frozen=True)
class Number(JsonValue):
    value: int

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(int(data["value"]))


def _count(name: str, asset: str) -> int:
    with _lock:
        CALLS[(name, asset)] += 1
        return CALLS[(name, asset)]


@feature(version="1")
def size(source: SourceMedia) -> Number:
    """The asset's size in bytes; bytes starting with b'bad' cannot be decoded."""
    _count("size", source.asset)
    data = source.path.read_bytes()
    if data.startswith(b"bad"):
        raise MediaError(f"cannot decode {source.name!r}: invalid data")
    time.sleep(0.2)  # long enough for a concurrent run to collide with this one
    return Number(len(data))


@feature(version="1")
def doubled(size: Number, *, factor: int = 2) -> Number:
    """Twice the size."""
    _count("doubled", "")
    return Number(size.value * factor)


@feature(version="1")
def flaky(source: SourceMedia) -> Number:
    """Fails twice with a retryable error, then works."""
    if _count("flaky", source.asset) <= 2:
        raise TransientError("object store briefly unavailable")
    return Number(1)


@feature(version="1")
def buggy(source: SourceMedia) -> Number:
    """A bug in feature code: not one of ours, so it is wrapped and not retried."""
    _count("buggy", source.asset)
    raise ZeroDivisionError("division by zero")


@feature(version="1")
def subtitle_files(subtitles: Subtitles) -> Number:
    """How many subtitle files are attached."""
    return Number(len(subtitles.tracks))


@feature(version="1")
def synopsis_length(title: TitleMetadata) -> Number:
    """How long the synopsis is."""
    return Number(len(title.synopsis or ""))
