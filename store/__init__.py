"""Where mediamesh keeps things: Postgres (SQLAlchemy + Alembic) and object storage, behind one gateway.

Only this package talks to the database or the blob store. It knows nothing of Prefect.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mediamesh.features.lazy import exports

if TYPE_CHECKING:
    from mediamesh.store.blobs import (
        BlobInfo,
        BlobNotFoundError,
        BlobStore,
        LocalBlobStore,
        S3BlobStore,
        open_blob_store,
    )
    from mediamesh.store.config import StoreSettings
    from mediamesh.store.database import (
        DatabaseSettingsError,
        SchemaOutOfDateError,
        create_engine,
        embedded_database_url,
        migrate,
    )
    from mediamesh.store.gateway import (
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
        CorruptValueError,
        GarbageCollectionBusyError,
        NewValue,
        Store,
        ValueNotFoundError,
        ValueRecord,
        VerifyReport,
        hash_file,
    )
    from mediamesh.store.home import HomeMismatchError
    from mediamesh.store.opening import migrate_store, open_store

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
    "BlobInfo",
    "BlobNotFoundError",
    "BlobStore",
    "BlobUse",
    "CorruptValueError",
    "DatabaseSettingsError",
    "GarbageCollectionBusyError",
    "HomeMismatchError",
    "LocalBlobStore",
    "NewValue",
    "S3BlobStore",
    "SchemaOutOfDateError",
    "Store",
    "StoreSettings",
    "ValueNotFoundError",
    "ValueRecord",
    "VerifyReport",
    "create_engine",
    "embedded_database_url",
    "hash_file",
    "migrate",
    "migrate_store",
    "open_blob_store",
    "open_store",
]

# Imported on first use: a catalogue read (``store/catalogue.py``) needs neither SQLAlchemy nor the blob SDKs.
__getattr__ = exports(
    __name__,
    {
        "mediamesh.store.blobs": (
            "BlobInfo",
            "BlobNotFoundError",
            "BlobStore",
            "LocalBlobStore",
            "S3BlobStore",
            "open_blob_store",
        ),
        "mediamesh.store.config": ("StoreSettings",),
        "mediamesh.store.database": (
            "DatabaseSettingsError",
            "SchemaOutOfDateError",
            "create_engine",
            "embedded_database_url",
            "migrate",
        ),
        "mediamesh.store.gateway": (
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
            "CorruptValueError",
            "GarbageCollectionBusyError",
            "NewValue",
            "Store",
            "ValueNotFoundError",
            "ValueRecord",
            "VerifyReport",
            "hash_file",
        ),
        "mediamesh.store.home": ("HomeMismatchError",),
        "mediamesh.store.opening": ("migrate_store", "open_store"),
    },
)
