"""A synthetic catalogue with the structure of edited film, for tests and benchmarks.

A title is a sequence of scenes of 6 to 20 shots. Within a scene the edit cross-cuts between two or
three camera setups (shot / reverse shot: A B A B ..., or A B C A B C ...). Each setup is a latent
vector that drifts slowly across the scene; a shot is its setup's current vector plus a little noise
and the title's own look, unit-normed. So a masked shot looks like the shots two (or three) back and
ahead, not like its immediate neighbours: context can recover it, the neighbour average cannot.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mediamesh.features.mediafm.data import TitleSequence

__all__ = ["synthetic_catalogue"]

Array = np.ndarray[Any, Any]

SCENE_SHOTS = (6, 20)
#: How far a setup's vector moves from the start of its scene to the end, relative to its unit latent.
DRIFT = 0.8
#: Norm of the per-shot noise, relative to the unit setup latent.
NOISE = 0.15
#: Weight of the title's look, shared by all its shots.
LOOK = 0.5


def synthetic_catalogue(
    titles: int,
    fused_dim: int,
    seed: int,
    *,
    shots: tuple[int, int] = (60, 160),
    title_dim: int | None = None,
    title_share: float = 0.75,
) -> list[TitleSequence]:
    """``titles`` synthetic titles of ``shots[0]`` to ``shots[1]`` shots (inclusive) with ``fused_dim``-wide
    unit vectors. With ``title_dim``, a share ``title_share`` of the titles get a metadata vector: a noisy
    fixed projection of the title's look; the others get None."""
    if titles < 0 or fused_dim < 2 or not 1 <= shots[0] <= shots[1]:
        raise ValueError(f"synthetic_catalogue: bad arguments titles={titles}, fused_dim={fused_dim}, shots={shots}")
    rng = np.random.default_rng(seed)
    projection = None if title_dim is None else rng.normal(size=(fused_dim, title_dim)) / np.sqrt(fused_dim)
    catalogue = []
    for index in range(titles):
        look = _unit(rng.normal(size=fused_dim))
        fused = _title_shots(rng, int(rng.integers(shots[0], shots[1] + 1)), fused_dim, look)
        title = None
        if projection is not None and rng.random() < title_share:
            title = (look @ projection + 0.1 * rng.normal(size=projection.shape[1])).astype(np.float32)
        catalogue.append(TitleSequence(asset=f"synthetic-{seed}-{index:04d}", fused=fused, title=title))
    return catalogue


def _title_shots(rng: np.random.Generator, count: int, dim: int, look: Array) -> Array:
    rows: list[Array] = []
    while len(rows) < count:
        length = min(int(rng.integers(SCENE_SHOTS[0], SCENE_SHOTS[1] + 1)), count - len(rows))
        setups = int(rng.integers(2, 4))
        latent = np.stack([_unit(rng.normal(size=dim)) for _ in range(setups)])
        drift = np.stack([_unit(rng.normal(size=dim)) for _ in range(setups)])
        for t in range(length):
            progress = t / max(1, length - 1) - 0.5
            setup = t % setups
            noise = NOISE * rng.normal(size=dim) / np.sqrt(dim)
            rows.append(latent[setup] + DRIFT * progress * drift[setup] + LOOK * look + noise)
    return np.stack([_unit(row) for row in rows]).astype(np.float32)


def _unit(vector: Array) -> Array:
    return np.asarray(vector / np.linalg.norm(vector))
