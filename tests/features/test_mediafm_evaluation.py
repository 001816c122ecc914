"""Evaluating MediaFM: masked-shot retrieval against the neighbour baseline, linear probes, CSV labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mediamesh.features.mediafm import (
    MediaFM,
    MediaFMConfig,
    RetrievalMetrics,
    TitleSequence,
    TrainResult,
    labels_from_rows,
    linear_probe,
    masked_shot_retrieval,
    neighbour_baseline,
    plan_windows,
    synthetic_catalogue,
)
from tests.features.mediafm_runs import FUSED, TINY, TITLE

# masked-shot retrieval


def test_a_trained_model_retrieves_masked_shots_better_than_their_neighbours(
    tiny_mediafm_runs: dict[str, TrainResult],
) -> None:
    # The tiny model after 200 steps on 48 titles; held-out titles, some longer than max_shots: masked in windows.
    model = tiny_mediafm_runs["muon"].model
    held_out = synthetic_catalogue(8, FUSED, seed=2, title_dim=TITLE)
    assert max(len(t) for t in held_out) > TINY.max_shots
    found = masked_shot_retrieval(model, held_out)
    baseline = neighbour_baseline(held_out)
    assert found.n == baseline.n == sum(len(t) for t in held_out)
    assert found.mrr > 2 * baseline.mrr
    assert found.top5 > baseline.top5


def test_retrieval_masks_each_shot_alone_in_its_most_central_window() -> None:
    config = MediaFMConfig(fused_dim=8, title_dim=2, hidden=16, layers=1, heads=2, ff=16, max_shots=40)
    model = MediaFM(config)
    (title,) = synthetic_catalogue(1, 8, seed=0, shots=(100, 100))
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def record(_module: object, args: tuple[torch.Tensor, ...], kwargs: dict[str, torch.Tensor]) -> None:
        seen.append((args[0].clone(), kwargs["masked"].clone()))

    handle = model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        metrics = masked_shot_retrieval(model, [title], batch_size=16)
    finally:
        handle.remove()
    assert metrics.n == 100
    starts, owner = plan_windows(100, 40)
    masked_shots = []
    for inputs, masked in seen:
        assert inputs.shape[1:] == (40, 8)
        assert masked.sum(dim=1).tolist() == [1] * len(masked)
        for window, row in zip(inputs, masked, strict=True):
            start = next(s for s in starts if torch.equal(window, torch.from_numpy(title.fused[s : s + 40])))
            masked_shots.append(start + int(row.nonzero()))
            assert start == starts[owner[masked_shots[-1]]]
    assert masked_shots == list(range(100))


def test_the_neighbour_baseline_ranks_by_the_mean_of_the_neighbours() -> None:
    # Shots along an arc at uneven angles: the mean of two neighbours points closest to the shot between them.
    angles = np.array([0.0, 0.1, 0.3, 0.6, 1.0, 1.5])
    fused = np.stack([np.cos(angles), np.sin(angles), np.zeros(6)], axis=1).astype(np.float32)
    path = TitleSequence("path", fused)
    metrics = neighbour_baseline([path, TitleSequence("one shot", fused[:1])])
    assert metrics.n == 6  # the one-shot title is skipped
    # An end shot's prediction is its one neighbour, which ranks itself first: shot 0 comes second
    # (0.1 away, against 0.2 for shot 2), shot 5 third (0.5 away, behind shot 3 at 0.4).
    assert metrics.top1 == pytest.approx(4 / 6)
    assert metrics.mrr == pytest.approx((4 + 1 / 2 + 1 / 3) / 6)
    assert metrics.top5 == 1.0


def test_fewer_shots_per_title_are_drawn_the_same_way_for_both() -> None:
    titles = synthetic_catalogue(3, 8, seed=4, shots=(20, 30))
    some = neighbour_baseline(titles, shots_per_title=5, seed=1)
    assert some.n == 15
    assert neighbour_baseline(titles, shots_per_title=5, seed=1) == some
    assert isinstance(some, RetrievalMetrics)


# linear probes


def separable(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 16))
    return X, (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)


def test_a_probe_on_separable_embeddings_is_near_perfect() -> None:
    (train_X, train_y), (test_X, test_y) = separable(300, 0), separable(300, 1)
    metrics = linear_probe(train_X, train_y, test_X, test_y)
    assert list(metrics.ap) == ["1"]
    assert metrics.ap["1"] > 0.97
    assert metrics.micro_ap == metrics.macro_ap == metrics.ap["1"]
    assert metrics.kendall_tau is not None and metrics.kendall_tau > 0.6  # ties in the labels cap tau below 1
    assert (metrics.n_train, metrics.n_test) == (300, 300)


def test_a_probe_on_shuffled_labels_is_near_chance() -> None:
    (train_X, train_y), (test_X, test_y) = separable(300, 0), separable(600, 1)
    rng = np.random.default_rng(2)
    metrics = linear_probe(train_X, rng.permutation(train_y), test_X, rng.permutation(test_y))
    assert metrics.ap["1"] == pytest.approx(test_y.mean(), abs=0.1)
    assert metrics.kendall_tau is not None and abs(metrics.kendall_tau) < 0.1


def test_a_multi_class_probe_reports_each_class_and_tau_for_ordinal_labels() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(900, 8))
    y = np.digitize(X[:, 0], [-0.5, 0.5])  # three ordered classes
    metrics = linear_probe(X[:600], y[:600], X[600:], y[600:])
    assert set(metrics.ap) == {"0", "1", "2"}
    assert metrics.ap["0"] > 0.9 and metrics.ap["2"] > 0.9
    assert metrics.macro_ap == pytest.approx(np.mean(list(metrics.ap.values())))
    assert metrics.micro_ap > 0.8
    assert metrics.kendall_tau is not None and metrics.kendall_tau > 0.6
    named = linear_probe(X[:600], np.array(["a", "b", "c"])[y[:600]], X[600:], np.array(["a", "b", "c"])[y[600:]])
    assert named.kendall_tau is None  # names have no order
    assert named.ap["a"] == pytest.approx(metrics.ap["0"])


def test_a_probe_refuses_labels_it_cannot_score() -> None:
    X = np.zeros((4, 2))
    with pytest.raises(ValueError, match="one class only"):
        linear_probe(X, np.ones(4), X, np.ones(4))
    with pytest.raises(ValueError, match=r"test labels \[7\] never occur in training"):
        linear_probe(X, np.array([0, 1, 0, 1]), X, np.array([0, 1, 7, 1]))


# labels from CSV rows

SHOT_TIMES = {"title-a": [(0.0, 5.0), (5.0, 10.0), (10.0, 12.0), (12.0, 20.0)], "title-b": [(0.0, 4.0), (4.0, 8.0)]}


def test_rows_name_shots_by_index_or_by_time_range() -> None:
    rows = [
        ("title-a", "1", "dialogue"),
        # 11-16 covers half of shot 2 (10-12) and half of shot 3 (12-20): both count.
        ("title-a", " 11 - 16 ", "action"),
        ("title-b", "4.9-5.5", "action"),  # under half of shot 0 and of shot 1: labels nothing
        ("title-b", ".5-3", "dialogue"),
    ]
    assert labels_from_rows(rows, SHOT_TIMES) == {
        "title-a": [None, "dialogue", "action", "action"],
        "title-b": ["dialogue", None],
    }
    assert labels_from_rows([("title-a", "0", "x"), ("title-a", "0-4", "x")], SHOT_TIMES) == {
        "title-a": ["x", None, None, None]
    }


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (("title-a", "12.5-x", "action"), r"row 2 \('title-a', '12.5-x', 'action'\): '12.5-x' is neither"),
        (("title-a", "-3", "action"), r"row 2 .*neither a shot index"),
        (("title-a", "4", "action"), r"row 2 .*shot 4 is out of range; the asset has 4 shots"),
        (("title-a", "8-6", "action"), r"row 2 .*ends before it starts"),
        (("title-a", "2"), r"row 2 .*expected 3 fields"),
        (("title-a", "2", " "), r"row 2 .*label is empty"),
        (("title_a", "2", "action"), r"row 2 .*unknown asset 'title_a'. Did you mean 'title-a'\?"),
        (("title-a", "0-5", "action"), r"row 2 .*shot 0 of 'title-a' is already labelled 'dialogue' by row 1"),
    ],
)
def test_a_malformed_row_is_named(row: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        labels_from_rows([("title-a", "0", "dialogue"), row], SHOT_TIMES)
