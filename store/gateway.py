"""The one gateway to Postgres and object storage. Values are inserted, never updated.

``Store`` is one class made of the gateway's parts, each in its own module: assets and their names
(``assets.py``), values, lineage and feature versions (``values.py``), attachments and artefacts
(``attachments.py``), attempts, claims and runs (``work.py``), verify and gc (``integrity.py``), over what
they share (``core.py``). The records it hands out and the errors it raises are in ``records.py``.
"""

from __future__ import annotations

from mediamesh.store.assets import AssetStore
from mediamesh.store.attachments import AttachmentStore
from mediamesh.store.core import StatementCount
from mediamesh.store.integrity import IntegrityStore
from mediamesh.store.records import (
    VERIFY_ON_READ_BYTES,
    AmbiguousAssetError,
    ArtefactNotFoundError,
    ArtefactRecord,
    AssetNotFoundError,
    AssetRecord,
    AttachmentRecord,
    AttemptRecord,
    BadBlob,
    BlobUse,
    CatalogueEntry,
    CorruptValueError,
    FeatureVersion,
    GarbageCollectionBusyError,
    NewValue,
    ValueNotFoundError,
    ValueRecord,
    VerifyReport,
    hash_file,
)
from mediamesh.store.values import ValueStore
from mediamesh.store.work import WorkStore

__all__ = [
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
    "StatementCount",
    "Store",
    "ValueNotFoundError",
    "ValueRecord",
    "VerifyReport",
    "hash_file",
]


class Store(AssetStore, ValueStore, AttachmentStore, WorkStore, IntegrityStore):
    """Assets, immutable values, lineage, attempts and claims, in Postgres plus a blob store."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
