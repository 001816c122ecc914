"""Turning values into stored payloads and back: files, JSON documents and NumPy arrays."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mediamesh.features.values import ArrayValue, FileValue, JsonValue

__all__ = ["Payload", "decode", "encode", "payload_kind_of", "type_name"]


@dataclass(frozen=True)
class Payload:
    """A value ready for the blob store: either a local ``path`` or in-memory ``data``."""

    kind: str
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    data: bytes | None = None
    shape: list[int] | None = None
    dtype: str | None = None


def payload_kind_of(output_type: Any) -> str:
    if isinstance(output_type, type):
        if issubclass(output_type, FileValue):
            return "file"
        if issubclass(output_type, JsonValue):
            return "json"
        if issubclass(output_type, ArrayValue | np.ndarray):
            return "array"
    raise TypeError(f"mediamesh cannot store values of type {output_type!r}")


def type_name(output_type: Any) -> str:
    """The qualified name a reader without the code is told the value's type by, e.g. ``mypkg.values.Digest``."""
    if isinstance(output_type, type):
        return f"{output_type.__module__}.{output_type.__qualname__}"
    return repr(output_type)


def encode(value: Any) -> Payload:
    if isinstance(value, FileValue):
        return Payload("file", meta=value.to_meta(), path=value.path)
    if isinstance(value, JsonValue):
        data = json.dumps(value.to_json(), sort_keys=True, separators=(",", ":")).encode()
        return Payload("json", data=data)
    if isinstance(value, ArrayValue):
        array = encode(value.data)
        return Payload("array", meta=dict(value.meta), data=array.data, shape=array.shape, dtype=array.dtype)
    if isinstance(value, np.ndarray):
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(value), allow_pickle=False)
        return Payload("array", data=buf.getvalue(), shape=list(value.shape), dtype=str(value.dtype))
    raise TypeError(f"mediamesh cannot store a value of type {type(value).__name__}")


def decode(
    kind: str, output_type: Any, meta: dict[str, Any], *, path: Path | None = None, data: bytes | None = None
) -> Any:
    """The value as ``output_type``; with ``output_type=None`` (read without the feature's code) generically:
    a JSON document as plain JSON (dicts, lists), an array as a NumPy array, a file as its local ``Path``."""
    if kind == "file":
        if path is None:
            raise ValueError("a file payload needs a local path")
        return path if output_type is None else output_type.from_file(path, meta)
    if data is None:
        raise ValueError(f"a {kind} payload needs its bytes")
    if kind == "json":
        document = json.loads(data)
        return document if output_type is None else output_type.from_json(document)
    if kind == "array":
        array = array_from_npy(data)
        if isinstance(output_type, type) and issubclass(output_type, ArrayValue):
            return output_type.from_array(array, meta)
        return array
    raise ValueError(f"unknown payload kind {kind!r}")


def array_from_npy(data: bytes) -> np.ndarray[Any, Any]:
    """A read-only array over the ``.npy`` bytes, without copying them (values are immutable)."""
    buf = io.BytesIO(data)
    version = np.lib.format.read_magic(buf)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read_header(buf)
    array = np.frombuffer(data, dtype=dtype, offset=buf.tell())
    return array.reshape(shape, order="F" if fortran else "C")
