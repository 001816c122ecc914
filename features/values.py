"""Value types: what features consume and produce.

A value is stored in one of three payload kinds, chosen by its type:

- ``file``: a media file on local disk plus a small metadata dict (:class:`FileValue`);
- ``json``: a small table or document (:class:`JsonValue`);
- ``array``: a NumPy array, stored as ``.npy`` (an :class:`ArrayValue` adds a metadata dict).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

__all__ = [
    "ArrayValue",
    "Cue",
    "DedupMap",
    "EncodedMedia",
    "FileValue",
    "JsonValue",
    "MediaFMCheckpoint",
    "Shot",
    "ShotEmbeddings",
    "ShotTable",
    "SourceMedia",
    "SubtitleTrack",
    "Subtitles",
    "TimedText",
    "TitleEmbedding",
    "TitleMetadata",
    "Transition",
]


class FileValue:
    """A value whose payload is one file; ``to_meta``/``from_file`` carry everything else."""

    payload_kind: ClassVar[str] = "file"
    suffix: ClassVar[str] = ""
    path: Path

    def to_meta(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_file(cls, path: Path, meta: dict[str, Any]) -> Self:
        raise NotImplementedError


class JsonValue:
    """A value whose payload is a JSON document."""

    payload_kind: ClassVar[str] = "json"

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        raise NotImplementedError


class ArrayValue:
    """A value whose payload is one NumPy array, plus a small metadata dict kept beside it."""

    payload_kind: ClassVar[str] = "array"
    data: np.ndarray[Any, Any]
    meta: dict[str, Any]

    @classmethod
    def from_array(cls, data: np.ndarray[Any, Any], meta: dict[str, Any]) -> Self:
        raise NotImplementedError


@dataclass(frozen=True)
class SourceMedia:
    """The ingested bytes of an asset, as a local file; the root every feature graph starts from."""

    asset: str
    path: Path
    name: str | None = None


@dataclass(frozen=True)
class EncodedMedia(FileValue):
    """A standardized derivative: H.264 yuv420p, square pixels, upright, constant frame rate, 16 kHz mono."""

    suffix: ClassVar[str] = ".mp4"

    path: Path
    width: int
    height: int
    fps: float
    frame_count: int
    duration: float
    has_audio: bool
    sample_rate: int | None = None
    #: The original's average frame rate, so that frame-count parameters can keep their meaning.
    source_fps: float | None = None

    def to_meta(self) -> dict[str, Any]:
        meta = asdict(self)
        del meta["path"]
        return meta

    @classmethod
    def from_file(cls, path: Path, meta: dict[str, Any]) -> Self:
        return cls(path=path, **meta)


@dataclass(frozen=True)
class Shot:
    """Shot ``index`` covers frames ``[start_frame, end_frame)`` and seconds ``[start_time, end_time)``.

    ``transition`` says how it begins: ``"cut"``, ``"gradual"`` (a fade or dissolve over seconds
    ``[transition_start, transition_end)``, whose frames belong to this shot) or None for the first shot.
    """

    index: int
    start_frame: int
    end_frame: int
    start_time: float
    end_time: float
    transition: str | None = None
    transition_start: float | None = None
    transition_end: float | None = None


#: How a shot begins, as ``ShotTable.from_frames`` takes it: ``("cut", None)`` or ``("gradual", end_frame)``.
Transition = tuple[str, int | None]


@dataclass(frozen=True)
class ShotTable(JsonValue):
    """The shots of an encode, in order, covering every frame exactly once."""

    fps: float
    shots: tuple[Shot, ...]

    @classmethod
    def from_frames(
        cls, fps: float, bounds: list[tuple[int, int]], transitions: list[Transition] | None = None
    ) -> ShotTable:
        """Build a table from ``(start_frame, end_frame)`` pairs of a constant-frame-rate video and, for
        every shot but the first, how it begins (hard cuts when not given)."""
        later = transitions if transitions is not None else [("cut", None)] * (len(bounds) - 1)
        begins: list[Transition | None] = [None, *later]
        pairs = enumerate(zip(bounds, begins, strict=True))
        return cls(fps=fps, shots=tuple(_shot(i, start, end, fps, begin) for i, ((start, end), begin) in pairs))

    def __len__(self) -> int:
        return len(self.shots)

    def records(self) -> list[dict[str, Any]]:
        return [asdict(shot) for shot in self.shots]

    def to_json(self) -> dict[str, Any]:
        return {"fps": self.fps, "shots": self.records()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(fps=float(data["fps"]), shots=tuple(Shot(**shot) for shot in data["shots"]))


def _shot(index: int, start: int, end: int, fps: float, begin: Transition | None) -> Shot:
    kind, until = begin or (None, None)
    span = (round(start / fps, 6), round(until / fps, 6)) if kind == "gradual" and until is not None else (None, None)
    return Shot(index, start, end, round(start / fps, 6), round(end / fps, 6), kind, *span)


@dataclass(frozen=True)
class SubtitleTrack:
    """One subtitle file attached to an asset (a sidecar or ``--subtitles FILE``), as a local file."""

    path: Path
    name: str
    language: str | None = None


@dataclass(frozen=True)
class Subtitles:
    """The root input ``subtitles``: every subtitle file attached to the asset (often none)."""

    tracks: tuple[SubtitleTrack, ...] = ()


@dataclass(frozen=True)
class Cue:
    """A subtitle or caption cue: ``text`` shown over ``[start, end)`` seconds."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class TimedText(JsonValue):
    """The title's timed text and, per shot, the indices of the cues overlapping it."""

    cues: tuple[Cue, ...]
    per_shot: tuple[tuple[int, ...], ...]
    origin: str  # "sidecar:<name>", "stream:<index>" or "none"
    language: str | None = None

    def shot_text(self, shot: int) -> str:
        """The text of the cues overlapping ``shot``, in order, joined by spaces ('' when none)."""
        return " ".join(self.cues[i].text for i in self.per_shot[shot])

    def to_json(self) -> dict[str, Any]:
        return {
            "cues": [asdict(c) for c in self.cues],
            "per_shot": [list(p) for p in self.per_shot],
            "origin": self.origin,
            "language": self.language,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(
            cues=tuple(Cue(**c) for c in data["cues"]),
            per_shot=tuple(tuple(p) for p in data["per_shot"]),
            origin=data["origin"],
            language=data.get("language"),
        )


@dataclass(frozen=True)
class DedupMap(JsonValue):
    """For each shot, the index of the earlier shot it repeats, or its own index when it is unique."""

    representative: tuple[int, ...]
    method: str

    @property
    def unique(self) -> tuple[int, ...]:
        """Indices of the shots whose embeddings are computed; duplicates share their representative's."""
        return tuple(i for i, r in enumerate(self.representative) if r == i)

    def to_json(self) -> dict[str, Any]:
        return {"representative": list(self.representative), "method": self.method}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(representative=tuple(data["representative"]), method=data["method"])


@dataclass(frozen=True, eq=False)
class ShotEmbeddings(ArrayValue):
    """One float32 vector per shot, shape (shots, D), in shot order; ``meta`` says how it was made."""

    data: np.ndarray[Any, Any]
    meta: dict[str, Any]

    @classmethod
    def from_array(cls, data: np.ndarray[Any, Any], meta: dict[str, Any]) -> Self:
        return cls(data=data, meta=meta)


@dataclass(frozen=True)
class TitleMetadata:
    """The root input ``title``: what is known about the title (from ``--title``/``--synopsis``/``--tags``
    or a ``movie.json`` sidecar). Keyed by its content, so editing a synopsis recomputes only what reads it."""

    title: str | None = None
    synopsis: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.title or self.synopsis or self.tags)

    def text(self) -> str:
        """One line for a sentence encoder: title, synopsis, then tags."""
        parts = [p.strip() for p in (self.title, self.synopsis) if p and p.strip()]
        if self.tags:
            parts.append("Tags: " + ", ".join(self.tags))
        return ". ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "synopsis": self.synopsis, "tags": list(self.tags)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TitleMetadata:
        tags = data.get("tags") or ()
        if isinstance(tags, str):
            tags = [t for t in (part.strip() for part in tags.split(",")) if t]
        return cls(title=data.get("title") or None, synopsis=data.get("synopsis") or None, tags=tuple(tags))


@dataclass(frozen=True, eq=False)
class TitleEmbedding(ArrayValue):
    """The sentence embedding of the title's metadata, shape (D,); zeros, with ``meta["present"] = False``,
    when the title has none."""

    data: np.ndarray[Any, Any]
    meta: dict[str, Any]

    @classmethod
    def from_array(cls, data: np.ndarray[Any, Any], meta: dict[str, Any]) -> Self:
        return cls(data=data, meta=meta)


@dataclass(frozen=True)
class MediaFMCheckpoint:
    """The root input ``mediafm``: the promoted MediaFM checkpoint as a local file, or none yet."""

    path: Path | None = None
    sha256: str | None = None


@dataclass(frozen=True, eq=False)
class BoundaryRows(ArrayValue):
    """Per shot, a unit row for how it ends and one for how it begins: float32, shape (shots, 2, D).

    ``data[:, 0]`` (``ends``) describes the shot's last frame(s), ``data[:, 1]`` (``starts``) its first, so
    ``ends[a] . starts[b]`` scores a cut from shot a to shot b. Duplicate shots hold exact copies of their
    representative's rows; ``meta`` says how the rows were made.
    """

    data: np.ndarray[Any, Any]
    meta: dict[str, Any]

    @property
    def ends(self) -> np.ndarray[Any, Any]:
        return self.data[:, 0]

    @property
    def starts(self) -> np.ndarray[Any, Any]:
        return self.data[:, 1]

    @classmethod
    def from_array(cls, data: np.ndarray[Any, Any], meta: dict[str, Any]) -> Self:
        return cls(data=data, meta=meta)


@dataclass(frozen=True)
class MatchCut:
    """A match cut: the end of shot ``a`` matched to the start of shot ``b``, with their ``score``."""

    a: int
    b: int
    score: float


@dataclass(frozen=True)
class MatchCuts(JsonValue):
    """A title's best match cuts of one ``flavour`` (``frame`` or ``motion``), best first."""

    flavour: str
    pairs: tuple[MatchCut, ...]

    def to_json(self) -> dict[str, Any]:
        return {"flavour": self.flavour, "pairs": [asdict(p) for p in self.pairs]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(flavour=data["flavour"], pairs=tuple(MatchCut(**p) for p in data["pairs"]))


__all__ += ["BoundaryRows", "MatchCut", "MatchCuts"]


@dataclass(frozen=True)
class ShotThumbnails(FileValue):
    """A title's shot thumbnails as one JPEG sprite sheet: equal tiles in rows of ``columns``, one per unique
    shot; ``tiles[shot]`` is the tile a shot shows (a duplicate shows its representative's)."""

    suffix: ClassVar[str] = ".jpg"

    path: Path
    tile_width: int
    tile_height: int
    columns: int
    tiles: tuple[int, ...]

    def box(self, shot: int) -> tuple[int, int, int, int]:
        """Where shot ``shot``'s tile is in the sheet: ``(left, top, right, bottom)`` in pixels."""
        tile = self.tiles[shot]
        left, top = (tile % self.columns) * self.tile_width, (tile // self.columns) * self.tile_height
        return left, top, left + self.tile_width, top + self.tile_height

    def to_meta(self) -> dict[str, Any]:
        return {
            "tile_width": self.tile_width,
            "tile_height": self.tile_height,
            "columns": self.columns,
            "tiles": list(self.tiles),
        }

    @classmethod
    def from_file(cls, path: Path, meta: dict[str, Any]) -> Self:
        return cls(
            path=path,
            tile_width=int(meta["tile_width"]),
            tile_height=int(meta["tile_height"]),
            columns=int(meta["columns"]),
            tiles=tuple(int(t) for t in meta["tiles"]),
        )


__all__ += ["ShotThumbnails"]
