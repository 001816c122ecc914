"""A graph with a media gate: a cheap ``encode``, a feature that reads it, and features that do not read
the media (``blurb`` sorts before the gate, so the registry's order puts it first)."""

from __future__ import annotations

from mediamesh.features import MediaError, Registry, SourceMedia, TitleMetadata, feature
from tests.orchestrator.resources import counting_features as cf


@feature(version="1")
def encode(source: SourceMedia) -> cf.Number:
    """Stands in for the standardized encode: the asset's size; bytes starting with b'bad' cannot be decoded."""
    data = source.path.read_bytes()
    if data.startswith(b"bad"):
        raise MediaError(f"cannot decode {source.name!r}: invalid data")
    return cf.Number(len(data))


@feature(version="1")
def halved(encode: cf.Number) -> cf.Number:
    """Half the size."""
    return cf.Number(encode.value // 2)


@feature(version="1")
def blurb(title: TitleMetadata) -> cf.Number:
    """How many words the title has."""
    return cf.Number(len((title.title or "").split()))


def registry() -> Registry:
    return Registry([encode, halved, blurb, cf.synopsis_length, cf.subtitle_files])
