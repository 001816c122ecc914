"""Value routes: a stored value (sliced by shots or time, as JSON, .npy or the media file) and its provenance.

Finding, slicing and rendering are ``interfaces/reads.py``'s, shared with the CLI; this module only picks the
HTTP form of the answer.
"""

from __future__ import annotations

import io
import mimetypes
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Query, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, StreamingResponse

from mediamesh.features.registry import Registry
from mediamesh.features.values import ArrayValue, FileValue
from mediamesh.orchestrator.interfaces import reads
from mediamesh.orchestrator.interfaces.api.models import (
    LOOKUP_ERRORS,
    ErrorOut,
    FeatureValueOut,
    LineageInput,
    ProvenanceOut,
    ShotRange,
)
from mediamesh.orchestrator.interfaces.api.routes.assets import AssetRef, lookup_asset
from mediamesh.store import VERIFY_ON_READ_BYTES, Store, ValueRecord

if TYPE_CHECKING:
    from mediamesh.orchestrator.interfaces.api.app import MeshHolder

__all__ = ["router"]

# Version strings are free-form, but never carry control characters.
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
_FeatureName = Annotated[
    str, PathParam(description="A feature of the registry or one only stored (read without its code), e.g. shots.")
]
_Version = Annotated[
    str | None,
    Query(
        description="Feature version; default: the promoted version, else the registry's current, else the newest.",
        min_length=1,
        max_length=100,
        pattern=_PRINTABLE,
    ),
]
_VALUE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **LOOKUP_ERRORS,
    200: {
        "description": "JSON for tables and arrays; .npy for arrays with format=npy; the file for media.",
        "content": {"application/octet-stream": {}, "video/mp4": {}},
    },
    422: {"description": "A bad parameter, or a slice or format the value does not have."},
    500: {"model": ErrorOut, "description": "The stored value is corrupt; `mediamesh verify` finds it."},
}


def router(meshes: MeshHolder, reader: list[Any]) -> APIRouter:
    routes = APIRouter(tags=["values"], dependencies=reader)

    @routes.get(
        "/assets/{asset:path}/features/{feature}/provenance", response_model=ProvenanceOut, responses=LOOKUP_ERRORS
    )
    def provenance(asset: AssetRef, feature: _FeatureName, version: _Version = None) -> ProvenanceOut:
        """What produced a value: its identity, lineage, worker, device and timings."""
        mesh = meshes.get()
        record, current = reads.find(mesh.store, mesh.registry, lookup_asset(mesh.store, asset), feature, version)
        inputs = []
        for name, key in mesh.store.lineage(record.key):
            upstream = mesh.store.value(key)
            inputs.append(LineageInput(name=name, key=key, ref=upstream.ref if upstream is not None else None))
        return ProvenanceOut(
            key=record.key,
            asset=record.asset_id,
            feature=record.feature,
            version=record.version,
            current=current,
            params=record.params,
            model_fingerprint=record.model_fingerprint,
            code_fingerprint=record.code_fingerprint,
            payload_kind=record.payload_kind,
            blob_key=record.blob_key,
            shape=record.shape,
            dtype=record.dtype,
            bytes=record.bytes,
            checksum=record.checksum,
            inputs=inputs,
            worker=record.worker,
            device=record.device,
            started_at=record.started_at,
            finished_at=record.finished_at,
            duration_s=record.duration_s,
            created_at=record.created_at,
        )

    @routes.get("/assets/{asset:path}/features/{feature}", response_model=FeatureValueOut, responses=_VALUE_RESPONSES)
    def read_value(
        asset: AssetRef,
        feature: _FeatureName,
        version: _Version = None,
        start: Annotated[int | None, Query(ge=0, description="First shot index (per-shot values).")] = None,
        stop: Annotated[int | None, Query(ge=0, description="One past the last shot index (end exclusive).")] = None,
        t0: Annotated[
            float | None, Query(ge=0, allow_inf_nan=False, description="Seconds: shots that end after t0.")
        ] = None,
        t1: Annotated[
            float | None, Query(ge=0, allow_inf_nan=False, description="Seconds: shots that start before t1.")
        ] = None,
        format: Annotated[
            Literal["json", "npy"] | None,
            Query(description="json (tables, arrays, a media file's metadata) or npy (arrays); default: natural."),
        ] = None,
    ) -> FeatureValueOut | Response:
        """A stored value, optionally sliced by shot indices or by a time range (shots overlapping [t0, t1)).

        A shot table is the list of {index, start_frame, end_frame, start_time, end_time, transition,
        transition_start, transition_end} records (end exclusive; transition is "cut" or "gradual", null first).
        """
        reads.check_bounds(start, stop, t0, t1)
        mesh = meshes.get()
        record, _current = reads.find(mesh.store, mesh.registry, lookup_asset(mesh.store, asset), feature, version)
        # Refused before loading: a media file can be large, and neither question needs its bytes.
        if record.payload_kind == "file" and any(b is not None for b in (start, stop, t0, t1)):
            raise reads.ReadRequestError(f"{record.ref} is a media file; it cannot be sliced by shot or time")
        if format == "npy" and record.payload_kind != "array":
            raise reads.ReadRequestError(f"{record.ref} is not an array; format=npy is for arrays")
        value = reads.load(mesh.store, mesh.registry, record)
        return _value_response(
            mesh.store, mesh.registry, record, value, start=start, stop=stop, t0=t0, t1=t1, format=format
        )

    return routes


def _value_response(
    store: Store,
    registry: Registry,
    record: ValueRecord,
    value: Any,
    *,
    start: int | None,
    stop: int | None,
    t0: float | None,
    t1: float | None,
    format: Literal["json", "npy"] | None,
) -> FeatureValueOut | Response:
    """The value as the caller asked: sliced to the shots wanted, as JSON, .npy or the media file itself."""
    out = FeatureValueOut(
        asset=record.asset_id, feature=record.feature, version=record.version, key=record.key, payload="json"
    )
    if isinstance(value, FileValue | Path):  # a Path is a media file read without its feature's code
        if format == "json":
            return out.model_copy(update={"payload": "file", "value": reads.render(record, value)})
        return _file_response(store, record, value)
    shots = reads.shot_slice(store, registry, record, value, start=start, stop=stop, t0=t0, t1=t1)
    shot_range = ShotRange(**asdict(shots)) if shots is not None else None
    if isinstance(value, ArrayValue | np.ndarray):
        if format == "npy":
            buf = io.BytesIO()
            np.save(buf, reads.array_of(value, shots), allow_pickle=False)
            disposition = f'attachment; filename="{record.asset_id[:12]}-{record.ref}.npy"'
            return Response(
                buf.getvalue(),
                media_type="application/octet-stream",
                headers={"X-Mediamesh-Key": record.key, "Content-Disposition": disposition},
            )
        return out.model_copy(update={"payload": "array", "shots": shot_range, **reads.render(record, value, shots)})
    return out.model_copy(update={"shots": shot_range, "value": reads.render(record, value, shots)})


def _file_response(store: Store, record: ValueRecord, value: FileValue | Path) -> Response:
    """The media file itself, named after its asset and feature."""
    headers = {"X-Mediamesh-Key": record.key}
    suffix = type(value).suffix if isinstance(value, FileValue) else ""
    path = value.path if isinstance(value, FileValue) else value
    media_type = mimetypes.guess_type(f"value{suffix}")[0] or "application/octet-stream"
    filename = f"{record.asset_id[:12]}-{record.ref}{suffix}"
    if record.bytes > VERIFY_ON_READ_BYTES:
        # Too large to hash before answering (load did not): hashed as it streams, and a mismatch aborts the
        # download, so the client never holds a complete wrong file.
        disposition = f'attachment; filename="{filename}"'
        return StreamingResponse(
            store.stream_value(record),
            media_type=media_type,
            headers={**headers, "Content-Length": str(record.bytes), "Content-Disposition": disposition},
        )
    return FileResponse(path, media_type=media_type, filename=filename, headers=headers)
