"""mediamesh: a feature mesh for media machine learning.

The small public surface: declare features with :func:`feature`, build a :class:`Registry`, and run and read
them with :class:`Mesh`. The rooms live below: ``mediamesh.features`` (what is computed),
``mediamesh.orchestrator`` (planning, running, the CLI and the API) and ``mediamesh.store`` (where values are
kept).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mediamesh.features.lazy import exports

if TYPE_CHECKING:
    from mediamesh.features import (
        ArrayValue,
        EncodedMedia,
        FileValue,
        JsonValue,
        Registry,
        ShotTable,
        SourceMedia,
        default_registry,
        feature,
    )
    from mediamesh.orchestrator.mesh import Mesh

__all__ = [
    "ArrayValue",
    "EncodedMedia",
    "FileValue",
    "JsonValue",
    "Mesh",
    "Registry",
    "ShotTable",
    "SourceMedia",
    "default_registry",
    "feature",
]


# Imported on first use: ``mediamesh status`` reads the catalogue without NumPy, and a feature author who only
# declares features never pays for the store (SQLAlchemy) that Mesh pulls in.
__getattr__ = exports(
    __name__,
    {
        "mediamesh.features": (
            "ArrayValue",
            "EncodedMedia",
            "FileValue",
            "JsonValue",
            "Registry",
            "ShotTable",
            "SourceMedia",
            "default_registry",
            "feature",
        ),
        "mediamesh.orchestrator.mesh": ("Mesh",),
    },
)
