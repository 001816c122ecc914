"""Match cuts for editors: a title's stored best pairs, or the best across any set of titles found at query
time, and a sheet to look at them. One way for ``mediamesh matchcuts``, ``POST /matchcuts`` and the page.

With one title the answer is its stored ``frame_match_cuts`` / ``motion_match_cuts`` (computed where missing).
With several, only pairs across titles: each shot's end is looked up among the other titles' shot starts in
the boundary vector indexes (``frame_ends``/``frame_starts``, ``motion_ends``/``motion_starts``, HNSW), a few
candidates per shot, scored exactly on the stored vectors, and the best kept. The cost grows with shots times
candidates, not with shots squared, and no set of titles is ever precomputed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from mediamesh.features.errors import ExecutionError
from mediamesh.features.matchcut import boundary_frames
from mediamesh.features.values import EncodedMedia, MatchCuts, ShotTable
from mediamesh.orchestrator.execution.engine import Progress
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.store import Store

__all__ = [
    "CANDIDATES_PER_SHOT",
    "Flavour",
    "MatchPair",
    "Side",
    "cross_title_pairs",
    "find_match_cuts",
    "render_sheet",
]

#: Nearest starts looked up per shot end in a cross-title query, before the best pairs are kept.
CANDIDATES_PER_SHOT = 10
_THUMB_WIDTH = 320
_CAPTION = 36


class Flavour(StrEnum):
    """What a cut matches: ``frame`` the framing and composition, ``motion`` the movement."""

    frame = "frame"
    motion = "motion"


@dataclass(frozen=True)
class Side:
    """One shot of a pair: its title (``asset`` id and recorded ``name``), index and times in seconds."""

    asset: str
    name: str
    shot: int
    start_time: float
    end_time: float


@dataclass(frozen=True)
class MatchPair:
    """A match cut: the end of shot ``a`` to the start of shot ``b``."""

    a: Side
    b: Side
    score: float
    flavour: str

    def to_json(self) -> dict[str, Any]:
        return {"a": asdict(self.a), "b": asdict(self.b), "score": self.score, "flavour": self.flavour}


def find_match_cuts(
    mesh: Mesh,
    assets: Sequence[str],
    flavour: str,
    top: int,
    *,
    progress: Callable[[], Progress | None] | None = None,
) -> tuple[list[MatchPair], dict[str, str]]:
    """The ``top`` best ``flavour`` match cuts of one asset (its stored pairs), or across several (only pairs
    whose shots are in different ones), best first, and the feature versions they were read from; whatever
    they need is computed first."""
    one = len(assets) == 1
    needed = f"{flavour}_match_cuts" if one else f"{flavour}_match"
    _compute(mesh, assets, needed, progress)
    versions: dict[str, str] = {}
    shots: dict[str, ShotTable] = {}
    for asset in assets:
        shots[asset] = _read(mesh, asset, "shots", versions)
    names = {asset: _name(mesh, asset) for asset in assets}

    def side(asset: str, shot: int) -> Side:
        s = shots[asset].shots[shot]
        return Side(asset, names[asset], shot, s.start_time, s.end_time)

    if one:
        [asset] = assets
        value: MatchCuts = _read(mesh, asset, needed, versions)
        return [MatchPair(side(asset, p.a), side(asset, p.b), p.score, flavour) for p in value.pairs[:top]], versions
    version = _read_version(mesh, assets, needed, versions)
    found = cross_title_pairs(
        mesh.store, flavour, version, assets, top, model=mesh.registry[needed].model_fingerprint()
    )
    return [MatchPair(side(x, a), side(y, b), score, flavour) for x, a, y, b, score in found], versions


def cross_title_pairs(
    store: Store,
    flavour: str,
    version: str,
    assets: Sequence[str],
    top: int,
    *,
    model: str | None,
    per_shot: int = CANDIDATES_PER_SHOT,
    ceiling: float | None = None,
) -> list[tuple[str, int, str, int, float]]:
    """The ``top`` best cuts from a shot of one title to a shot of another: ``(asset a, shot a, asset b, shot
    b, score)``, best first. Each unique shot's end gets its ``per_shot`` nearest starts among the other
    titles from the boundary indexes (approximate), scored exactly; pairs scoring nothing, or over ``ceiling``
    (the same picture twice), are left out."""
    found = store.cross_candidates(
        f"{flavour}_ends", f"{flavour}_starts", version, list(assets), per_shot, model_fingerprint=model
    )
    top_score = ceiling if ceiling is not None else float("inf")
    ranked = sorted((p for p in found if 0 < p[4] <= top_score), key=lambda p: (-p[4], p[0], p[1], p[2], p[3]))
    return [(a, sa, b, sb, round(score, 6)) for a, sa, b, sb, score in ranked[:top]]


def render_sheet(mesh: Mesh, pairs: Sequence[MatchPair], to: Path) -> None:
    """A PNG with a row per pair: shot a's last frame beside shot b's first, each captioned with its title,
    shot and times, and the pair's rank and score."""
    from PIL import Image, ImageDraw

    from mediamesh.features.encoders import decode_frames

    media: dict[str, tuple[EncodedMedia, ShotTable]] = {}
    keys: list[tuple[tuple[str, int], tuple[str, int]]] = []
    for pair in pairs:
        for side in (pair.a, pair.b):
            if side.asset not in media:
                media[side.asset] = (mesh.read(side.asset, "encode")[1], mesh.read(side.asset, "shots")[1])
        keys.append((_frame_of(media, pair.a, last=True), _frame_of(media, pair.b, last=False)))
    pictures: dict[tuple[str, int], Image.Image] = {}
    for asset, (encode, _) in media.items():
        height = max(1, round(_THUMB_WIDTH * encode.height / encode.width))
        wanted = {index for pair_keys in keys for key_asset, index in pair_keys if key_asset == asset}
        for index, rgb in decode_frames(encode.path, wanted):
            pictures[(asset, index)] = Image.fromarray(np.ascontiguousarray(rgb)).resize((_THUMB_WIDTH, height))
    row_height = max((p.height for p in pictures.values()), default=_THUMB_WIDTH * 9 // 16) + _CAPTION
    sheet = Image.new("RGB", (2 * _THUMB_WIDTH + 12, max(1, len(pairs)) * (row_height + 8)), "white")
    draw = ImageDraw.Draw(sheet)
    for rank, (pair, (key_a, key_b)) in enumerate(zip(pairs, keys, strict=True), 1):
        y = (rank - 1) * (row_height + 8)
        draw.text((4, y + 2), f"#{rank}  {pair.flavour}  score {pair.score:.3f}", fill="black")
        for column, (side, key) in enumerate(((pair.a, key_a), (pair.b, key_b))):
            x = column * (_THUMB_WIDTH + 12)
            draw.text((x + 4, y + 16), _short(side), fill="black")
            sheet.paste(pictures[key], (x, y + _CAPTION))
    sheet.save(to, format="PNG")


def _frame_of(media: dict[str, tuple[EncodedMedia, ShotTable]], side: Side, *, last: bool) -> tuple[str, int]:
    """The frame a sheet shows for ``side``: its shot's last frame (``last``) or its first, as match cutting
    takes them."""
    encode, table = media[side.asset]
    first, final = boundary_frames(table.shots[side.shot], table.fps, encode.frame_count)
    return side.asset, final if last else first


def _compute(mesh: Mesh, assets: Sequence[str], feature: str, progress: Callable[[], Progress | None] | None) -> None:
    """Have ``feature`` (and what it needs) computed for each asset that lacks it; a failure is an error."""
    done = mesh.dispatch(
        list(assets), trigger=f"matchcuts-{feature}", targets=[feature], progress=progress() if progress else None
    )
    if done.report is None:
        return
    if done.report.outage is not None:
        raise done.report.outage
    failures = [f"{a.asset[:12]}: {e}" for a in done.report.assets.values() for e in a.errors]
    if failures:
        raise ExecutionError(f"could not compute {feature}: " + "; ".join(failures))
    if done.report.queued:
        raise ExecutionError(f"{feature} was queued on the work pools; run this again once they have computed it")


def _read_version(mesh: Mesh, assets: Sequence[str], feature: str, versions: dict[str, str]) -> str:
    """The version of ``feature`` the titles' readers get (each must have it), recorded in ``versions``."""
    chosen = {mesh.find(asset, feature)[0].version for asset in assets}
    if len(chosen) != 1:
        raise ExecutionError(f"the titles hold different versions of {feature} ({', '.join(sorted(chosen))})")
    versions[feature] = chosen.pop()
    return versions[feature]


def _read(mesh: Mesh, asset: str, feature: str, versions: dict[str, str]) -> Any:
    record, value = mesh.read(asset, feature)
    versions[record.feature] = record.version
    return value


def _name(mesh: Mesh, asset: str) -> str:
    names = mesh.store.asset(asset).names
    return names[0] if names else asset


def _short(side: Side) -> str:
    name = Path(side.name).name if "/" in side.name else side.name
    return f"{name[:28]}  shot {side.shot}  {side.start_time:.2f}-{side.end_time:.2f} s"
