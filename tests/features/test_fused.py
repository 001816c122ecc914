"""The fused tri-modal vector, on hand-made embeddings and on the encoders' own output."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mediamesh.features.encode import encode
from mediamesh.features.encoders import audio_embedding, text_embedding, video_embedding
from mediamesh.features.errors import ExecutionError
from mediamesh.features.fused import fused
from mediamesh.features.shots import shots
from mediamesh.features.spec import spec_of
from mediamesh.features.values import Cue, DedupMap, EncodedMedia, ShotEmbeddings, ShotTable, SourceMedia, TimedText
from tests.models import TinyModels

DATA = Path(__file__).resolve().parents[1] / "data"


def embeddings(data: np.ndarray, **meta: object) -> ShotEmbeddings:
    return ShotEmbeddings(np.ascontiguousarray(data, np.float32), dict(meta))


@pytest.fixture(scope="module")
def rotate() -> Iterator[tuple[EncodedMedia, ShotTable]]:
    original = SourceMedia(asset="rotate", path=DATA / "issue-134-rotate.mp4")
    media = encode(original)
    yield media, shots(original, media)
    shutil.rmtree(media.path.parent, ignore_errors=True)


def test_rows_are_unit_and_each_modality_weighs_the_same() -> None:
    rng = np.random.default_rng(0)
    video, audio, text = rng.normal(size=(5, 16)) * 10, rng.normal(size=(5, 32)) * 0.01, rng.normal(size=(5, 8))
    text[[1, 3]] = 0
    value = fused(embeddings(video), embeddings(audio), embeddings(text))
    assert value.data.shape == (5, 56)
    assert value.data.dtype == np.float32
    assert value.data.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(value.data, axis=1), 1.0, atol=1e-6)
    v, a, t = value.data[:, :16], value.data[:, 16:48], value.data[:, 48:]
    assert not t[[1, 3]].any()
    for shot in range(5):
        present = 2 if shot in (1, 3) else 3
        for part in (v, a) if shot in (1, 3) else (v, a, t):
            assert np.linalg.norm(part[shot]) == pytest.approx(1 / np.sqrt(present), abs=1e-6)
    assert value.meta["dims"] == {"video": 16, "audio": 32, "text": 8}
    assert value.meta["zero_rows"] == {"video": 0, "audio": 0, "text": 2}


def test_a_shot_with_nothing_stays_zero() -> None:
    zeros = embeddings(np.zeros((2, 4)))
    value = fused(zeros, zeros, embeddings(np.array([[0, 0, 0], [1, 0, 0]])))
    assert not value.data[0].any()
    np.testing.assert_array_equal(value.data[1], [0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0])


def test_modalities_must_agree_on_the_shots() -> None:
    with pytest.raises(ExecutionError, match=r"fused: the modalities disagree on the number of shots \(video 3, "):
        fused(embeddings(np.ones((3, 4))), embeddings(np.ones((3, 4))), embeddings(np.ones((2, 4))))


def test_non_finite_input_is_an_error() -> None:
    bad = np.ones((2, 4))
    bad[1, 2] = np.nan
    with pytest.raises(ExecutionError, match="fused: the audio embedding has non-finite values"):
        fused(embeddings(np.ones((2, 4))), embeddings(bad), embeddings(np.ones((2, 4))))
    with pytest.raises(ExecutionError, match=r"must be \(shots, D\), got shape \(4,\)"):
        fused(embeddings(np.ones(4)), embeddings(np.ones((4, 1))), embeddings(np.ones((4, 1))))


def test_fused_of_the_encoders(tiny_encoders: TinyModels, rotate: tuple[EncodedMedia, ShotTable]) -> None:
    media, table = rotate
    dedup = DedupMap(tuple(range(len(table))), method="none")
    timed = TimedText(cues=(Cue(4.0, 5.0, "Look out!"),), per_shot=((), (0,), ()), origin="sidecar:x.srt")
    video, audio, text = (
        video_embedding(media, table, dedup),
        audio_embedding(media, table, dedup),
        text_embedding(timed),
    )
    value = fused(video, audio, text)
    assert value.data.shape == (3, 16 + 32 + 384)
    np.testing.assert_allclose(np.linalg.norm(value.data, axis=1), 1.0, atol=1e-5)
    text_slice = value.data[:, 48:]
    assert [bool(row.any()) for row in text_slice] == [bool(row.any()) for row in text.data] == [False, True, False]
    assert value.meta["fingerprints"]["video"] == video.meta["fingerprint"]


def test_fused_is_a_cpu_feature_of_the_three_embeddings() -> None:
    spec = spec_of(fused)
    assert spec is not None
    assert (spec.ref, spec.resources, spec.input_names, spec.output, spec.model) == (
        "fused@1",
        "cpu",
        ("video_embedding", "audio_embedding", "text_embedding"),
        ShotEmbeddings,
        None,
    )
