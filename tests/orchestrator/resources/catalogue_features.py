"""Features that only their author has: values computed with them are read elsewhere without this module."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from mediamesh.features import JsonValue, SourceMedia, feature


@dataclass(frozen=True)
class Digest(JsonValue):
    sha256: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(str(data["sha256"]), int(data["size"]))


@feature(version="1")
def source_digest(source: SourceMedia) -> Digest:
    """The SHA-256 and size of the asset's bytes."""
    data = source.path.read_bytes()
    return Digest(hashlib.sha256(data).hexdigest(), len(data))


@feature(version="1")
def byte_histogram(source: SourceMedia) -> np.ndarray:  # type: ignore[type-arg]  # the bare class is the output type
    """How many of the asset's bytes fall in each sixteenth of 0..255."""
    data = np.frombuffer(source.path.read_bytes(), dtype=np.uint8)
    return np.bincount(data // 16, minlength=16).astype(np.int64)
