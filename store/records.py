"""What the store hands out and takes in: its records, and the errors its methods raise.

The errors are placed in the tree of ``features/errors.py``: the ``*NotFoundError``s are ``NotFoundError``s,
``AmbiguousAssetError`` an ``AmbiguousError``, ``GarbageCollectionBusyError`` an ``UnavailableError`` (retry
when the work is done) and ``CorruptValueError`` a ``CorruptError``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mediamesh.features.errors import AmbiguousError, NotFoundError, UnavailableError
from mediamesh.store.blobs import BlobIntegrityError

__all__ = [
    "HASH_CHUNK",
    "VERIFY_ON_READ_BYTES",
    "AmbiguousAssetError",
    "ArtefactNotFoundError",
    "ArtefactRecord",
    "AssetNotFoundError",
    "AssetRecord",
    "AttachmentRecord",
    "AttemptRecord",
    "BadBlob",
    "BlobUse",
    "CatalogueEntry",
    "CorruptValueError",
    "FeatureVersion",
    "GarbageCollectionBusyError",
    "NewValue",
    "ValueNotFoundError",
    "ValueRecord",
    "VerifyReport",
    "digest_file",
    "hash_file",
]

HASH_CHUNK = 4 * 1024 * 1024
# Values up to this size are re-hashed on every read: xxh3 runs at several GB/s, so 64 MiB costs a few
# milliseconds, less than reading it. Larger values (long media files) are hashed when streamed whole.
VERIFY_ON_READ_BYTES = 64 << 20


class AssetNotFoundError(NotFoundError):
    """No asset matches the id, prefix, path or name given."""


class AmbiguousAssetError(AmbiguousError):
    """An id prefix matches more than one asset (or artefact)."""


class ArtefactNotFoundError(NotFoundError):
    """No artefact matches the id or prefix given."""


class ValueNotFoundError(NotFoundError):
    """No stored value matches the asset, feature and version asked for."""


class GarbageCollectionBusyError(UnavailableError):
    """Work is in progress; garbage collection must wait for it."""


class CorruptValueError(BlobIntegrityError):
    """A stored value's bytes no longer match the checksum or size its row recorded; the same read will fail
    again, so retrying cannot help (``mediamesh verify`` finds every damaged blob)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)

    def __reduce__(self) -> tuple[type[CorruptValueError], tuple[str]]:
        # Errors cross process boundaries pickled (task runners); rebuild from the constructor's arguments.
        return type(self), (str(self),)


@dataclass(frozen=True)
class AssetRecord:
    id: str
    size: int
    blob_key: str
    created_at: datetime
    names: tuple[str, ...]


@dataclass(frozen=True)
class AttachmentRecord:
    """A file attached to an asset (a subtitle sidecar), stored by content."""

    asset_id: str
    kind: str
    sha256: str
    language: str | None
    name: str
    blob_key: str
    attached_at: datetime


@dataclass(frozen=True)
class ArtefactRecord:
    """A stored artefact (a trained checkpoint): its bytes live in the blob store under ``blob_key``."""

    id: str
    kind: str
    blob_key: str
    bytes: int
    meta: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class NewValue:
    """What the executor knows about a freshly computed value, besides the value itself."""

    key: str
    asset_id: str
    feature: str
    version: str
    params: dict[str, Any]
    model_fingerprint: str | None
    code_fingerprint: str
    inputs: Sequence[tuple[str, str]]
    started_at: datetime
    finished_at: datetime
    worker: str
    device: str


@dataclass(frozen=True)
class ValueRecord:
    key: str
    asset_id: str
    feature: str
    version: str
    params: dict[str, Any]
    model_fingerprint: str | None
    code_fingerprint: str
    payload_kind: str
    blob_key: str
    meta: dict[str, Any]
    shape: list[int] | None
    dtype: str | None
    bytes: int
    checksum: str
    started_at: datetime
    finished_at: datetime
    duration_s: float
    worker: str
    device: str
    created_at: datetime
    xxh3: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.feature}@{self.version}"


@dataclass(frozen=True)
class FeatureVersion:
    """A feature version as a run saw it: recorded in ``feature_versions`` for the catalogue."""

    name: str
    version: str
    fingerprint: str
    resources: str
    module: str = ""
    output_type: str = ""
    payload_kind: str = ""


@dataclass(frozen=True)
class CatalogueEntry:
    """One feature version as it is stored: a row of the ``feature_catalogue`` view (one per code, params and
    model it was computed with). ``module`` and ``output_type`` are '' where no run recorded them (before 0007)."""

    name: str
    version: str
    fingerprint: str
    params: dict[str, Any]
    model_fingerprint: str | None
    payload_kind: str
    output_type: str
    module: str
    resources: str
    value_count: int
    asset_count: int
    first_computed: datetime
    last_computed: datetime

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_json(self) -> dict[str, Any]:
        found = asdict(self)
        return {
            **found,
            "first_computed": self.first_computed.isoformat(),
            "last_computed": self.last_computed.isoformat(),
        }


@dataclass(frozen=True)
class AttemptRecord:
    value_key: str
    asset_id: str
    feature: str
    version: str
    error_type: str
    message: str
    retryable: bool
    worker: str
    started_at: datetime
    finished_at: datetime


@dataclass(frozen=True)
class BlobUse:
    """A row that names a blob: its table (``source``), its key there, and the asset it belongs to."""

    source: str
    row_key: str
    asset_id: str | None

    @property
    def ref(self) -> str:
        """A value's key as it is; any other row as ``table:key`` (``attachments:ASSET/KIND/SHA256``)."""
        return self.row_key if self.source == "feature_values" else f"{self.source}:{self.row_key}"


@dataclass(frozen=True)
class BadBlob:
    """A referenced blob that is missing or whose bytes do not match what its rows recorded."""

    key: str
    problem: str
    uses: tuple[BlobUse, ...]

    @property
    def values(self) -> list[str]:
        """The rows that use the blob, as ``BlobUse.ref``; an asset's own bytes are listed under ``assets``."""
        return sorted({u.ref for u in self.uses if u.source != "assets"})

    @property
    def assets(self) -> list[str]:
        return sorted({u.asset_id for u in self.uses if u.asset_id is not None})

    def to_json(self) -> dict[str, Any]:
        return {"blob": self.key, "values": self.values, "assets": self.assets}


@dataclass(frozen=True)
class VerifyReport:
    """What a scrub found: blobs and bytes checked, and the blobs missing or corrupt."""

    checked: int
    bytes: int
    missing: tuple[BadBlob, ...]
    corrupt: tuple[BadBlob, ...]

    @property
    def ok(self) -> bool:
        return not self.missing and not self.corrupt

    def to_json(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "bytes": self.bytes,
            "missing": [b.to_json() for b in self.missing],
            "corrupt": [b.to_json() for b in self.corrupt],
        }


def hash_file(path: Path) -> str:
    """SHA-256 of a file's bytes: the asset id."""
    return digest_file(path, hashlib.sha256())


def digest_file(path: Path, digest: Any) -> str:
    """The hex digest of a file's bytes, read in chunks into ``digest`` (a hashlib or xxhash object)."""
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
    return str(digest.hexdigest())
