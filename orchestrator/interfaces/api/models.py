"""The API's request and response models, and the error responses its routes document."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = [
    "AUTH_ERRORS",
    "LOOKUP_ERRORS",
    "AssetOut",
    "AssetStatusOut",
    "ErrorOut",
    "EventResult",
    "EventsOut",
    "FeatureStateOut",
    "FeatureValueOut",
    "HealthOut",
    "LineageInput",
    "ProvenanceOut",
    "ShotRange",
]


class ErrorOut(BaseModel):
    detail: str


class HealthOut(BaseModel):
    status: str


class AssetOut(BaseModel):
    id: str = Field(description="SHA-256 of the asset's bytes.")
    size: int
    names: list[str] = Field(description="Every name the bytes were registered under (paths, s3:// URIs).")
    created_at: datetime


class FeatureStateOut(BaseModel):
    feature: str
    version: str
    state: str = Field(description="stored, running, failed, waiting (for a checkpoint) or missing.")
    key: str
    duration_s: float | None = None
    worker: str | None = None
    at: datetime | None = None
    detail: str = ""


class AssetStatusOut(BaseModel):
    asset: str
    names: list[str]
    features: list[FeatureStateOut]


class ShotRange(BaseModel):
    start: int = Field(description="First shot index returned.")
    stop: int = Field(description="One past the last shot index returned (end exclusive).")
    total: int = Field(description="How many shots the title has.")


class FeatureValueOut(BaseModel):
    """A stored value: ``value`` for tables (and a media file's metadata); ``data``, ``shape``, ``dtype`` and
    ``meta`` for arrays. ``shots`` says which shots a per-shot value was sliced to."""

    asset: str
    feature: str
    version: str
    key: str
    payload: Literal["json", "array", "file"]
    shots: ShotRange | None = None
    value: Any = Field(
        default=None,
        description="A table as JSON: shots are a list of {index, start_frame, end_frame, start_time, end_time, "
        "transition, transition_start, transition_end} (end exclusive); timed text {cues, per_shot, origin, "
        "language}; a media file its metadata.",
    )
    shape: list[int] | None = None
    dtype: str | None = None
    meta: dict[str, Any] | None = None
    data: Any = None


class LineageInput(BaseModel):
    name: str = Field(description="The input's parameter name.")
    key: str = Field(description="The input value's key (the asset id for 'source').")
    ref: str | None = Field(default=None, description="feature@version of the input value; null for root inputs.")


class ProvenanceOut(BaseModel):
    key: str
    asset: str
    feature: str
    version: str
    current: bool = Field(description="Whether the registry's current definition identifies this value.")
    params: dict[str, Any]
    model_fingerprint: str | None
    code_fingerprint: str
    payload_kind: str
    blob_key: str
    shape: list[int] | None
    dtype: str | None
    bytes: int
    checksum: str
    inputs: list[LineageInput]
    worker: str
    device: str
    started_at: datetime
    finished_at: datetime
    duration_s: float
    created_at: datetime


class EventResult(BaseModel):
    bucket: str
    key: str
    asset: str | None = None
    status: Literal["registered", "ignored", "error"]
    detail: str = ""
    missing: int = Field(default=0, description="Values the asset lacks, queued to compute after this answer.")


class EventsOut(BaseModel):
    results: list[EventResult]
    queued: int = Field(description="Assets queued for computing.")


AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "No bearer token."},
    403: {"model": ErrorOut, "description": "Wrong bearer token."},
    503: {"model": ErrorOut, "description": "No token configured, or a service is unreachable."},
}
LOOKUP_ERRORS: dict[int | str, dict[str, Any]] = {
    **AUTH_ERRORS,
    404: {"model": ErrorOut, "description": "Unknown asset, feature or version."},
    409: {"model": ErrorOut, "description": "The asset prefix matches several assets."},
}
