"""The synthetic catalogue has the scene structure masked shot modeling is meant to learn."""

from __future__ import annotations

import numpy as np

from mediamesh.features.mediafm import synthetic_catalogue


def test_a_shot_looks_like_a_shot_two_or_three_back_not_its_neighbour() -> None:
    titles = synthetic_catalogue(10, 48, seed=0, shots=(80, 120), title_dim=6)
    assert len(titles) == 10 and len({t.asset for t in titles}) == 10
    setup_back, neighbour = [], []
    for title in titles:
        fused = title.fused
        assert fused.dtype == np.float32 and fused.shape[1] == 48
        assert 80 <= len(title) <= 120
        np.testing.assert_allclose(np.linalg.norm(fused, axis=1), 1.0, atol=1e-5)
        # Cross-cutting between two or three setups: the same setup was two or three shots back.
        setup_back.append(np.maximum(np.sum(fused[3:] * fused[1:-2], 1), np.sum(fused[3:] * fused[:-3], 1)))
        neighbour.append(np.sum(fused[3:] * fused[2:-1], axis=1))
    assert np.median(np.concatenate(setup_back)) > 0.9
    assert np.median(np.concatenate(neighbour)) < 0.5
    with_title = [t for t in titles if t.title is not None]
    assert 0 < len(with_title) < 10 and all(t.title is not None and t.title.shape == (6,) for t in with_title)


def test_the_catalogue_is_reproducible() -> None:
    a, b = synthetic_catalogue(3, 8, seed=5), synthetic_catalogue(3, 8, seed=5)
    assert all(np.array_equal(x.fused, y.fused) and x.title is None for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0].fused, synthetic_catalogue(3, 8, seed=6)[0].fused)
