"""The text embedding of each shot's dialogue, with the shipped MiniLM; and what every encoder declares."""

from __future__ import annotations

import numpy as np
import pytest

from mediamesh.features.encoders import audio_embedding, text_embedding, video_embedding
from mediamesh.features.models import load_text_model, resolve_model
from mediamesh.features.spec import spec_of
from mediamesh.features.values import (
    Cue,
    ShotEmbeddings,
    TimedText,
)
from tests.features.embeddings import assert_unit_rows, assert_value
from tests.models import TinyModels


def timed(texts: list[str | None]) -> TimedText:
    """One cue per shot with text, at one-second shots."""
    cues: list[Cue] = []
    per_shot: list[tuple[int, ...]] = []
    for shot, text in enumerate(texts):
        if text is None:
            per_shot.append(())
        else:
            cues.append(Cue(shot + 0.1, shot + 0.9, text))
            per_shot.append((len(cues) - 1,))
    return TimedText(cues=tuple(cues), per_shot=tuple(per_shot), origin="sidecar:test.srt", language="en")


TEXTS = [None, "Where are you going?", None, "To the lighthouse,\nbefore the storm.", "Where are you going?", None]


def test_text_embedding_is_zero_exactly_where_there_is_no_text(tiny_encoders: TinyModels) -> None:
    value = text_embedding(timed(TEXTS))
    assert_value(value, (6, 384))
    with_text = np.array([text is not None for text in TEXTS])
    assert not value.data[~with_text].any()
    assert_unit_rows(value.data[with_text])
    assert np.array_equal(value.data[1], value.data[4])
    assert value.meta["shots_with_text"] == 3
    assert value.meta["distinct_texts"] == 2
    assert (value.meta["kind"], value.meta["origin"], value.meta["language"]) == (
        "sentence-transformer",
        "sidecar:test.srt",
        "en",
    )


def test_text_embedding_is_the_sentence_embedding_of_the_shot_text(tiny_encoders: TinyModels) -> None:
    value = text_embedding(timed(TEXTS))
    model = load_text_model(resolve_model("text"))
    expected = model.encode(["To the lighthouse, before the storm."], normalize_embeddings=True)
    np.testing.assert_allclose(value.data[3], expected[0], atol=1e-5)


def test_text_batched_equals_one_by_one(tiny_encoders: TinyModels, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [f"shot {i}: {'a much longer line of dialogue ' * (i % 4)}the end" for i in range(9)]
    batched = text_embedding(timed([*texts, None])).data
    monkeypatch.setenv("MEDIAMESH_TEXT_BATCH", "1")
    single = text_embedding(timed([*texts, None])).data
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_title_without_text_is_all_zeros(tiny_encoders: TinyModels) -> None:
    value = text_embedding(TimedText(cues=(), per_shot=((), (), ()), origin="none"))
    assert_value(value, (3, 384))
    assert not value.data.any()
    assert value.meta["shots_with_text"] == 0


def test_text_in_the_lite_set_is_still_minilm(lite_encoders: TinyModels) -> None:
    value = text_embedding(timed(["hello"]))
    assert value.meta["kind"] == "sentence-transformer"
    assert value.data.shape == (1, 384)


def test_encoders_are_gpu_features_with_a_model() -> None:
    for fn, inputs, params in [
        (video_embedding, ("encode", "shots", "dedup"), {"frames_per_shot": 4}),
        (audio_embedding, ("encode", "shots", "dedup"), {}),
        (text_embedding, ("timed_text",), {}),
    ]:
        spec = spec_of(fn)
        assert spec is not None
        assert (spec.ref, spec.resources, spec.input_names, dict(spec.params)) == (
            f"{fn.__name__}@2",
            "gpu",
            inputs,
            params,
        )
        assert spec.output is ShotEmbeddings
        assert spec.model is not None
