"""Loading the configured models, once per process: a CLIP image tower, a wav2vec2 speech encoder and a
sentence-transformers text model."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np

from mediamesh.features.errors import ExecutionError
from mediamesh.features.models.device import autocast, device
from mediamesh.features.models.preprocessing import ImagePreprocessing
from mediamesh.features.models.resolution import ModelRef, ModelUnavailableError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "AudioModel",
    "ImageModel",
    "load_audio_model",
    "load_image_model",
    "load_text_model",
    "text_dimension",
]

_ROLE_ENV = {"video": "MEDIAMESH_VIDEO_MODEL", "audio": "MEDIAMESH_AUDIO_MODEL", "text": "MEDIAMESH_TEXT_MODEL"}

T = TypeVar("T")
_load_lock = threading.Lock()
_models: dict[tuple[str, str, str, str], Any] = {}


@dataclass(frozen=True)
class ImageModel:
    """A loaded CLIP-style image tower and its pre-processing."""

    ref: ModelRef
    model: Any
    preprocess: ImagePreprocessing
    device: str

    def embed(self, frames: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Unit-normed image embeddings (N, D) float32 of ``frames`` (N, H, W, 3) uint8 RGB."""
        return self.forward([self.prepare(frames)])

    def prepare(self, frames: np.ndarray[Any, Any]) -> Any:
        """The model's input tensor for ``frames``: frames of any size become the same shape here."""
        import torch

        with torch.inference_mode(), autocast(self.device):
            return self.preprocess(frames, self.device)

    def forward(self, pixels: Sequence[Any]) -> np.ndarray[Any, Any]:
        """Unit-normed embeddings of prepared inputs, in one forward pass over all of them."""
        import torch

        with torch.inference_mode(), autocast(self.device):
            batch = pixels[0] if len(pixels) == 1 else torch.cat(list(pixels))
            features = self.model.get_image_features(pixel_values=batch)
            if not isinstance(features, torch.Tensor):  # transformers 5 returns the vision output, projected
                features = features.pooler_output
            features = features.float()
            features = features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return cast(np.ndarray[Any, Any], features.cpu().numpy())


@dataclass(frozen=True)
class AudioModel:
    """A loaded wav2vec2-style speech encoder and its feature extractor.

    ``batched`` says whether padding leaves a clip's hidden states unchanged: true for models whose
    convolutional front end normalises each frame on its own (``feat_extract_norm="layer"``), which take
    an attention mask; false for group-normalised ones such as wav2vec2-base, which see one clip at a time.
    """

    ref: ModelRef
    model: Any
    feature_extractor: Any
    device: str
    batched: bool
    hidden_size: int

    def output_lengths(self, lengths: list[int]) -> list[int]:
        """How many hidden-state frames the model makes of clips of ``lengths`` samples."""
        import torch

        out = self.model._get_feat_extract_output_lengths(torch.tensor(lengths))
        return [int(n) for n in out]

    def hidden_sums(self, clips: list[np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
        """Per clip (16 kHz mono float32), the sum of the last hidden state over its real frames (N, H)."""
        if not self.batched and len(clips) > 1:
            return np.concatenate([self.hidden_sums([clip]) for clip in clips])
        import torch

        inputs = self.feature_extractor(
            clips,
            sampling_rate=16000,
            padding=True,
            return_attention_mask=self.batched,
            return_tensors="pt",
        )
        values = inputs["input_values"].to(self.device)
        mask = inputs["attention_mask"].to(self.device) if self.batched else None
        with torch.inference_mode():
            hidden = self.model(values, attention_mask=mask).last_hidden_state.float()
        frames = self.output_lengths([len(clip) for clip in clips])
        keep = (
            torch.arange(hidden.shape[1], device=self.device)[None, :]
            < torch.tensor(frames, device=self.device)[:, None]
        )
        sums = (hidden * keep[..., None]).sum(dim=1)
        return cast(np.ndarray[Any, Any], sums.cpu().numpy().astype(np.float32))


def load_image_model(ref: ModelRef) -> ImageModel:
    """The CLIP-style image model ``ref`` names, loaded once per (path, fingerprint, device)."""
    path = _require(ref)
    where = device()

    def load() -> ImageModel:
        from transformers import AutoModel

        model = AutoModel.from_pretrained(str(path), local_files_only=True).to(where).eval()
        if not hasattr(model, "get_image_features"):
            raise ExecutionError(
                f"model {ref.source!r} for video embeddings has no image tower ({type(model).__name__})"
            )
        config = getattr(model.config, "vision_config", model.config)
        preprocess = ImagePreprocessing.from_dir(path, int(getattr(config, "image_size", 224)))
        return ImageModel(ref, model, preprocess, where)

    return _cached(ref, where, load)


def load_audio_model(ref: ModelRef) -> AudioModel:
    """The wav2vec2-style model ``ref`` names, loaded once per (path, fingerprint, device)."""
    path = _require(ref)
    where = device()

    def load() -> AudioModel:
        from transformers import AutoModel, Wav2Vec2FeatureExtractor

        model = AutoModel.from_pretrained(str(path), local_files_only=True).to(where).eval()
        if (path / "preprocessor_config.json").is_file():
            extractor = Wav2Vec2FeatureExtractor.from_pretrained(str(path), local_files_only=True)
        else:
            extractor = Wav2Vec2FeatureExtractor(sampling_rate=16000)
        if extractor.sampling_rate != 16000:
            raise ExecutionError(
                f"model {ref.source!r} for audio embeddings expects {extractor.sampling_rate} Hz, not 16000"
            )
        batched = getattr(model.config, "feat_extract_norm", "group") == "layer"
        return AudioModel(ref, model, extractor, where, batched, int(model.config.hidden_size))

    return _cached(ref, where, load)


def load_text_model(ref: ModelRef) -> SentenceTransformer:
    """The sentence-transformers model ``ref`` names, loaded once per (path, fingerprint, device)."""
    path = _require(ref)
    where = device()

    def load() -> SentenceTransformer:
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(path), device=where, local_files_only=True)

    return _cached(ref, where, load)


def text_dimension(model: Any) -> int:
    """The width of a sentence-transformers model's embeddings (the method was renamed across versions)."""
    get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(get_dim())


def _cached(ref: ModelRef, where: str, load: Callable[[], T]) -> T:
    """``load()``, once per (role, path, fingerprint, device); a directory that holds no loadable model
    is reported as unavailable, naming what the loader said."""
    key = (ref.role, str(ref.path), ref.fingerprint, where)
    # One lock for all loads: two threads asking for the same model load it once.
    with _load_lock:
        if key not in _models:
            _quiet_loading()
            try:
                _models[key] = load()
            except (OSError, ValueError, KeyError) as exc:
                reason = " ".join(str(exc).split())[:300] or type(exc).__name__
                raise ModelUnavailableError(
                    f"cannot load model {ref.source!r} for {ref.role} embeddings from {ref.path}: {reason}"
                ) from exc
        return cast(T, _models[key])


def _require(ref: ModelRef) -> Path:
    if ref.available and ref.path is not None:
        return ref.path
    advice = f"set {_ROLE_ENV[ref.role]} to a local directory"
    if ref.role != "text":
        advice += ", or MEDIAMESH_ENCODERS=lite"
    raise ModelUnavailableError(f"model {ref.source!r} for {ref.role} embeddings is not available locally: {advice}")


def _quiet_loading() -> None:
    """Keep transformers' and the hub's progress bars off the console: mediamesh shows its own progress."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
