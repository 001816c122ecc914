"""Decode once: in one run, the encode's frames are decoded in a single pass for dedup, the video embedding and
the thumbnails, and the values are exactly those each feature computes with a pass of its own."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from mediamesh.features import DedupMap, EncodedMedia, ShotEmbeddings, ShotTable, default_registry
from mediamesh.features import frames as shared_frames
from mediamesh.features.dedup import dedup
from mediamesh.features.encoders import video_embedding
from mediamesh.features.thumbnails import thumbnails
from mediamesh.features.values import ShotThumbnails
from mediamesh.orchestrator import Mesh
from mediamesh.store import Store
from tests.models import TinyModels

DATA = Path(__file__).parents[1] / "data"
READERS = ["dedup", "video_embedding", "thumbnails"]


def test_one_decoding_pass_serves_every_reader_of_the_encode(
    local_store: Store, lite_encoders: TinyModels, prefect_api: str, tmp_path: Path
) -> None:
    clip = tmp_path / "fades.mp4"
    shutil.copyfile(DATA / "fades.mp4", clip)
    mesh = Mesh(local_store, default_registry(), home=tmp_path / "home")
    shared_frames.PASSES.clear()
    [result] = mesh.ingest([clip], targets=READERS)
    asset = result.asset
    assert asset is not None and result.failed == 0, result.errors

    def read(name: str, kind: type) -> object:
        [record] = local_store.values_for(asset, name)
        return local_store.load(record, kind)

    encode = read("encode", EncodedMedia)
    assert isinstance(encode, EncodedMedia)
    assert shared_frames.PASSES[encode.path.name] == 1
    # Nothing is kept once the run is over: each feature called now decodes again (three passes below).
    shared_frames.PASSES.clear()
    shots, stored_dedup = read("shots", ShotTable), read("dedup", DedupMap)
    assert isinstance(shots, ShotTable) and isinstance(stored_dedup, DedupMap)
    assert dedup(encode, shots) == stored_dedup
    embeddings = read("video_embedding", ShotEmbeddings)
    assert isinstance(embeddings, ShotEmbeddings)
    np.testing.assert_array_equal(video_embedding(encode, shots, stored_dedup).data, embeddings.data)
    sprite = read("thumbnails", ShotThumbnails)
    assert isinstance(sprite, ShotThumbnails)
    fresh = thumbnails(encode, shots, stored_dedup)
    try:
        assert fresh.path.read_bytes() == sprite.path.read_bytes()
    finally:  # called directly, not by the engine, which would remove its scratch folder once stored
        shutil.rmtree(fresh.path.parent, ignore_errors=True)
    assert shared_frames.PASSES[encode.path.name] == 3
