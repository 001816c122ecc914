"""Scoring detected hard cuts against reference cuts, and reading the reference CSV.

A detected cut matches a reference cut when they are less than ``tolerance + ½`` source frames apart, so
tolerance 0 is frame-exact (the same frame, whatever rounding the times carry) and tolerance 1 forgives
one frame either way. Matching is one-to-one and greedy, nearest pairs first.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mediamesh.features.errors import DefinitionError

__all__ = [
    "HEADER",
    "CutReferenceError",
    "CutScore",
    "ReferenceClip",
    "combined",
    "match_cuts",
    "read_reference_cuts",
    "score_cuts",
]

HEADER = ("path", "cut_seconds")


class CutReferenceError(DefinitionError):
    """A reference CSV of shot cuts is malformed or names a clip that is not there."""


@dataclass(frozen=True)
class CutScore:
    """Hard cuts matched one-to-one: the counts, and the cuts that disagree (seconds).

    A clip with no reference cut has recall 1; one with no detected cut has precision 1, so a clip
    without cuts where none is found scores 1 throughout.
    """

    matched: int
    reference: int
    detected: int
    missed: tuple[float, ...] = ()
    extra: tuple[float, ...] = ()

    @property
    def precision(self) -> float:
        return self.matched / self.detected if self.detected else 1.0

    @property
    def recall(self) -> float:
        return self.matched / self.reference if self.reference else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def to_json(self, *, with_cuts: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "matched": self.matched,
            "reference": self.reference,
            "detected": self.detected,
        }
        if with_cuts:
            data.update(missed=list(self.missed), extra=list(self.extra))
        return data


def score_cuts(reference: Sequence[float], detected: Sequence[float], *, fps: float, tolerance_frames: int) -> CutScore:
    """Precision, recall and F1 of ``detected`` cut times against ``reference`` at a tolerance in frames."""
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if tolerance_frames < 0:
        raise ValueError(f"tolerance_frames must be 0 or more, got {tolerance_frames}")
    pairs = match_cuts(reference, detected, window=(tolerance_frames + 0.5) / fps)
    matched_reference = {r for r, _ in pairs}
    matched_detected = {d for _, d in pairs}
    return CutScore(
        matched=len(pairs),
        reference=len(reference),
        detected=len(detected),
        missed=tuple(sorted(t for i, t in enumerate(reference) if i not in matched_reference)),
        extra=tuple(sorted(t for i, t in enumerate(detected) if i not in matched_detected)),
    )


def match_cuts(reference: Sequence[float], detected: Sequence[float], *, window: float) -> list[tuple[int, int]]:
    """``(reference index, detected index)`` pairs less than ``window`` seconds apart, each cut in one pair
    at most, taken nearest first (ties: earlier reference, then earlier detection); sorted by reference."""
    candidates = sorted(
        (abs(d - r), i, j) for i, r in enumerate(reference) for j, d in enumerate(detected) if abs(d - r) < window
    )
    used_reference: set[int] = set()
    used_detected: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for _, i, j in candidates:
        if i not in used_reference and j not in used_detected:
            used_reference.add(i)
            used_detected.add(j)
            pairs.append((i, j))
    return sorted(pairs)


def combined(scores: Iterable[CutScore]) -> CutScore:
    """Several clips' scores as one: counts summed (micro-averaged figures), cut lists dropped."""
    matched = reference = detected = 0
    for score in scores:
        matched += score.matched
        reference += score.reference
        detected += score.detected
    return CutScore(matched, reference, detected)


@dataclass(frozen=True)
class ReferenceClip:
    """One clip of a reference CSV: its path as written, the path it resolves to, its cuts in seconds."""

    name: str
    path: Path
    cuts: tuple[float, ...]


def read_reference_cuts(csv_path: Path) -> list[ReferenceClip]:
    """The clips of a ``path,cut_seconds`` CSV, in the order they first appear, each with its sorted cuts.

    One row per cut; a clip with no cut has one row with an empty ``cut_seconds``; relative paths resolve
    against the CSV's folder; blank lines are skipped. Anything else raises CutReferenceError naming the
    file and line.
    """
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CutReferenceError(f"{csv_path}: cannot read the reference cuts: {exc.strerror or exc}") from exc
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None or tuple(field.strip() for field in header) != HEADER:
        raise CutReferenceError(f"{csv_path}, line 1: the header must be {','.join(HEADER)}, got {header}")
    clips: dict[Path, _Clip] = {}
    for row in reader:
        line = reader.line_num
        if not any(field.strip() for field in row):
            continue
        where = f"{csv_path}, line {line}"
        if len(row) != len(HEADER):
            raise CutReferenceError(f"{where}: expected 2 fields (path, cut_seconds), got {len(row)}: {row}")
        name, seconds = (field.strip() for field in row)
        if not name:
            raise CutReferenceError(f"{where}: the path is empty")
        path = (csv_path.parent / name).resolve()
        clip = clips.get(path)
        if clip is None:
            if not path.is_file():
                raise CutReferenceError(f"{where}: no such clip {name!r} ({path})")
            clip = clips[path] = _Clip(name, path, line)
        clip.add(_cut(seconds, where), line, where)
    if not clips:
        raise CutReferenceError(f"{csv_path}: no clip after the header")
    return [ReferenceClip(c.name, c.path, tuple(sorted(c.cuts))) for c in clips.values()]


def _cut(seconds: str, where: str) -> float | None:
    if not seconds:
        return None
    try:
        value = float(seconds)
    except ValueError:
        raise CutReferenceError(f"{where}: cut_seconds {seconds!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise CutReferenceError(f"{where}: cut_seconds {seconds!r} is not a time in the clip")
    return value


class _Clip:
    """A clip's rows while the CSV is read: its cuts and the line each came from."""

    def __init__(self, name: str, path: Path, line: int) -> None:
        self.name, self.path = name, path
        self.cuts: dict[float, int] = {}
        self.no_cut_line: int | None = None
        self.first_line = line

    def add(self, cut: float | None, line: int, where: str) -> None:
        if cut is None:
            if self.no_cut_line is not None or self.cuts:
                raise CutReferenceError(
                    f"{where}: {self.name!r} already has rows (line {self.first_line}); "
                    "a clip with no cut has exactly one row, with an empty cut_seconds"
                )
            self.no_cut_line = line
            return
        if self.no_cut_line is not None:
            raise CutReferenceError(
                f"{where}: {self.name!r} has no cut by line {self.no_cut_line}; give either cuts or that one row"
            )
        if cut in self.cuts:
            raise CutReferenceError(f"{where}: cut {cut} s of {self.name!r} repeats line {self.cuts[cut]}")
        self.cuts[cut] = line
