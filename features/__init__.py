"""What mediamesh computes: ``@feature``, specs, the registry, value types and the built-in media features.

Nothing here imports Prefect, SQLAlchemy or an object-store SDK: a feature is tested by calling it.
"""

from mediamesh.features.errors import (
    BackendUnavailableError,
    CycleError,
    DefinitionError,
    DuplicateFeatureError,
    ExecutionError,
    InputFileError,
    InputTypeError,
    MediaError,
    MediameshError,
    TransientError,
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
    "ArrayValue",
    "BackendUnavailableError",
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
    "UnknownInputError",
    "code_fingerprint",
    "default_registry",
    "feature",
    "spec_of",
]


def default_registry() -> Registry:
    """The built-in media features: the MediaFM input pipeline and the contextual shot embedding."""
    from mediamesh.features import contextual, dedup, encode, encoders, fused, shots, timed_text, title

    return Registry.from_modules(encode, shots, dedup, timed_text, encoders, fused, title, contextual)
