"""The tiny MediaFM the training and evaluation tests share, trained once per test session."""

from __future__ import annotations

from mediamesh.features.mediafm import MediaFMConfig, TrainOptions, TrainResult, synthetic_catalogue, train

FUSED, TITLE = 32, 8
TINY = MediaFMConfig(fused_dim=FUSED, title_dim=TITLE, hidden=64, layers=2, heads=4, ff=128, max_shots=128, dropout=0.0)


def train_runs() -> dict[str, TrainResult]:
    """The tiny model trained for 200 steps with Muon + AdamW and with AdamW alone, same seed and data, on a
    catalogue with scene structure; validated on six other titles."""
    train_titles = synthetic_catalogue(48, FUSED, seed=1, title_dim=TITLE)
    val_titles = synthetic_catalogue(6, FUSED, seed=2, title_dim=TITLE)
    return {
        kind: train(
            train_titles,
            val_titles,
            TINY,
            TrainOptions(steps=200, lr=3e-3, muon_lr=0.05, optimizer=kind, seed=0),
            device="cpu",
        )
        for kind in ("muon", "adamw")
    }
