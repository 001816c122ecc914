"""The tri-modal pipeline through the mesh with real (tiny, random-initialised) CLIP and wav2vec2 models
and the shipped MiniLM: fused vectors per shot, model swaps, broken subtitles."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mediamesh.features import default_registry
from mediamesh.features.models import directory_fingerprint
from mediamesh.orchestrator import Mesh, plan
from mediamesh.store import Store, StoreSettings, hash_file, open_store
from tests.models import TinyModels

DATA = Path(__file__).parents[1] / "data"
MEDIAMESH = str(Path(sys.executable).parent / "mediamesh")

SRT = """1
00:00:01,000 --> 00:00:03,000
A big rabbit wakes up.

2
00:00:16,000 --> 00:00:18,000
Three bullies watch from a tree.
"""


def _clip_with_sidecar(tmp_path: Path, name: str) -> Path:
    video = tmp_path / name
    shutil.copyfile(DATA / name, video)
    video.with_suffix(".en.srt").write_text(SRT)
    return video


@pytest.mark.parametrize("name", ["bigbuckbunny.mp4", "big_buck_bunny_0_30.webm"])
def test_fused_is_unit_rows_with_text_zero_exactly_where_no_cue_overlaps(
    name: str, tiny_encoders: TinyModels, database_url: str, prefect_api: str, tmp_path: Path
) -> None:
    video = _clip_with_sidecar(tmp_path, name)
    env = {**os.environ, "MEDIAMESH_HOME": str(tmp_path / "home"), "MEDIAMESH_DATABASE_URL": database_url}

    def mediamesh(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([MEDIAMESH, *args], env=env, capture_output=True, text=True, timeout=300)

    ingest = mediamesh("ingest", str(video))
    assert ingest.returncode == 0, ingest.stderr
    fused_file, text_file = tmp_path / "fused.npy", tmp_path / "text.npy"
    assert mediamesh("read", str(video), "fused", "--out", str(fused_file)).returncode == 0
    assert mediamesh("read", str(video), "text_embedding", "--out", str(text_file)).returncode == 0
    # The shots and the cues over them, as stored (test_cli.py reads both through the CLI as JSON).
    with open_store(StoreSettings(home=tmp_path / "home", database_url=database_url)) as store:
        mesh = Mesh(store, default_registry(), home=tmp_path / "home")
        per_shot = list(mesh.read(hash_file(video), "timed_text")[1].per_shot)
        shot_count = len(mesh.read(hash_file(video), "shots")[1])

    fused, text = np.load(fused_file), np.load(text_file)
    assert fused.dtype == np.float32
    assert fused.shape[0] == shot_count == len(per_shot)
    np.testing.assert_allclose(np.linalg.norm(fused, axis=1), 1.0, rtol=1e-5)
    text_part = fused[:, -text.shape[1] :]
    no_text = [i for i, cues in enumerate(per_shot) if not cues]
    with_text = [i for i, cues in enumerate(per_shot) if cues]
    assert with_text, "the sidecar's cues overlap at least one shot"
    assert np.all(text_part[no_text] == 0.0)
    assert np.all(np.linalg.norm(text_part[with_text], axis=1) > 0.1)
    if name.endswith(".webm"):  # VP8 + Vorbis, four shots; cues at 1-3 s and 16-18 s
        assert (shot_count, with_text, no_text) == (4, [0, 2], [1, 3])


def test_swapping_the_video_model_recomputes_only_video_and_what_reads_it(
    tiny_encoders: TinyModels, local_store: Store, prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mesh = Mesh(local_store, default_registry(), home=tmp_path)
    video = _clip_with_sidecar(tmp_path, "bigbuckbunny.mp4")
    [first] = mesh.ingest([video])
    assert (first.computed, first.failed) == (len(mesh.default_targets()), 0), first.errors
    assert first.asset is not None
    old_record, old_video = mesh.read(first.asset, "video_embedding")

    monkeypatch.setenv("MEDIAMESH_VIDEO_MODEL", str(tiny_encoders.clip_other))
    mesh = Mesh(local_store, default_registry(), home=tmp_path)
    missing = {v.feature for v in plan(local_store, mesh.registry, [first.asset], mesh.default_targets()).missing}
    assert missing == {"video_embedding", "fused"}
    [second] = mesh.ingest([video])
    assert (second.computed, second.reused, second.failed) == (2, len(mesh.default_targets()) - 2, 0)

    new_record, new_video = mesh.read(first.asset, "video_embedding")
    assert new_record.key != old_record.key
    assert new_record.model_fingerprint != old_record.model_fingerprint
    assert not np.allclose(new_video.data, old_video.data)
    records = local_store.values_for(first.asset, "video_embedding")
    assert {r.key for r in records} == {old_record.key, new_record.key}  # the old value stays readable
    assert np.array_equal(local_store.load(old_record, type(old_video)).data, old_video.data)
    for name in ("encode", "shots", "dedup", "audio_embedding", "timed_text", "text_embedding", "title_embedding"):
        assert len(local_store.values_for(first.asset, name)) == 1


def test_lite_and_model_embeddings_never_share_an_identity(
    tiny_encoders: TinyModels, local_store: Store, prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    video = tmp_path / "counter.mp4"
    shutil.copyfile(DATA / "counter.mp4", video)
    [models] = Mesh(local_store, default_registry(), home=tmp_path).ingest([video])
    monkeypatch.setenv("MEDIAMESH_ENCODERS", "lite")
    [lite] = Mesh(local_store, default_registry(), home=tmp_path).ingest([video])
    assert models.asset == lite.asset
    assert lite.computed == 3  # video and audio embeddings, and fused; text stays the shipped MiniLM
    assert models.asset is not None
    fingerprints = {r.model_fingerprint for r in local_store.values_for(models.asset, "video_embedding")}
    assert fingerprints == {"lite-video-v1", directory_fingerprint(tiny_encoders.clip)}
    assert len({r.key for r in local_store.values_for(models.asset, "fused")}) == 2


def test_a_broken_subtitle_file_fails_its_text_features_only(
    tiny_encoders: TinyModels, local_store: Store, prefect_api: str, tmp_path: Path
) -> None:
    video = tmp_path / "bunny.mp4"
    shutil.copyfile(DATA / "bigbuckbunny.mp4", video)
    (tmp_path / "bunny.srt").write_bytes(b"1\n00:00:01 --> garbage\nno times here\n\x00\x01\x02")
    mesh = Mesh(local_store, default_registry(), home=tmp_path)
    [result] = mesh.ingest([video])
    assert result.asset is not None
    assert result.failed == 1
    [message] = result.errors
    assert "bunny.srt" in message
    assert "timed_text@1" in message
    stored = {r.feature for r in local_store.values_for(result.asset)}
    assert stored == {"encode", "shots", "dedup", "video_embedding", "audio_embedding", "title_embedding", "thumbnails"}
    [attempt] = local_store.attempts_for(result.asset)
    assert (attempt.feature, attempt.retryable) == ("timed_text", False)
