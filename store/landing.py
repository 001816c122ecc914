"""Landing buckets: where new media arrives, read over S3 (MinIO, SeaweedFS, AWS) with the store's credentials.

``LandingReader(settings)`` lists a bucket prefix and downloads objects while hashing them; it speaks to
the endpoint ``MEDIAMESH_S3_ENDPOINT`` names with ``MEDIAMESH_S3_ACCESS_KEY`` / ``_SECRET_KEY``, through the
client of ``store/s3.py`` (so it trusts the same CA bundle as the blob store). An object or bucket that is
missing is a :class:`LandingObjectNotFoundError`, one that is refused a :class:`LandingObjectError`
(announcing it again will not help); an unreachable or failing endpoint is an ``UnavailableError`` (it will).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mediamesh.features.errors import DefinitionError, NotFoundError
from mediamesh.store.config import StoreSettings
from mediamesh.store.s3 import MISSING_OBJECT_CODES, s3_client, s3_errors

if TYPE_CHECKING:
    from mediamesh.store.s3 import S3Client

__all__ = ["LandingObject", "LandingObjectError", "LandingObjectNotFoundError", "LandingReader", "NoEndpointError"]

_CHUNK = 1 << 20
_MISSING_CODES = MISSING_OBJECT_CODES | {"NoSuchBucket"}


class LandingObjectError(DefinitionError):
    """A landing object cannot be read (refused, or its name is not one S3 takes); announcing it again will not help."""


class LandingObjectNotFoundError(NotFoundError, LandingObjectError):
    """The landing object, or its bucket, does not exist."""


class NoEndpointError(DefinitionError):
    """No S3 endpoint is configured to read landing buckets from."""


@dataclass(frozen=True)
class LandingObject:
    bucket: str
    key: str
    size: int
    etag: str

    @property
    def name(self) -> str:
        """The name an asset made of it is registered under."""
        return f"s3://{self.bucket}/{self.key}"


@dataclass
class LandingReader:
    """Reads landing objects from the S3 endpoint the store is configured with (``MEDIAMESH_S3_*``)."""

    settings: StoreSettings
    _client: S3Client | None = None

    def objects(self, bucket: str, prefix: str = "") -> Iterator[LandingObject]:
        """Every object under ``prefix`` (folder markers left out), in key order."""
        client = self._connect()
        with _landing_errors(f"s3://{bucket}/{prefix}"):
            for item in client.list_objects(bucket, prefix=prefix or None, recursive=True):
                name = item.object_name or ""
                if item.is_dir or name.endswith("/"):
                    continue
                yield LandingObject(bucket, name, int(item.size or 0), str(item.etag or ""))

    def download(self, bucket: str, key: str, dest: Path) -> str:
        """Write the object to ``dest``; its SHA-256."""
        digest = hashlib.sha256()
        where = f"s3://{bucket}/{key}"
        client = self._connect()
        try:
            with _landing_errors(where):
                response = client.get_object(bucket, key)
                try:
                    with dest.open("wb") as out:
                        for chunk in response.stream(_CHUNK):
                            digest.update(chunk)
                            out.write(chunk)
                finally:
                    response.close()
                    response.release_conn()
        except ValueError as exc:  # the SDK's check of a bucket or object name
            raise LandingObjectError(f"{where}: {exc}") from exc
        return digest.hexdigest()

    def _connect(self) -> S3Client:
        if self._client is None:
            endpoint = self.settings.s3_endpoint
            if not endpoint:
                raise NoEndpointError("no S3 endpoint configured for landing buckets: set MEDIAMESH_S3_ENDPOINT")
            self._client = s3_client(
                endpoint,
                access_key=self.settings.s3_access_key or None,
                secret_key=self.settings.s3_secret_key or None,
                secure=self.settings.s3_secure,
                # A sender waits on this answer: fewer, shorter tries than the blob store's.
                read_timeout_s=120,
                retries=3,
            )
        return self._client


def _landing_errors(where: str) -> AbstractContextManager[None]:
    return s3_errors(
        where, refused=LandingObjectError, missing=LandingObjectNotFoundError, missing_codes=_MISSING_CODES
    )
