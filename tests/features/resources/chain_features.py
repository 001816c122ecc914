"""A small valid graph: source -> size -> doubled, source -> label; plus an imported feature to ignore."""

from mediamesh.features import SourceMedia, feature
from mediamesh.features.shots import shots as imported_feature  # noqa: F401 - must not be registered from this module


@feature(version="1")
def size(source: SourceMedia) -> int:
    """The asset's size in bytes."""
    return source.path.stat().st_size


@feature(version="2")
def doubled(size: int, *, factor: int = 2) -> int:
    return size * factor


@feature(version="1", resources="gpu")
def label(source: SourceMedia) -> str:
    return source.name or ""


def not_a_feature(x: int) -> int:
    return x
