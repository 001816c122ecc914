"""Fixtures shared by the feature tests of more than one module."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest
import torch

from mediamesh.features.mediafm import TrainResult
from tests.features.mediafm_runs import train_runs


@pytest.fixture(scope="session")
def tiny_mediafm_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TrainResult]:
    """The tiny MediaFM trained with Muon + AdamW and with AdamW alone (``tests/features/mediafm_runs.py``).

    Trained once per session: the first worker of pytest-xdist to ask trains while holding a lock in the
    session's base folder and saves the runs there; a worker asking meanwhile waits for them and loads them.
    """
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    saved = shared / "tiny-mediafm-runs.pt"
    with (shared / "tiny-mediafm-runs.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if saved.is_file():
            runs: dict[str, TrainResult] = torch.load(saved, weights_only=False)
            return runs
        runs = train_runs()
        partial = Path(f"{saved}.partial")
        torch.save(runs, partial)
        partial.replace(saved)
        return runs
