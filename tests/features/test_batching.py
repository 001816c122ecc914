"""Batching across videos: concurrent callers' frames share forward passes, and each gets exactly its rows."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from mediamesh.features.batching import Batcher
from mediamesh.features.models import resolve_model
from mediamesh.features.models.loaders import load_image_model
from tests.models import TinyModels

Array = np.ndarray[Any, Any]
WEIGHTS = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)


def _rows(parts: Sequence[Array]) -> Array:
    return np.concatenate(list(parts)) @ WEIGHTS


def _callers(batcher: Batcher[Any], inputs: list[Array]) -> list[Array]:
    out: list[Array] = [np.empty(0)] * len(inputs)
    start = threading.Barrier(len(inputs))

    def call(i: int) -> None:
        with batcher.caller():
            start.wait()
            out[i] = batcher(inputs[i])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_callers_that_wait_together_share_a_pass_and_get_their_own_rows() -> None:
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal((n, 6)).astype(np.float32) for n in (3, 1, 5, 2, 4, 3, 2, 4)]
    batcher: Batcher[Array] = Batcher(lambda x: x, _rows, max_rows=12, max_wait_s=5.0)
    out = _callers(batcher, inputs)
    for given, got in zip(inputs, out, strict=True):
        np.testing.assert_allclose(got, given @ WEIGHTS, rtol=1e-6)
    # 24 rows in passes of at most 12 rows, never splitting a call: three passes at most, not eight.
    assert batcher.rows == 24
    assert 2 <= batcher.passes <= 3


def test_a_lone_caller_is_served_without_waiting_for_the_bound() -> None:
    batcher: Batcher[Array] = Batcher(lambda x: x, _rows, max_rows=64, max_wait_s=60.0)
    began = time.monotonic()
    with batcher.caller():
        rows = batcher(np.ones((2, 6), np.float32))
    assert rows.shape == (2, 4)
    assert time.monotonic() - began < 30.0  # the bound is 60 s: served at once, not when it ran out


def test_an_error_in_a_pass_reaches_every_caller_in_it() -> None:
    def broken(parts: Sequence[Array]) -> Array:
        raise RuntimeError(f"out of memory in a pass of {len(parts)} calls")

    batcher: Batcher[Array] = Batcher(lambda x: x, broken, max_rows=64, max_wait_s=5.0)
    errors: list[str] = []
    start = threading.Barrier(3)

    def call() -> None:
        with batcher.caller():
            start.wait()
            try:
                batcher(np.ones((1, 6), np.float32))
            except RuntimeError as exc:
                errors.append(str(exc))

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == ["out of memory in a pass of 3 calls"] * 3
    assert batcher.passes == 1


def test_a_model_pass_over_frames_of_different_sizes_equals_each_alone(tiny_encoders: TinyModels) -> None:
    model = load_image_model(resolve_model("video"))
    rng = np.random.default_rng(2)
    wide = rng.integers(0, 255, (3, 36, 64, 3), dtype=np.uint8)
    tall = rng.integers(0, 255, (2, 48, 40, 3), dtype=np.uint8)
    batcher: Batcher[Any] = Batcher(model.prepare, model.forward, max_rows=16, max_wait_s=5.0)
    got_wide, got_tall = _callers(batcher, [wide, tall])
    np.testing.assert_allclose(got_wide, model.embed(wide), atol=1e-5)
    np.testing.assert_allclose(got_tall, model.embed(tall), atol=1e-5)
    assert batcher.passes == 1
