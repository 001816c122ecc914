"""Whole-title inference: one window up to ``max_shots`` shots, overlapping windows stitched beyond."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from mediamesh.features.mediafm import MediaFM, MediaFMConfig, embed_title, plan_windows

CONFIG = MediaFMConfig(fused_dim=16, title_dim=4, hidden=24, layers=2, heads=2, ff=48, max_shots=512)


@pytest.fixture(scope="module")
def model() -> MediaFM:
    torch.manual_seed(0)
    return MediaFM(CONFIG).eval()


def calls(model: MediaFM) -> tuple[list[tuple[int, ...]], Any]:
    """Record the input shape of every forward pass of ``model``; returns the list and the hook's handle."""
    shapes: list[tuple[int, ...]] = []
    handle = model.register_forward_pre_hook(lambda _module, args: shapes.append(tuple(args[0].shape)))
    return shapes, handle


def test_a_long_title_is_stitched_from_the_window_where_each_shot_is_most_central(model: MediaFM) -> None:
    rng = np.random.default_rng(0)
    fused, title = rng.normal(size=(1300, 16)).astype(np.float32), rng.normal(size=4).astype(np.float32)
    shapes, handle = calls(model)
    try:
        stitched = embed_title(model, fused, title)
    finally:
        handle.remove()
    assert stitched.shape == (1300, 24) and stitched.dtype == np.float32
    assert shapes == [(5, 512, 16)]  # every window in one batch
    starts, owner = plan_windows(1300, 512)
    assert starts == [0, 256, 512, 768, 788]
    assert (np.diff(owner) >= 0).all()  # each window owns one run of consecutive shots
    for shot in range(1300):
        distances = [min(shot - s, s + 511 - shot) for s in starts]
        assert distances[owner[shot]] == max(distances)
    for index, start in enumerate(starts):
        alone = embed_title(model, fused[start : start + 512], title)
        mine = np.flatnonzero(owner == index)
        assert len(mine) > 0
        np.testing.assert_allclose(stitched[mine], alone[mine - start], rtol=1e-5, atol=1e-5)
    # Shots near a window's edge really do get their vector from another window.
    assert not np.allclose(stitched[600], embed_title(model, fused[:512], title)[511], atol=1e-3)


def test_a_title_up_to_the_window_is_one_window(model: MediaFM) -> None:
    fused = np.random.default_rng(1).normal(size=(512, 16)).astype(np.float32)
    shapes, handle = calls(model)
    try:
        embedded = embed_title(model, fused, None)
    finally:
        handle.remove()
    assert shapes == [(1, 512, 16)]
    with torch.inference_mode():
        expected = model(torch.from_numpy(fused)[None]).hidden[0].numpy()
    np.testing.assert_array_equal(embedded, expected)
    starts, owner = plan_windows(512, 512)
    assert starts == [0] and not owner.any()
    assert embed_title(model, fused[:3], None).shape == (3, 24)


def test_windows_are_batched_and_the_mode_restored(model: MediaFM) -> None:
    fused = np.random.default_rng(2).normal(size=(300, 16)).astype(np.float32)
    model.train()
    shapes, handle = calls(model)
    try:
        embedded = embed_title(model, fused, None, window=64, batch_size=4)
    finally:
        handle.remove()
        training = model.training
        model.eval()
    assert training
    starts, _ = plan_windows(300, 64)
    assert starts == [0, 32, 64, 96, 128, 160, 192, 224, 236]
    assert [shape[0] for shape in shapes] == [4, 4, 1]
    np.testing.assert_allclose(embedded, embed_title(model, fused, None, window=64), rtol=1e-5, atol=1e-5)


def test_bad_inputs_are_refused(model: MediaFM) -> None:
    with pytest.raises(ValueError, match=r"fused must be \(shots >= 1, 16\)"):
        embed_title(model, np.zeros((0, 16), np.float32), None)
    with pytest.raises(ValueError, match=r"title must be \(4,\)"):
        embed_title(model, np.zeros((3, 16), np.float32), np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="window must be 1 to the model's max_shots"):
        embed_title(model, np.zeros((3, 16), np.float32), None, window=513)
