"""The text embedding of each shot's dialogue, with the shipped MiniLM; and what every encoder declares."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mediamesh.features.encoders import audio_embedding, text_embedding, video_embedding
from mediamesh.features.models import (
    ModelUnavailableError,
    load_text_model,
    resolve_model,
    text_dimension,
    text_width,
)
from mediamesh.features.spec import spec_of
from mediamesh.features.title import title_embedding
from mediamesh.features.values import (
    Cue,
    ShotEmbeddings,
    TimedText,
    TitleMetadata,
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


def _without_weights(model: Path, to: Path) -> Path:
    """A copy of a sentence-transformers model's configuration without its weights: nothing can load it."""
    for name in ("modules.json", "config.json", "config_sentence_transformers.json", "1_Pooling/config.json"):
        (to / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(model / name, to / name)
    return to


def test_a_title_without_text_gets_its_zeros_without_the_model(
    tiny_encoders: TinyModels, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    loaded = text_embedding(TimedText(cues=(), per_shot=((), (), ()), origin="none"))
    monkeypatch.setenv("MEDIAMESH_TEXT_MODEL", str(_without_weights(tiny_encoders.minilm, tmp_path / "minilm")))
    ref = resolve_model("text")
    with pytest.raises(ModelUnavailableError, match="cannot load model"):
        load_text_model(ref)
    value = text_embedding(TimedText(cues=(), per_shot=((), (), ()), origin="none"))
    assert (value.data.shape, value.data.dtype, value.data.any()) == ((3, 384), np.float32, False)
    assert value.meta == {**loaded.meta, "model": str(tmp_path / "minilm"), "fingerprint": ref.fingerprint}
    assert value.meta["device"] == "cpu"
    # A title with text still needs the model, and says so.
    with pytest.raises(ModelUnavailableError, match="cannot load model"):
        text_embedding(timed(["hello"]))


def test_a_title_without_metadata_gets_its_title_embedding_zeros_without_the_model(
    tiny_encoders: TinyModels, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    loaded = title_embedding(TitleMetadata(title="Big Buck Bunny"))
    assert loaded.meta["present"] is True and loaded.data.any()
    monkeypatch.setenv("MEDIAMESH_TEXT_MODEL", str(_without_weights(tiny_encoders.minilm, tmp_path / "minilm")))
    ref = resolve_model("text")
    value = title_embedding(TitleMetadata())
    assert (value.data.shape, value.data.dtype, value.data.any()) == ((384,), np.float32, False)
    expected = {**loaded.meta, "model": str(tmp_path / "minilm"), "fingerprint": ref.fingerprint, "present": False}
    del expected["text"]
    assert value.meta == expected
    with pytest.raises(ModelUnavailableError, match="cannot load model"):
        title_embedding(TitleMetadata(title="Big Buck Bunny"))


def test_the_width_read_from_the_files_is_the_loaded_models(
    tiny_encoders: TinyModels, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert text_width(resolve_model("text")) == text_dimension(load_text_model(resolve_model("text"))) == 384
    copy = _without_weights(tiny_encoders.minilm, tmp_path / "minilm")
    monkeypatch.setenv("MEDIAMESH_TEXT_MODEL", str(copy))
    pooling = copy / "1_Pooling" / "config.json"
    legacy = json.loads(pooling.read_text())
    for written, width in [
        ({**legacy, "pooling_mode_max_tokens": True}, 768),
        ({"embedding_dimension": 384, "pooling_mode": ["mean", "max", "cls"]}, 1152),
        ({"embedding_dimension": 384, "pooling_mode": "lasttoken"}, 384),
        ({"word_embedding_dimension": 384}, None),  # no mode named: the library's default decides, so load it
        ({"pooling_mode": "mean"}, None),
    ]:
        pooling.write_text(json.dumps(written))
        assert text_width(resolve_model("text")) == width, written
    (copy / "modules.json").unlink()
    assert text_width(resolve_model("text")) is None


def test_encoders_without_input_import_no_model_library(tiny_models: TinyModels, tmp_path: Path) -> None:
    """In a process of its own: text and audio of a title with neither leave transformers and torch unimported."""
    script = """
import sys
from pathlib import Path
from mediamesh.features.encoders import audio_embedding, text_embedding
from mediamesh.features.title import title_embedding
from mediamesh.features.values import DedupMap, EncodedMedia, ShotTable, TimedText, TitleMetadata
encode = EncodedMedia(path=Path("gone.mp4"), width=64, height=36, fps=24.0, frame_count=48, duration=2.0,
                      has_audio=False)
table = ShotTable.from_frames(24.0, [(0, 24), (24, 48)])
audio = audio_embedding(encode, table, DedupMap((0, 1), method="test"))
text = text_embedding(TimedText(cues=(), per_shot=((), ()), origin="none"))
title = title_embedding(TitleMetadata())
loaded = sorted(m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules)
print(audio.data.shape, text.data.shape, title.data.shape, loaded)
"""
    env = {
        **os.environ,
        "MEDIAMESH_CONFIG": str(tmp_path / "no-config.toml"),
        "MEDIAMESH_ENCODERS": "models",
        "MEDIAMESH_AUDIO_MODEL": str(tiny_models.wav2vec2),
        "MEDIAMESH_TEXT_MODEL": str(tiny_models.minilm),
        "MEDIAMESH_DEVICE": "cpu",
        "MEDIAMESH_HOME": str(tmp_path),
    }
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == "(2, 32) (2, 384) (384,) []"


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
