"""Model configuration, resolution and fingerprints; loading an unavailable model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import huggingface_hub.constants
import pytest

from mediamesh.features.errors import ExecutionError
from mediamesh.features.models import (
    DEFAULT_AUDIO_MODEL,
    DEFAULT_VIDEO_MODEL,
    ModelUnavailableError,
    batch_size,
    device,
    directory_fingerprint,
    encoder_settings,
    encoder_summary,
    load_audio_model,
    load_image_model,
    load_text_model,
    model_fingerprint,
    pretrained_available,
    resolve_model,
)
from mediamesh.features.models.fingerprints import FINGERPRINT_CACHE
from mediamesh.features.spec import spec_of
from tests.models import TinyModels

ENV = [
    "MEDIAMESH_ENCODERS",
    "MEDIAMESH_VIDEO_MODEL",
    "MEDIAMESH_AUDIO_MODEL",
    "MEDIAMESH_TEXT_MODEL",
    "MEDIAMESH_DEVICE",
    "MEDIAMESH_VIDEO_BATCH",
    "MEDIAMESH_AUDIO_BATCH",
    "MEDIAMESH_TEXT_BATCH",
]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def no_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Nothing configured: no MEDIAMESH_* encoder variable, and a config path with no file (yet)."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "home" / "mediamesh.toml"
    config.parent.mkdir()
    monkeypatch.setenv("MEDIAMESH_HOME", str(config.parent))
    monkeypatch.delenv("MEDIAMESH_CONFIG", raising=False)
    return config


@pytest.fixture
def hub_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_models: TinyModels) -> Path:
    """A local Hugging Face cache holding ``mediamesh-tests/tiny-clip`` at COMMIT (refs/main points at it)."""
    cache = tmp_path / "hub"
    repo = cache / "models--mediamesh-tests--tiny-clip"
    shutil.copytree(tiny_models.clip, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_defaults(no_config: Path, tiny_models: TinyModels) -> None:
    settings = encoder_settings()
    assert (settings.encoders, settings.video, settings.audio, settings.device) == (
        "models",
        DEFAULT_VIDEO_MODEL,
        DEFAULT_AUDIO_MODEL,
        "auto",
    )
    assert Path(settings.text) == tiny_models.minilm


def test_config_file_and_environment_over_it(no_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (no_config.parent / "clip").mkdir()
    no_config.write_text('[encoders]\nset = "lite"\nvideo = "clip"\naudio = "org/audio@v2"\ndevice = "cpu"\n')
    settings = encoder_settings()
    assert settings.encoders == "lite"
    assert settings.video == str((no_config.parent / "clip").resolve())  # relative to the config file
    assert (settings.audio, settings.device) == ("org/audio@v2", "cpu")
    monkeypatch.setenv("MEDIAMESH_ENCODERS", "models")
    monkeypatch.setenv("MEDIAMESH_AUDIO_MODEL", "org/other")
    settings = encoder_settings()
    assert (settings.encoders, settings.audio, settings.device) == ("models", "org/other", "cpu")


def test_config_file_named_by_mediamesh_config(
    no_config: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere.toml"
    elsewhere.write_text('[encoders]\ntext = "org/text"\n')
    monkeypatch.setenv("MEDIAMESH_CONFIG", str(elsewhere))
    assert encoder_settings().text == "org/text"


def test_bad_settings_are_named(no_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIAMESH_ENCODERS", "fast")
    with pytest.raises(ValueError, match="MEDIAMESH_ENCODERS must be one of models, lite, got 'fast'"):
        resolve_model("video")
    monkeypatch.setenv("MEDIAMESH_ENCODERS", "models")
    monkeypatch.setenv("MEDIAMESH_DEVICE", "tpu")
    with pytest.raises(ValueError, match="MEDIAMESH_DEVICE must be one of auto, cpu, cuda, got 'tpu'"):
        encoder_settings()
    monkeypatch.delenv("MEDIAMESH_DEVICE")
    no_config.write_text("[encoders\n")
    with pytest.raises(ValueError, match=r"cannot read .*mediamesh\.toml"):
        encoder_settings()


def test_batch_sizes_are_execution_settings_in_no_key(no_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert (batch_size("video"), batch_size("audio"), batch_size("text")) == (64, 16, 64)
    no_config.write_text("[encoders]\nvideo_batch = 8\naudio_batch = 2\n")
    assert (batch_size("video"), batch_size("audio"), batch_size("text")) == (8, 2, 64)
    monkeypatch.setenv("MEDIAMESH_VIDEO_BATCH", "4")
    assert batch_size("video") == 4
    from mediamesh.features.encoders import audio_embedding, text_embedding, video_embedding

    for fn in (video_embedding, audio_embedding, text_embedding):
        spec = spec_of(fn)
        assert spec is not None and "batch_size" not in spec.params
    monkeypatch.setenv("MEDIAMESH_TEXT_BATCH", "many")
    with pytest.raises(ValueError, match="MEDIAMESH_TEXT_BATCH must be a whole number at least 1, got 'many'"):
        batch_size("text")
    monkeypatch.delenv("MEDIAMESH_TEXT_BATCH")
    no_config.write_text("[encoders]\naudio_batch = 0\n")
    with pytest.raises(ValueError, match=r"\[encoders\] audio_batch must be a whole number at least 1, got '0'"):
        encoder_settings()


def test_a_local_directory_is_fingerprinted_by_its_weights(tiny_encoders: TinyModels) -> None:
    ref = resolve_model("video")
    assert (ref.role, ref.kind, ref.available, ref.path) == ("video", "clip", True, tiny_encoders.clip)
    assert ref.source == str(tiny_encoders.clip)
    assert len(ref.fingerprint) == 64
    assert model_fingerprint("video") == ref.fingerprint == directory_fingerprint(tiny_encoders.clip)
    other = directory_fingerprint(tiny_encoders.clip_other)
    assert other != ref.fingerprint


def test_directory_fingerprint_changes_with_a_weight_file_and_only_then(
    tiny_models: TinyModels, tmp_path: Path
) -> None:
    model = shutil.copytree(tiny_models.clip, tmp_path / "clip")
    first = directory_fingerprint(model)
    (model / "README.md").write_text("notes that do not change the weights")
    (model / ".cache").mkdir()
    (model / ".cache" / "lock.json").write_text("{}")
    assert directory_fingerprint(model) == first
    assert directory_fingerprint(shutil.copytree(model, tmp_path / "copy")) == first  # content, not place
    weights = model / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    changed = directory_fingerprint(model)
    assert changed != first
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert directory_fingerprint(model) == first


def _settled(model: Path) -> Path:
    """``model`` with every file last changed a minute ago, as a model directory that is not being written."""
    a_minute_ago = time.time() - 60
    for file in model.rglob("*"):
        os.utime(file, (a_minute_ago, a_minute_ago))
    return model


def _fingerprint_in_new_process(model: Path, home: Path) -> str:
    script = "import sys; from pathlib import Path; from mediamesh.features.models import directory_fingerprint; "
    script += "print(directory_fingerprint(Path(sys.argv[1])))"
    env = {**os.environ, "MEDIAMESH_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-c", script, str(model)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_fingerprint_is_kept_in_the_home_until_a_file_changes(
    tiny_models: TinyModels, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("MEDIAMESH_HOME", str(home))
    model = _settled(shutil.copytree(tiny_models.wav2vec2, tmp_path / "wav2vec2"))
    first = directory_fingerprint(model)
    kept = json.loads((home / FINGERPRINT_CACHE).read_text())
    assert kept["directories"][str(model)]["fingerprint"] == first
    # A new process takes the home's record as it is, without hashing: a doctored one shows it was used.
    kept["directories"][str(model)]["fingerprint"] = "f" * 64
    (home / FINGERPRINT_CACHE).write_text(json.dumps(kept))
    assert _fingerprint_in_new_process(model, home) == "f" * 64
    # An edit (same size, later mtime) makes the files differ: every process computes the fingerprint again.
    config = model / "config.json"
    config.write_text(config.read_text().replace('"hidden_size": 32', '"hidden_size": 33'))
    edited = directory_fingerprint(model)
    assert edited not in (first, "f" * 64)
    assert _fingerprint_in_new_process(model, home) == edited
    # Just written, the file could change again within its mtime tick: that fingerprint is not kept.
    assert json.loads((home / FINGERPRINT_CACHE).read_text())["directories"][str(model)]["fingerprint"] == "f" * 64
    _settled(model)
    assert directory_fingerprint(model) == edited
    assert json.loads((home / FINGERPRINT_CACHE).read_text())["directories"][str(model)]["fingerprint"] == edited


def test_a_home_that_does_not_exist_is_not_made_for_a_fingerprint(
    tiny_models: TinyModels, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDIAMESH_HOME", str(tmp_path / "no-home"))
    model = _settled(shutil.copytree(tiny_models.wav2vec2, tmp_path / "wav2vec2"))
    assert directory_fingerprint(model) == directory_fingerprint(tiny_models.wav2vec2)
    assert not (tmp_path / "no-home").exists()
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / FINGERPRINT_CACHE).parent.mkdir()
    (tmp_path / "home" / FINGERPRINT_CACHE).write_text("{not json")
    monkeypatch.setenv("MEDIAMESH_HOME", str(tmp_path / "home"))
    assert _fingerprint_in_new_process(model, tmp_path / "home") == directory_fingerprint(tiny_models.wav2vec2)


def test_the_home_keeps_no_fingerprint_of_a_directory_that_is_gone(
    tiny_models: TinyModels, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("MEDIAMESH_HOME", str(tmp_path / "home"))
    first = _settled(shutil.copytree(tiny_models.wav2vec2, tmp_path / "first"))
    second = _settled(shutil.copytree(tiny_models.wav2vec2, tmp_path / "second"))
    directory_fingerprint(first)
    shutil.rmtree(first)
    directory_fingerprint(second)
    kept = json.loads((tmp_path / "home" / FINGERPRINT_CACHE).read_text())["directories"]
    assert list(kept) == [str(second)]


def test_preprocessing_config_is_part_of_the_fingerprint(tiny_models: TinyModels, tmp_path: Path) -> None:
    model = shutil.copytree(tiny_models.clip, tmp_path / "clip")
    first = directory_fingerprint(model)
    config = model / "preprocessor_config.json"
    config.write_text(config.read_text().replace('"shortest_edge": 32', '"shortest_edge": 33'))
    assert directory_fingerprint(model) != first


def test_an_unavailable_hub_id_resolves_and_fails_only_when_loaded(
    tiny_encoders: TinyModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDIAMESH_VIDEO_MODEL", "mediamesh-tests/no-such-model")
    ref = resolve_model("video")
    assert (ref.available, ref.path, ref.kind) == (False, None, "clip")
    assert ref.fingerprint == model_fingerprint("video") == "unavailable:mediamesh-tests/no-such-model"
    assert not pretrained_available()
    with pytest.raises(
        ModelUnavailableError,
        match=r"^model 'mediamesh-tests/no-such-model' for video embeddings is not available locally: "
        r"set MEDIAMESH_VIDEO_MODEL to a local directory, or MEDIAMESH_ENCODERS=lite$",
    ) as raised:
        load_image_model(ref)
    assert isinstance(raised.value, ExecutionError)
    assert not raised.value.retryable


def test_a_default_model_missing_from_the_cache_is_unavailable(
    no_config: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # An empty Hugging Face cache, so the outcome does not depend on what this machine has downloaded.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    ref = resolve_model("audio")
    assert ref.fingerprint == f"unavailable:{DEFAULT_AUDIO_MODEL}"
    with pytest.raises(ModelUnavailableError, match="model 'facebook/wav2vec2-base' for audio embeddings"):
        load_audio_model(ref)


def test_a_missing_local_path_is_unavailable(tiny_encoders: TinyModels, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIAMESH_TEXT_MODEL", "/nowhere/minilm")
    ref = resolve_model("text")
    assert (ref.available, ref.fingerprint) == (False, "unavailable:/nowhere/minilm")
    with pytest.raises(ModelUnavailableError, match=r"set MEDIAMESH_TEXT_MODEL to a local directory$"):
        load_text_model(ref)


def test_a_directory_without_a_model_fails_to_load_with_the_reason(
    tiny_encoders: TinyModels, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("MEDIAMESH_AUDIO_MODEL", str(tmp_path / "empty"))
    ref = resolve_model("audio")
    with pytest.raises(ModelUnavailableError, match=r"^cannot load model '.*empty' for audio embeddings from .*: \S"):
        load_audio_model(ref)


def test_a_hub_id_in_the_local_cache_is_fingerprinted_by_its_commit(
    tiny_encoders: TinyModels, monkeypatch: pytest.MonkeyPatch, hub_cache: Path
) -> None:
    snapshot = hub_cache / "models--mediamesh-tests--tiny-clip" / "snapshots" / COMMIT
    for source in [
        "mediamesh-tests/tiny-clip",
        f"mediamesh-tests/tiny-clip@{COMMIT}",
        "mediamesh-tests/tiny-clip@main",
    ]:
        monkeypatch.setenv("MEDIAMESH_VIDEO_MODEL", source)
        ref = resolve_model("video")
        assert (ref.available, ref.source, ref.path) == (True, source, snapshot)
        assert ref.fingerprint == f"mediamesh-tests/tiny-clip@{COMMIT}"
    monkeypatch.setenv("MEDIAMESH_VIDEO_MODEL", "mediamesh-tests/tiny-clip@v9")
    assert not resolve_model("video").available
    monkeypatch.setenv("MEDIAMESH_VIDEO_MODEL", "mediamesh-tests/tiny-clip")
    assert load_image_model(resolve_model("video")).embed is not None


def test_the_lite_set(lite_encoders: TinyModels) -> None:
    video, audio, text = resolve_model("video"), resolve_model("audio"), resolve_model("text")
    assert (video.kind, video.fingerprint, video.available, video.path) == ("lite", "lite-video-v1", True, None)
    assert (audio.kind, audio.fingerprint) == ("lite", "lite-audio-v1")
    assert (text.kind, text.path) == ("sentence-transformer", lite_encoders.minilm)
    assert not pretrained_available()


def test_pretrained_available_and_summary(tiny_encoders: TinyModels) -> None:
    assert pretrained_available()
    summary = encoder_summary()
    assert set(summary) == {"video", "audio", "text"}
    assert summary["video"] == f"clip {tiny_encoders.clip} ({resolve_model('video').fingerprint[:12]})"
    assert summary["text"].startswith(f"sentence-transformer {tiny_encoders.minilm} (")


def test_summary_of_lite_and_unavailable(lite_encoders: TinyModels, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIAMESH_TEXT_MODEL", "org/missing")
    assert encoder_summary() == {
        "video": "lite lite (lite-video-v1)",
        "audio": "lite lite (lite-audio-v1)",
        "text": "sentence-transformer org/missing (unavailable)",
    }


def test_models_load_once_per_path_fingerprint_and_device(tiny_encoders: TinyModels) -> None:
    ref = resolve_model("video")
    assert load_image_model(ref) is load_image_model(ref)
    assert load_image_model(resolve_model("video")).device == "cpu"


def test_device(tiny_encoders: TinyModels, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    assert device() == "cpu"
    monkeypatch.setenv("MEDIAMESH_DEVICE", "auto")
    assert device() == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("MEDIAMESH_DEVICE", "cuda")
    if torch.cuda.is_available():
        assert device() == "cuda"
    else:
        with pytest.raises(ExecutionError, match="MEDIAMESH_DEVICE is 'cuda' but CUDA is not available"):
            device()


def test_the_model_hook_of_each_encoder_is_its_role_fingerprint(tiny_encoders: TinyModels) -> None:
    from mediamesh.features.encoders import audio_embedding, text_embedding, video_embedding

    for fn, role in [(video_embedding, "video"), (audio_embedding, "audio"), (text_embedding, "text")]:
        spec = spec_of(fn)
        assert spec is not None
        assert spec.model_fingerprint() == resolve_model(role).fingerprint  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "env",
    [{}, {"HF_HOME": "/tmp/hf-home"}, {"XDG_CACHE_HOME": "/tmp/xdg"}, {"HF_HUB_CACHE": "/tmp/hub"}],
    ids=["default", "hf-home", "xdg", "hub-cache"],
)
def test_the_hub_cache_is_where_huggingface_hub_looks(env: dict[str, str]) -> None:
    # Resolving a hub id looks for its cache folder before importing huggingface_hub: the same folder.
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "XDG_CACHE"))}
    script = (
        "from mediamesh.features.models.resolution import _hub_cache; ours = _hub_cache(); "
        "from huggingface_hub import constants; print(constants.HF_HUB_CACHE); print(ours)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env={**clean, **env}, capture_output=True, text=True, check=True, timeout=60
    )
    theirs, ours = out.stdout.splitlines()
    assert Path(theirs) == Path(ours)
