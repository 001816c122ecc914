"""Search indexes, declared next to the features they project: which feature's values, into which kind of rows.

An index is never a second source of truth. Its rows are a projection of stored values, written in the same
transaction as the value (so a crash leaves both or neither) and rebuildable from the values at any time
(``mediamesh index rebuild``). Rows are kept per ``feature@version``, so a backfilled version is indexed beside
the one readers use, and ``promote`` switches searchers when it switches readers.

Three kinds:

- ``vector``: one unit vector per shot (an embedding); searched by cosine distance (pgvector HNSW);
- ``text``: timed-text cues with their times, shot and language; searched by full-text search;
- ``time``: one ``[start, end)`` per shot; searched by time range.

A projection is a plain function of the value (nothing here touches a database). Rows for shots whose vector
is all zeros (a shot without text, say) are left out: they match nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from mediamesh.features.errors import DefinitionError
from mediamesh.features.values import BoundaryRows, ShotEmbeddings, ShotTable, TimedText

__all__ = [
    "BUILT_IN_INDEXES",
    "IndexKind",
    "IndexSpec",
    "TextRow",
    "TimeRow",
    "VectorRow",
    "index",
    "indexes_by_name",
    "project",
]

IndexKind = Literal["vector", "text", "time"]


@dataclass(frozen=True)
class VectorRow:
    """Shot ``shot``'s vector (and, for dialogue, the language of the text it encodes)."""

    shot: int
    vector: np.ndarray[Any, Any]
    language: str | None = None


@dataclass(frozen=True)
class TextRow:
    """Cue ``cue`` (its text, shown over ``[start, end)`` seconds), in shot ``shot``."""

    shot: int
    cue: int
    start: float
    end: float
    text: str
    language: str | None


@dataclass(frozen=True)
class TimeRow:
    """Shot ``shot`` covers ``[start, end)`` seconds."""

    shot: int
    start: float
    end: float


Row = VectorRow | TextRow | TimeRow


@dataclass(frozen=True)
class IndexSpec:
    """An index: its ``name``, the ``feature`` whose values it projects, its ``kind`` and the projection."""

    name: str
    feature: str
    kind: IndexKind
    rows: Callable[[Any], list[Any]]
    doc: str = ""


def index(*, name: str, feature: str, kind: IndexKind) -> Callable[[Callable[[Any], list[Any]]], IndexSpec]:
    """Declare an index: ``@index(name="video", feature="video_embedding", kind="vector")`` over a function
    that turns one stored value into its rows."""
    if kind not in ("vector", "text", "time"):
        raise DefinitionError(f"index {name!r}: kind must be 'vector', 'text' or 'time', got {kind!r}")
    if not name.isidentifier():
        raise DefinitionError(f"index {name!r}: a name is letters, digits and underscores")

    def declare(fn: Callable[[Any], list[Any]]) -> IndexSpec:
        return IndexSpec(name=name, feature=feature, kind=kind, rows=fn, doc=(fn.__doc__ or "").strip())

    return declare


def project(spec: IndexSpec, value: Any) -> list[Any]:
    """The rows of ``value`` in ``spec``, checked to be of the index's kind."""
    rows = spec.rows(value)
    wanted = {"vector": VectorRow, "text": TextRow, "time": TimeRow}[spec.kind]
    for row in rows:
        if not isinstance(row, wanted):
            raise DefinitionError(
                f"index {spec.name!r} made a {type(row).__name__}; a {spec.kind} index makes {wanted.__name__}s"
            )
    return rows


def _shot_vectors(value: ShotEmbeddings, language: str | None = None) -> list[VectorRow]:
    data = np.asarray(value.data, np.float32)
    return [VectorRow(shot, row, language) for shot, row in enumerate(data) if np.any(row)]


@index(name="video", feature="video_embedding", kind="vector")
def video(value: ShotEmbeddings) -> list[VectorRow]:
    """The video embedding of each shot: visual and reverse-shot (image) search."""
    return _shot_vectors(value)


@index(name="fused", feature="fused", kind="vector")
def fused(value: ShotEmbeddings) -> list[VectorRow]:
    """The fused (video, audio, text) vector of each shot: similar shots."""
    return _shot_vectors(value)


@index(name="contextual", feature="contextual", kind="vector")
def contextual(value: ShotEmbeddings) -> list[VectorRow]:
    """MediaFM's contextual embedding of each shot: similar shots in their context."""
    return _shot_vectors(value)


@index(name="dialogue_semantic", feature="text_embedding", kind="vector")
def dialogue_semantic(value: ShotEmbeddings) -> list[VectorRow]:
    """The sentence embedding of each shot's dialogue: dialogue search by meaning (shots without text left out)."""
    return _shot_vectors(value, value.meta.get("language"))


@index(name="dialogue", feature="timed_text", kind="text")
def dialogue(value: TimedText) -> list[TextRow]:
    """Every cue, with its times, language and the first shot it overlaps: dialogue search by words."""
    first_shot: dict[int, int] = {}
    for shot, cues in enumerate(value.per_shot):
        for cue in cues:
            first_shot.setdefault(cue, shot)
    return [
        TextRow(first_shot[i], i, cue.start, cue.end, cue.text, value.language)
        for i, cue in enumerate(value.cues)
        if i in first_shot and cue.text.strip()
    ]


@index(name="shots", feature="shots", kind="time")
def shots(value: ShotTable) -> list[TimeRow]:
    """Each shot's ``[start, end)``: what happens between two times, and every other index's shot times."""
    return [TimeRow(shot.index, shot.start_time, shot.end_time) for shot in value.shots]


def _boundaries(value: BoundaryRows, side: int) -> list[VectorRow]:
    """One row per unique shot (``meta["groups"]``: a repeat is its representative's shot) that is not zeros."""
    groups = value.meta.get("groups")
    data = np.asarray(value.data[:, side], np.float32)
    return [
        VectorRow(shot, row)
        for shot, row in enumerate(data)
        if np.any(row) and (groups is None or groups[shot] == shot)
    ]


@index(name="frame_ends", feature="frame_match", kind="vector")
def frame_ends(value: BoundaryRows) -> list[VectorRow]:
    """How each shot ends (its last frame's row): the a side of a frame match cut across titles."""
    return _boundaries(value, 0)


@index(name="frame_starts", feature="frame_match", kind="vector")
def frame_starts(value: BoundaryRows) -> list[VectorRow]:
    """How each shot begins (its first frame's row): the b side of a frame match cut across titles."""
    return _boundaries(value, 1)


@index(name="motion_ends", feature="motion_match", kind="vector")
def motion_ends(value: BoundaryRows) -> list[VectorRow]:
    """The motion ending each shot: the a side of a motion match cut across titles."""
    return _boundaries(value, 0)


@index(name="motion_starts", feature="motion_match", kind="vector")
def motion_starts(value: BoundaryRows) -> list[VectorRow]:
    """The motion starting each shot: the b side of a motion match cut across titles."""
    return _boundaries(value, 1)


#: The indexes every mesh keeps (those whose feature its registry has).
BUILT_IN_INDEXES: tuple[IndexSpec, ...] = (
    shots,
    video,
    fused,
    contextual,
    dialogue,
    dialogue_semantic,
    frame_ends,
    frame_starts,
    motion_ends,
    motion_starts,
)


def indexes_by_name(specs: tuple[IndexSpec, ...] = BUILT_IN_INDEXES) -> Mapping[str, IndexSpec]:
    """``specs`` by name; two with one name is a :class:`DefinitionError`."""
    found: dict[str, IndexSpec] = {}
    for spec in specs:
        if spec.name in found:
            raise DefinitionError(f"two indexes are named {spec.name!r}")
        found[spec.name] = spec
    return found
