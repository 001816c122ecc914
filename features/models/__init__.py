"""The models the encoders load: configuration, resolution to a local copy, fingerprints, and loaders.

Models are configuration, read afresh on every call (environment first, then ``[encoders]`` in
``$MEDIAMESH_CONFIG``, default ``$MEDIAMESH_HOME/mediamesh.toml``, then the defaults)::

    MEDIAMESH_ENCODERS      models (default) | lite: model-free descriptors for video and audio
    MEDIAMESH_VIDEO_MODEL   a Hugging Face id (``id`` or ``id@revision``) or a local directory
    MEDIAMESH_AUDIO_MODEL   likewise
    MEDIAMESH_TEXT_MODEL    likewise; default: the all-MiniLM-L6-v2 copy shipped as a Python package
    MEDIAMESH_DEVICE        auto (CUDA when available) | cpu | cuda
    MEDIAMESH_VIDEO_BATCH   frames per batch of the video encoder (64); likewise _AUDIO_BATCH (16), _TEXT_BATCH (64)

A model's fingerprint is part of the identity of every value computed with it: the SHA-256 of a local
directory's weights and configuration, or ``<id>@<commit>`` of a snapshot in the local Hugging Face
cache. The device and the batch sizes are execution settings: they cannot change a value, so they are
in no key. Nothing here downloads: a model that is not on this machine resolves to ``available=False``,
so planning goes on, and only loading it raises :class:`ModelUnavailableError`.

The modules: :mod:`.settings` (the configuration), :mod:`.resolution` (a model on this machine and its
fingerprint), :mod:`.fingerprints` (a directory's fingerprint, kept in the home), :mod:`.device` (where
encoders run), :mod:`.preprocessing` (CLIP image pre-processing), :mod:`.widths` (how wide a model's rows
are, from its files) and :mod:`.loaders` (loading, once per process).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mediamesh.features.lazy import exports

# Eager, for its name is also its module's: importing the module later would otherwise leave the module here.
from mediamesh.features.models.device import device

if TYPE_CHECKING:
    from mediamesh.features.models.fingerprints import directory_fingerprint
    from mediamesh.features.models.loaders import (
        AudioModel,
        ImageModel,
        load_audio_model,
        load_image_model,
        load_text_model,
        text_dimension,
    )
    from mediamesh.features.models.preprocessing import ImagePreprocessing
    from mediamesh.features.models.resolution import (
        ModelRef,
        ModelUnavailableError,
        encoder_summary,
        model_fingerprint,
        pretrained_available,
        resolve_model,
    )
    from mediamesh.features.models.settings import (
        DEFAULT_AUDIO_MODEL,
        DEFAULT_VIDEO_MODEL,
        FALLBACK_TEXT_MODEL,
        ROLES,
        EncoderSettings,
        Kind,
        Role,
        batch_size,
        encoder_settings,
    )
    from mediamesh.features.models.widths import audio_width, text_width

__all__ = [
    "DEFAULT_AUDIO_MODEL",
    "DEFAULT_VIDEO_MODEL",
    "FALLBACK_TEXT_MODEL",
    "ROLES",
    "AudioModel",
    "EncoderSettings",
    "ImageModel",
    "ImagePreprocessing",
    "Kind",
    "ModelRef",
    "ModelUnavailableError",
    "Role",
    "audio_width",
    "batch_size",
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
    "text_dimension",
    "text_width",
]

# Imported on first use: a directory's fingerprint is read without NumPy or the loaders.
__getattr__ = exports(
    __name__,
    {
        "mediamesh.features.models.fingerprints": ("directory_fingerprint",),
        "mediamesh.features.models.loaders": (
            "AudioModel",
            "ImageModel",
            "load_audio_model",
            "load_image_model",
            "load_text_model",
            "text_dimension",
        ),
        "mediamesh.features.models.preprocessing": ("ImagePreprocessing",),
        "mediamesh.features.models.resolution": (
            "ModelRef",
            "ModelUnavailableError",
            "encoder_summary",
            "model_fingerprint",
            "pretrained_available",
            "resolve_model",
        ),
        "mediamesh.features.models.settings": (
            "DEFAULT_AUDIO_MODEL",
            "DEFAULT_VIDEO_MODEL",
            "FALLBACK_TEXT_MODEL",
            "ROLES",
            "EncoderSettings",
            "Kind",
            "Role",
            "batch_size",
            "encoder_settings",
        ),
        "mediamesh.features.models.widths": ("audio_width", "text_width"),
    },
)
