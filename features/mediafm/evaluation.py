"""How good MediaFM's embeddings are: masked-shot retrieval against a neighbour baseline, and linear probes
on frozen embeddings with labels read from CSV rows.

Retrieval: mask one shot, reconstruct it from its context, and rank all of the title's true fused vectors
by cosine similarity to the reconstruction; the rank of the masked shot's own vector gives top-1, top-5
and the mean reciprocal rank. A candidate ties with the true vector only when their similarities are
exactly equal, and ties count in the true vector's favour (a duplicated shot is an equally right answer).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mediamesh.features.errors import did_you_mean
from mediamesh.features.mediafm.data import TitleSequence
from mediamesh.features.mediafm.inference import plan_windows
from mediamesh.features.mediafm.model import MediaFM, autocast, eval_mode

__all__ = [
    "ProbeMetrics",
    "RetrievalMetrics",
    "labels_from_rows",
    "linear_probe",
    "masked_shot_retrieval",
    "neighbour_baseline",
]

Array = np.ndarray[Any, Any]

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_SHOT = re.compile(r"\d+")
_RANGE = re.compile(rf"({_NUMBER})\s*-\s*({_NUMBER})")


@dataclass(frozen=True)
class RetrievalMetrics:
    """Over ``n`` masked shots: the share whose true vector ranked first, in the top five, and the MRR."""

    top1: float
    top5: float
    mrr: float
    n: int


@dataclass(frozen=True)
class ProbeMetrics:
    """Average precision per class (for binary labels, of the positive class only), its micro and macro
    averages, and Kendall's tau between predicted scores and labels (binary or numeric labels only)."""

    ap: dict[str, float]
    micro_ap: float
    macro_ap: float
    kendall_tau: float | None
    n_train: int
    n_test: int


def masked_shot_retrieval(
    model: MediaFM,
    titles: Sequence[TitleSequence],
    *,
    window: int | None = None,
    shots_per_title: int | None = None,
    batch_size: int = 32,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> RetrievalMetrics:
    """Masked-shot retrieval of ``model`` over every shot of ``titles`` (or ``shots_per_title`` of each,
    drawn with ``seed``). A shot is masked alone, in the window where it is most central (as
    :func:`~features.mediafm.inference.embed_title` would place it). Titles of one shot are skipped."""
    config = model.config
    window = config.max_shots if window is None else window
    if not 1 <= window <= config.max_shots:
        raise ValueError(f"masked_shot_retrieval: window must be 1 to {config.max_shots}, got {window}")
    if device is not None:
        model.to(device)
    where = next(model.parameters()).device
    ranks: list[Array] = []
    with eval_mode(model):
        for title, chosen in _chosen_shots(titles, shots_per_title, seed):
            fused = np.asarray(title.fused, np.float32)
            starts, owner = plan_windows(len(fused), window)
            length = min(window, len(fused))
            source = torch.from_numpy(fused).to(where)
            vector = None if title.title is None else torch.as_tensor(np.asarray(title.title, np.float32), device=where)
            predictions = np.empty((len(chosen), config.fused_dim), np.float32)
            for first in range(0, len(chosen), batch_size):
                shots = chosen[first : first + batch_size]
                begin = [starts[owner[i]] for i in shots]
                batch = torch.stack([source[b : b + length] for b in begin])
                masked = torch.zeros(len(shots), length, dtype=torch.bool, device=where)
                rows = torch.arange(len(shots), device=where)
                masked[rows, torch.as_tensor(shots - np.asarray(begin), device=where)] = True
                with (
                    torch.inference_mode(),
                    autocast(where),
                ):
                    out = model(batch, None if vector is None else vector.expand(len(shots), -1), masked=masked)
                predictions[first : first + len(shots)] = out.reconstruction[masked].float().cpu().numpy()
            ranks.append(_ranks(predictions, fused, chosen))
    return _retrieval_metrics(ranks)


def neighbour_baseline(
    titles: Sequence[TitleSequence], *, shots_per_title: int | None = None, seed: int = 0
) -> RetrievalMetrics:
    """Masked-shot retrieval with the mean of the shot's neighbours (i-1 and i+1; the one neighbour at either
    end) as the prediction, over the same shots :func:`masked_shot_retrieval` uses with the same arguments."""
    ranks: list[Array] = []
    for title, chosen in _chosen_shots(titles, shots_per_title, seed):
        fused = np.asarray(title.fused, np.float32)
        last = len(fused) - 1
        previous, following = fused[np.maximum(chosen - 1, 0)], fused[np.minimum(chosen + 1, last)]
        # At an end, both "neighbours" are the one real neighbour, whose mean is itself.
        previous = np.where((chosen == 0)[:, None], following, previous)
        following = np.where((chosen == last)[:, None], previous, following)
        ranks.append(_ranks((previous + following) / 2, fused, chosen))
    return _retrieval_metrics(ranks)


def linear_probe(
    train_X: Array, train_y: Array, test_X: Array, test_y: Array, *, C: float = 1.0, max_iter: int = 2000
) -> ProbeMetrics:
    """A logistic-regression probe (standardised features; one-vs-rest for more than two classes) fitted on
    frozen embeddings ``train_X`` (n, D) with labels ``train_y`` (n,), scored on the test split."""
    from scipy.stats import kendalltau  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.metrics import average_precision_score  # type: ignore[import-untyped]
    from sklearn.multiclass import OneVsRestClassifier  # type: ignore[import-untyped]
    from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    train_X, test_X = np.asarray(train_X, np.float64), np.asarray(test_X, np.float64)
    train_y, test_y = np.asarray(train_y), np.asarray(test_y)
    for name, X, y in (("train", train_X, train_y), ("test", test_X, test_y)):
        if X.ndim != 2 or y.shape != (len(X),) or len(X) == 0:
            raise ValueError(f"linear_probe: {name}_X must be (n >= 1, D) with {name}_y (n,), got {X.shape}, {y.shape}")
    if train_X.shape[1] != test_X.shape[1]:
        raise ValueError(f"linear_probe: train and test widths differ ({train_X.shape[1]} and {test_X.shape[1]})")
    classes = np.unique(train_y)
    if len(classes) < 2:
        raise ValueError(f"linear_probe: the training labels hold one class only ({classes.tolist()})")
    unseen = sorted(set(np.unique(test_y).tolist()) - set(classes.tolist()))
    if unseen:
        raise ValueError(f"linear_probe: test labels {unseen} never occur in training")
    probe = make_pipeline(StandardScaler(), OneVsRestClassifier(LogisticRegression(C=C, max_iter=max_iter)))
    probe.fit(train_X, train_y)
    scores = np.asarray(probe.predict_proba(test_X))
    truth = test_y[:, None] == np.asarray(probe.classes_)[None, :]
    if len(classes) == 2:
        ap = {str(classes[1]): float(average_precision_score(truth[:, 1], scores[:, 1]))}
        micro = macro = next(iter(ap.values()))
        tau = kendalltau(scores[:, 1], truth[:, 1]).statistic
    else:
        present = truth.any(axis=0)
        ap = {
            str(label): float(average_precision_score(truth[:, k], scores[:, k]))
            for k, label in enumerate(classes)
            if present[k]
        }
        macro = float(np.mean(list(ap.values())))
        micro = float(average_precision_score(truth[:, present], scores[:, present], average="micro"))
        numeric = np.issubdtype(classes.dtype, np.number)
        tau = kendalltau(scores @ classes.astype(np.float64), test_y.astype(np.float64)).statistic if numeric else None
    return ProbeMetrics(
        ap=ap,
        micro_ap=micro,
        macro_ap=macro,
        kendall_tau=None if tau is None or np.isnan(tau) else float(tau),
        n_train=len(train_X),
        n_test=len(test_X),
    )


def labels_from_rows(
    rows: Iterable[Sequence[str]], shot_times: Mapping[str, Sequence[tuple[float, float]]]
) -> dict[str, list[str | None]]:
    """Per-shot labels, for each asset the rows name, from CSV rows ``(asset, shot_or_range, label)``.

    ``shot_or_range`` is a shot index (``3``) or a time range in seconds (``12.5-20``); a shot takes a
    range's label when it overlaps the range for at least half of its duration (``shot_times[asset]``
    holds each shot's ``(start, end)`` seconds). Unlabelled shots are None. A malformed row, an unknown
    asset or shot, or a shot given two different labels raises ValueError naming the row (numbered from 1).
    """
    labels: dict[str, list[str | None]] = {}
    origin: dict[tuple[str, int], int] = {}
    for number, row in enumerate(rows, start=1):
        where = f"row {number} {tuple(row)!r}"
        if len(row) != 3:
            raise ValueError(f"{where}: expected 3 fields (asset, shot or time range, label), got {len(row)}")
        asset, spec, label = (str(part).strip() for part in row)
        if not label:
            raise ValueError(f"{where}: the label is empty")
        if asset not in shot_times:
            raise ValueError(f"{where}: unknown asset {asset!r}.{did_you_mean(asset, shot_times)}")
        times = shot_times[asset]
        for shot in _shots_of(spec, times, where):
            per_shot = labels.setdefault(asset, [None] * len(times))
            if per_shot[shot] is not None and per_shot[shot] != label:
                raise ValueError(
                    f"{where}: shot {shot} of {asset!r} is already labelled {per_shot[shot]!r} "
                    f"by row {origin[asset, shot]}"
                )
            per_shot[shot] = label
            origin.setdefault((asset, shot), number)
    return labels


def _shots_of(spec: str, times: Sequence[tuple[float, float]], where: str) -> list[int]:
    if _SHOT.fullmatch(spec):
        shot = int(spec)
        if shot >= len(times):
            raise ValueError(f"{where}: shot {shot} is out of range; the asset has {len(times)} shots")
        return [shot]
    found = _RANGE.fullmatch(spec)
    if found is None:
        raise ValueError(f"{where}: {spec!r} is neither a shot index (3) nor a time range in seconds (12.5-20)")
    start, end = float(found.group(1)), float(found.group(2))
    if end <= start:
        raise ValueError(f"{where}: the time range {spec!r} ends before it starts")
    chosen = []
    for shot, (shot_start, shot_end) in enumerate(times):
        duration = shot_end - shot_start
        overlap = min(end, shot_end) - max(start, shot_start)
        # A zero-length shot has no duration to halve: it is in the range when its instant is.
        inside = start <= shot_start < end if duration <= 0 else overlap >= duration / 2
        if inside:
            chosen.append(shot)
    return chosen


def _chosen_shots(
    titles: Sequence[TitleSequence], shots_per_title: int | None, seed: int
) -> list[tuple[TitleSequence, Array]]:
    rng = np.random.default_rng(seed)
    chosen = []
    for title in titles:
        count = len(title.fused)
        if count < 2:
            continue
        if shots_per_title is None or shots_per_title >= count:
            chosen.append((title, np.arange(count)))
        else:
            chosen.append((title, np.sort(rng.choice(count, size=shots_per_title, replace=False))))
    return chosen


def _ranks(predictions: Array, fused: Array, shots: Array) -> Array:
    """The 1-based rank of each masked shot's true vector among all of the title's, by cosine similarity."""
    similarity = _unit(predictions) @ _unit(fused).T
    true = similarity[np.arange(len(shots)), shots]
    return np.asarray(1 + (similarity > true[:, None]).sum(axis=1))


def _unit(rows: Array) -> Array:
    rows = np.asarray(rows, np.float64)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.asarray(np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0))


def _retrieval_metrics(ranks: list[Array]) -> RetrievalMetrics:
    if not ranks:
        raise ValueError("masked-shot retrieval: no title has two or more shots")
    every = np.concatenate(ranks)
    return RetrievalMetrics(
        top1=float(np.mean(every == 1)),
        top5=float(np.mean(every <= 5)),
        mrr=float(np.mean(1.0 / every)),
        n=len(every),
    )
