"""The one way mediamesh speaks S3 (MinIO, SeaweedFS, AWS): a client factory and one error mapping.

``s3_client`` builds the MinIO SDK client every S3 user in mediamesh shares (the blob store, the landing
reader, the dev stack's readiness probe): endpoint, keys, TLS with a CA bundle, short connect timeouts and
bounded retries. ``s3_errors`` turns what the SDK and urllib3 raise into the error tree
(``features/errors.py``): a failure that passes (5xx, ``SlowDown``, ...) is an ``ObjectStoreFailedError``, an
endpoint that cannot be reached a ``BackendUnavailableError`` (both retryable); a missing object is whatever
the caller's ``missing`` builds, and a refusal whatever its ``refused`` builds.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Collection, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mediamesh.features.errors import BackendUnavailableError, MediameshError, UnavailableError

# The MinIO SDK (with urllib3, and the crypto it loads) is imported where a client is built or used: a home
# with local blobs never pays for it. ``S3Client`` is its client class, loaded on first use (``__getattr__``).
if TYPE_CHECKING:
    import urllib3
    from minio import Minio as S3Client

__all__ = [
    "MISSING_OBJECT_CODES",
    "RETRYABLE_S3_CODES",
    "ObjectStoreFailedError",
    "S3Client",
    "ensure_buckets",
    "s3_client",
    "s3_errors",
    "split_endpoint",
]


def __getattr__(name: str) -> Any:
    if name == "S3Client":
        from minio import Minio

        return Minio
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


RETRYABLE_S3_CODES = frozenset(
    {"InternalError", "OperationAborted", "RequestTimeout", "ServiceUnavailable", "SlowDown"}
)
MISSING_OBJECT_CODES = frozenset({"NoSuchKey", "NoSuchObject"})
_UNREACHABLE_HINT = "start it (or check MEDIAMESH_S3_ENDPOINT), then run again"


class ObjectStoreFailedError(UnavailableError):
    """The object store answered, with a failure that passes (a 5xx, ``SlowDown``); trying again can help."""


def s3_client(
    endpoint: str,
    *,
    access_key: str | None = None,
    secret_key: str | None = None,
    secure: bool = False,
    region: str | None = None,
    ca_bundle: str | None = None,
    connect_timeout_s: float = 10,
    read_timeout_s: float = 300,
    retries: int = 5,
    http_client: urllib3.PoolManager | None = None,
) -> S3Client:
    """A client for ``endpoint`` (``http(s)://HOST[:PORT]``, or ``HOST[:PORT]`` with ``secure`` deciding TLS).

    TLS trusts ``ca_bundle``, else ``$SSL_CERT_FILE``, else certifi's bundle. The SDK's default connect timeout
    is minutes; an unreachable store should fail fast. ``retries`` covers refused connections and 5xx answers.
    ``http_client``, when given, replaces the connection pool these settings describe.
    """
    import certifi
    import urllib3
    from minio import Minio

    host, tls = split_endpoint(endpoint, secure)
    http = http_client or urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=connect_timeout_s, read=read_timeout_s),
        maxsize=10,
        ca_certs=ca_bundle or os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(total=retries, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )
    return Minio(host, access_key=access_key, secret_key=secret_key, secure=tls, region=region, http_client=http)


def ensure_buckets(client: S3Client, buckets: Collection[str]) -> None:
    """Create each bucket that does not exist yet; one created meanwhile by another process is fine."""
    from minio.error import S3Error

    for bucket in buckets:
        if client.bucket_exists(bucket):
            continue
        try:
            client.make_bucket(bucket)
        except S3Error as error:
            if error.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise


@contextlib.contextmanager
def s3_errors(
    where: str,
    *,
    refused: Callable[[str], MediameshError],
    missing: Callable[[str], MediameshError] | None = None,
    missing_codes: Collection[str] = MISSING_OBJECT_CODES,
) -> Iterator[None]:
    """Raise what the SDK and urllib3 raise inside the block as the error tree's errors.

    ``missing`` builds the error for an S3 code in ``missing_codes`` (from the message); ``refused`` the one for
    anything else the store will answer the same way again (credentials, permissions, a bad bucket).
    """
    import urllib3
    from minio.error import MinioException, S3Error, ServerError

    try:
        yield
    except S3Error as error:
        if missing is not None and error.code in missing_codes:
            raise missing(f"{where}: {error.code}: {error.message}") from error
        status = error.response.status if error.response is not None else 0
        if error.code in RETRYABLE_S3_CODES or status >= 500:
            raise ObjectStoreFailedError(f"{where} failed: {error.code}: {error.message}") from error
        raise refused(f"{where} refused: {error.code}: {error.message}") from error
    except ServerError as error:
        raise ObjectStoreFailedError(f"{where} failed: {error}") from error
    except urllib3.exceptions.HTTPError as error:
        raise BackendUnavailableError("object store", where, _reason(error), _UNREACHABLE_HINT) from error
    except MinioException as error:
        raise refused(f"{where} failed: {error}") from error


def split_endpoint(endpoint: str, secure: bool) -> tuple[str, bool]:
    """``host:port`` for the SDK, and whether to use TLS: a URL's scheme decides, else ``secure``."""
    if "://" in endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
            raise ValueError(f"invalid S3 endpoint {endpoint!r}: expected http(s)://HOST[:PORT] or HOST[:PORT]")
        return parts.netloc, parts.scheme == "https"
    if not endpoint or "/" in endpoint:
        raise ValueError(f"invalid S3 endpoint {endpoint!r}: expected http(s)://HOST[:PORT] or HOST[:PORT]")
    return endpoint, secure


def _reason(error: BaseException) -> str:
    """The last, most specific cause of a transport error, in one line (urllib3 nests them deeply)."""
    reason: BaseException = error
    while getattr(reason, "reason", None) is not None and isinstance(reason.reason, BaseException):  # type: ignore[attr-defined]
        reason = reason.reason  # type: ignore[attr-defined]
    text = " ".join(str(reason).split())
    return text.split(": ", 1)[-1] if ">: " in text else text
