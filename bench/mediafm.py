"""MediaFM training and inference against the bare model doing the same arithmetic.

- **train**: ``features.mediafm.train`` for a few steps of the ``small`` preset (batches of 8 titles of
  256 shots, fused width 1664 as the default encoders give), with Muon + AdamW and with the AdamW
  ablation, against a bare loop over the same model shape: forward, cosine loss on every shot, backward,
  ``AdamW.step``, on one batch already stacked as a tensor. The difference is what training adds: batch
  assembly, masking, Muon's orthogonalisation, clipping, the schedule, the final checkpoint snapshot.
- **embed**: ``embed_title`` on a 512-shot title (one window) against the bare forward pass on the same
  tensor, for ``small`` and, in a full run, ``base``. ``base`` training is not measured on a CPU: one
  step of 2 titles x 512 shots takes about 25 s on 2 cores, 20 s of it Muon's Newton-Schulz iterations
  (about 1.6 TFLOP a step for ``base``'s 72 block matrices, whatever the batch size): a GPU job.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bench.context import Context
from bench.harness import BenchError, Figure, Samples, interleaved, side_by_side
from mediamesh.features.mediafm import (
    MediaFM,
    MediaFMConfig,
    TitleSequence,
    TrainOptions,
    config_preset,
    embed_title,
    synthetic_catalogue,
    train,
)

__all__ = ["run"]

FUSED_DIM, TITLE_DIM = 1664, 384
TRAIN_SHOTS, BATCH, STEPS = 256, 8, 3
EMBED_SHOTS = 512
BASE_TRAIN_NOTE = (
    "not measured on CPU: one step of 2 titles x 512 shots takes about 25 s on 2 cores, 20 s of it in Muon"
)


def run(ctx: Context) -> list[Figure]:
    torch.manual_seed(0)
    figures = _train(ctx)
    figures.append(_embed(ctx, "small", repeats=ctx.repeats(21, 5)))
    if ctx.quick:
        figures[-1].notes["base"] = "skipped in a quick run"
    else:
        figures.append(_embed(ctx, "base", repeats=5))
    return figures


def _train(ctx: Context) -> list[Figure]:
    config = config_preset("small", FUSED_DIM, TITLE_DIM)
    titles = synthetic_catalogue(BATCH, FUSED_DIM, seed=0, shots=(TRAIN_SHOTS, TRAIN_SHOTS), title_dim=TITLE_DIM)
    # Every title has a title vector, so the bare loop's title projection does the same work as training's.
    titles = [
        TitleSequence(t.asset, t.fused, t.title if t.title is not None else np.zeros(TITLE_DIM, np.float32))
        for t in titles
    ]
    losses: dict[str, list[float]] = {"muon": [], "adamw": []}

    def feature(kind: Any) -> None:
        options = TrainOptions(steps=STEPS, batch_size=BATCH, optimizer=kind, seed=0)
        result = train(titles, [], config, options, device="cpu")
        losses[kind].append(result.metrics["train_loss"])

    fused = torch.from_numpy(np.stack([t.fused for t in titles]))
    title = torch.from_numpy(np.stack([t.title for t in titles if t.title is not None]))
    model = MediaFM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def bare() -> None:
        model.train()
        for _ in range(STEPS):
            out = model(fused, title)
            loss = (1 - F.cosine_similarity(out.reconstruction, fused, dim=-1)).mean()
            optimizer.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            optimizer.step()

    muon_times, adamw_times, bare_times = interleaved(
        [lambda: feature("muon"), lambda: feature("adamw"), bare], repeats=ctx.repeats(7, 2), warmup=1
    )
    if len(set(losses["muon"])) != 1 or len(set(losses["adamw"])) != 1:
        raise BenchError(f"training with a fixed seed gave different losses between runs: {losses}")
    shots = STEPS * BATCH * TRAIN_SHOTS
    what = (
        f"train(small preset, {STEPS} steps of {BATCH} titles x {TRAIN_SHOTS} shots, fused {FUSED_DIM}, CPU), "
        "model set-up and final checkpoint included"
    )
    baseline = f"{STEPS} x (MediaFM forward, cosine loss on all shots, backward, AdamW.step) on one stacked batch"
    figures = []
    for kind, times in (("muon", muon_times), ("adamw", adamw_times)):
        samples = Samples(times, bare_times)
        figures.append(
            Figure(
                name="mediafm-train-small" + ("" if kind == "muon" else "-adamw"),
                description=f"{what}, optimizer={kind}",
                target_label=f'features.mediafm.train(titles, [], small, steps={STEPS}, optimizer="{kind}")',
                baseline_label=baseline,
                samples=samples,
                max_ratio=1.3,
                notes={
                    "shots_per_s": shots / samples.target_median,
                    "baseline_shots_per_s": shots / samples.baseline_median,
                    "device": "CPU",
                    "base_train": BASE_TRAIN_NOTE,
                },
            )
        )
    return figures


def _embed(ctx: Context, preset: str, *, repeats: int) -> Figure:
    config: MediaFMConfig = config_preset(preset, FUSED_DIM, TITLE_DIM)
    model = MediaFM(config).eval()
    (title,) = synthetic_catalogue(1, FUSED_DIM, seed=1, shots=(EMBED_SHOTS, EMBED_SHOTS), title_dim=TITLE_DIM)
    vector = title.title if title.title is not None else np.zeros(TITLE_DIM, np.float32)
    fused_tensor, title_tensor = torch.from_numpy(title.fused)[None], torch.from_numpy(vector)[None]
    expected = embed_title(model, title.fused, vector)

    def feature() -> None:
        if embed_title(model, title.fused, vector).shape != expected.shape:
            raise BenchError("embed_title changed shape between runs")

    def bare() -> None:
        with torch.inference_mode():
            model(fused_tensor, title_tensor)

    with torch.inference_mode():
        bare_out = model(fused_tensor, title_tensor).hidden[0].numpy()
    if not np.allclose(expected, bare_out, atol=1e-5):
        raise BenchError("embed_title of a one-window title differs from the bare forward pass")
    samples = side_by_side(feature, bare, repeats=repeats, warmup=1)
    return Figure(
        name=f"mediafm-embed-{preset}",
        description=f"embed_title ({preset} preset, CPU) of one {EMBED_SHOTS}-shot title, fused {FUSED_DIM}",
        target_label="features.mediafm.embed_title(model, fused, title)",
        baseline_label="model(fused tensor, title tensor) under torch.inference_mode()",
        samples=samples,
        max_ratio=1.1,
        notes={
            "titles_per_s": 1 / samples.target_median,
            "baseline_titles_per_s": 1 / samples.baseline_median,
            "shots_per_s": EMBED_SHOTS / samples.target_median,
            "device": "CPU",
            **({"base_train": BASE_TRAIN_NOTE} if preset == "base" else {}),
        },
    )
