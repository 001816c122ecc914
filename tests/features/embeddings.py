"""Checks every embedding value must pass: shape, dtype, layout, finite, and unit rows where normalised."""

from __future__ import annotations

import numpy as np

from mediamesh.features.values import ShotEmbeddings


def assert_unit_rows(data: np.ndarray) -> None:
    np.testing.assert_allclose(np.linalg.norm(data, axis=1), 1.0, atol=1e-5)


def assert_value(value: ShotEmbeddings, shape: tuple[int, int]) -> None:
    assert value.data.shape == shape
    assert value.data.dtype == np.float32
    assert value.data.flags.c_contiguous
    assert np.isfinite(value.data).all()
