"""mediamesh: a feature mesh for media machine learning.

The small public surface: declare features with :func:`feature`, build a :class:`Registry`, and run and read
them with :class:`Mesh`. The rooms live below: ``mediamesh.features`` (what is computed),
``mediamesh.orchestrator`` (planning, running, the CLI and the API) and ``mediamesh.store`` (where values are
kept).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    # Mesh pulls in the store (SQLAlchemy); a feature author who only declares features never pays for it.
    if name == "Mesh":
        from mediamesh.orchestrator.mesh import Mesh

        return Mesh
    raise AttributeError(f"module 'mediamesh' has no attribute {name!r}")
