"""What mediamesh computes: ``@feature``, specs, the registry, value types and the built-in media features.

Nothing here imports Prefect, SQLAlchemy or an object-store SDK: a feature is tested by calling it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mediamesh.features.lazy import exports

if TYPE_CHECKING:
    from mediamesh.features.errors import (
        AmbiguousError,
        BackendUnavailableError,
        CorruptError,
        CycleError,
        DefinitionError,
        DuplicateFeatureError,
        ExecutionError,
        InputFileError,
        InputTypeError,
        MediaError,
        MediameshError,
        NotFoundError,
        TransientError,
        UnavailableError,
        UnknownFeatureError,
        UnknownInputError,
    )
    from mediamesh.features.registry import Registry
    from mediamesh.features.spec import (
        MEDIAFM,
        ROOT_INPUTS,
        SOURCE,
        SUBTITLES,
        TITLE,
        FeatureSpec,
        Input,
        code_fingerprint,
        feature,
        spec_of,
    )
    from mediamesh.features.values import (
        ArrayValue,
        Cue,
        DedupMap,
        EncodedMedia,
        FileValue,
        JsonValue,
        MediaFMCheckpoint,
        Shot,
        ShotEmbeddings,
        ShotTable,
        SourceMedia,
        Subtitles,
        SubtitleTrack,
        TimedText,
        TitleEmbedding,
        TitleMetadata,
    )

__all__ = [
    "MEDIAFM",
    "ROOT_INPUTS",
    "SOURCE",
    "SUBTITLES",
    "TITLE",
    "AmbiguousError",
    "ArrayValue",
    "BackendUnavailableError",
    "CorruptError",
    "Cue",
    "CycleError",
    "DedupMap",
    "DefinitionError",
    "DuplicateFeatureError",
    "EncodedMedia",
    "ExecutionError",
    "FeatureSpec",
    "FileValue",
    "Input",
    "InputFileError",
    "InputTypeError",
    "JsonValue",
    "MediaError",
    "MediaFMCheckpoint",
    "MediameshError",
    "NotFoundError",
    "Registry",
    "Shot",
    "ShotEmbeddings",
    "ShotTable",
    "SourceMedia",
    "SubtitleTrack",
    "Subtitles",
    "TimedText",
    "TitleEmbedding",
    "TitleMetadata",
    "TransientError",
    "UnavailableError",
    "UnknownFeatureError",
    "UnknownInputError",
    "code_fingerprint",
    "default_registry",
    "feature",
    "spec_of",
]

_EXPORTS = {
    "mediamesh.features.errors": (
        "AmbiguousError",
        "BackendUnavailableError",
        "CorruptError",
        "CycleError",
        "DefinitionError",
        "DuplicateFeatureError",
        "ExecutionError",
        "InputFileError",
        "InputTypeError",
        "MediaError",
        "MediameshError",
        "NotFoundError",
        "TransientError",
        "UnavailableError",
        "UnknownFeatureError",
        "UnknownInputError",
    ),
    "mediamesh.features.registry": ("Registry",),
    "mediamesh.features.spec": (
        "MEDIAFM",
        "ROOT_INPUTS",
        "SOURCE",
        "SUBTITLES",
        "TITLE",
        "FeatureSpec",
        "Input",
        "code_fingerprint",
        "feature",
        "spec_of",
    ),
    "mediamesh.features.values": (
        "ArrayValue",
        "Cue",
        "DedupMap",
        "EncodedMedia",
        "FileValue",
        "JsonValue",
        "MediaFMCheckpoint",
        "Shot",
        "ShotEmbeddings",
        "ShotTable",
        "SourceMedia",
        "Subtitles",
        "SubtitleTrack",
        "TimedText",
        "TitleEmbedding",
        "TitleMetadata",
    ),
}
__getattr__ = exports(__name__, _EXPORTS)


def default_registry() -> Registry:
    """The built-in media features: the MediaFM input pipeline, the contextual shot embedding, match
    cutting (on demand) and shot thumbnails."""
    from mediamesh.features import (
        contextual,
        dedup,
        encode,
        encoders,
        fused,
        matchcut,
        shots,
        thumbnails,
        timed_text,
        title,
    )
    from mediamesh.features.registry import Registry

    return Registry.from_modules(
        encode, shots, dedup, timed_text, encoders, fused, title, contextual, matchcut, thumbnails
    )
