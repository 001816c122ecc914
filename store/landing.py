"""Landing buckets: where new media arrives, read over S3 (MinIO, SeaweedFS, AWS) with the store's credentials.

``LandingReader(settings)`` lists a bucket prefix and downloads objects while hashing them; it speaks to
the endpoint ``MEDIAMESH_S3_ENDPOINT`` names with ``MEDIAMESH_S3_ACCESS_KEY`` / ``_SECRET_KEY``. An object
that is missing or refused is a :class:`LandingObjectError` (announcing it again will not help); an
unreachable or failing endpoint is a :class:`TransientError` (it will).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error, ServerError

from mediamesh.features.errors import MediameshError, TransientError
from mediamesh.store.blobs import split_endpoint
from mediamesh.store.config import StoreSettings

__all__ = ["LandingObject", "LandingObjectError", "LandingReader", "NoEndpointError"]

_CHUNK = 1 << 20
_RETRYABLE_S3_CODES = frozenset(
    {"InternalError", "OperationAborted", "RequestTimeout", "ServiceUnavailable", "SlowDown"}
)


class LandingObjectError(MediameshError):
    """A landing object cannot be read (missing, refused); announcing it again will not help."""


class NoEndpointError(MediameshError):
    """No S3 endpoint is configured to read landing buckets from."""

    retryable = True


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
    _client: Any = None

    def objects(self, bucket: str, prefix: str = "") -> Iterator[LandingObject]:
        """Every object under ``prefix`` (folder markers left out), in key order."""
        where = f"s3://{bucket}/{prefix}"
        try:
            for item in self._connect().list_objects(bucket, prefix=prefix or None, recursive=True):
                if item.is_dir or item.object_name.endswith("/"):
                    continue
                yield LandingObject(bucket, item.object_name, int(item.size or 0), str(item.etag or ""))
        except S3Error as exc:
            raise self._s3_error(where, exc) from exc
        except (ServerError, urllib3.exceptions.HTTPError) as exc:
            raise TransientError(f"{where}: the object store is unreachable: {type(exc).__name__}") from exc

    def download(self, bucket: str, key: str, dest: Path) -> str:
        """Write the object to ``dest``; its SHA-256."""
        digest = hashlib.sha256()
        where = f"s3://{bucket}/{key}"
        try:
            response = self._connect().get_object(bucket, key)
            try:
                with dest.open("wb") as out:
                    for chunk in response.stream(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            finally:
                response.close()
                response.release_conn()
        except S3Error as exc:
            raise self._s3_error(where, exc) from exc
        except (ServerError, urllib3.exceptions.HTTPError) as exc:
            raise TransientError(f"{where}: the object store is unreachable: {type(exc).__name__}") from exc
        except (MinioException, ValueError) as exc:
            raise LandingObjectError(f"{where}: {exc}") from exc
        return digest.hexdigest()

    @staticmethod
    def _s3_error(where: str, exc: S3Error) -> MediameshError:
        status = exc.response.status if exc.response is not None else 0
        if exc.code in _RETRYABLE_S3_CODES or status >= 500:
            return TransientError(f"{where}: the object store failed: {exc.code}")
        return LandingObjectError(f"{where}: {exc.code}: {exc.message}")

    def _connect(self) -> Any:
        if self._client is None:
            endpoint = self.settings.s3_endpoint
            if not endpoint:
                raise NoEndpointError("no S3 endpoint configured for landing buckets: set MEDIAMESH_S3_ENDPOINT")
            host, secure = split_endpoint(endpoint, self.settings.s3_secure)
            http = urllib3.PoolManager(
                # The SDK's default connect timeout is minutes; a sender waits on this answer.
                timeout=urllib3.Timeout(connect=10, read=120),
                retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
            )
            self._client = Minio(
                host,
                access_key=self.settings.s3_access_key or None,
                secret_key=self.settings.s3_secret_key or None,
                secure=secure,
                http_client=http,
            )
        return self._client
