"""Batching across videos through the engine: several assets' video embeddings waiting at once go through one
forward pass of the model, and each asset's stored value is the one it gets alone."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mediamesh.features import DedupMap, EncodedMedia, ShotEmbeddings, ShotTable, default_registry
from mediamesh.features.encoders import frame_embedder, video_embedding
from mediamesh.features.media import ffmpeg_exe
from mediamesh.features.models import resolve_model
from mediamesh.orchestrator import Mesh
from mediamesh.store import Store
from tests.models import TinyModels

DATA = Path(__file__).parents[1] / "data"


def test_assets_waiting_at_once_share_a_forward_pass(
    local_store: Store, tiny_encoders: TinyModels, prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One pass may take every caller's batch, and waits (up to a minute) for every caller to bring one.
    monkeypatch.setenv("MEDIAMESH_BATCH_WAIT_MS", "60000")
    monkeypatch.setenv("MEDIAMESH_DEVICE", "cpu")
    clips = [tmp_path / "counter.mp4", tmp_path / "fades.mp4", tmp_path / "bars.mp4"]
    shutil.copyfile(DATA / "counter.mp4", clips[0])
    shutil.copyfile(DATA / "fades.mp4", clips[1])
    bars = ["-f", "lavfi", "-i", "testsrc=duration=2:size=160x120:rate=10", "-pix_fmt", "yuv420p"]
    subprocess.run([ffmpeg_exe(), "-v", "error", *bars, str(clips[2])], check=True, timeout=60)
    mesh = Mesh(local_store, default_registry(), home=tmp_path / "home")
    assert all(r.failed == 0 for r in mesh.ingest(clips, targets=["dedup"]))

    embed, _ = frame_embedder(resolve_model("video"))  # the process's batcher for this model and these settings
    before = (embed.passes, embed.rows)
    results = mesh.ingest(clips, targets=["video_embedding"])
    assert [r.computed for r in results] == [1, 1, 1]
    passes, rows = embed.passes - before[0], embed.rows - before[1]
    assert passes == 1  # three assets' frames (fewer than a batch each) in one forward pass

    stored = 0
    for result in results:
        assert result.asset is not None

        def read(name: str, kind: type, asset: str = result.asset) -> object:
            [record] = local_store.values_for(asset, name)
            return local_store.load(record, kind)

        encode, shots, dedup = read("encode", EncodedMedia), read("shots", ShotTable), read("dedup", DedupMap)
        assert isinstance(encode, EncodedMedia) and isinstance(shots, ShotTable) and isinstance(dedup, DedupMap)
        alone = video_embedding(encode, shots, dedup)
        value = read("video_embedding", ShotEmbeddings)
        assert isinstance(value, ShotEmbeddings)
        np.testing.assert_allclose(value.data, alone.data, atol=1e-5)
        stored += int(value.meta["frames"])
    assert rows == stored
