"""The S3 blob store on SeaweedFS: its cache, multipart uploads, its bucket and its errors; choosing a store."""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from pathlib import Path

import pytest
import urllib3

from mediamesh.features.errors import BackendUnavailableError
from mediamesh.store.blobs import (
    BlobStoreError,
    LocalBlobStore,
    S3BlobStore,
    open_blob_store,
)
from tests.services import S3Endpoint
from tests.store.blob_support import BUCKET, MIB, requests_sent, s3_store, stored_files


def test_s3_local_path_is_downloaded_into_the_cache(seaweed: S3Endpoint, tmp_path: Path) -> None:
    store = s3_store(seaweed, tmp_path)
    key = store.put_bytes(b"cached").key

    with requests_sent(store) as sent:
        path = store.local_path(key)

    assert path == tmp_path / "cache" / key
    assert [line for line in sent if line.startswith("GET")] == [f"GET /{BUCKET}/{store.prefix}/{key}"]
    assert stored_files(tmp_path / "cache") == [path], "no temp file is left beside the cached copy"


def test_s3_multipart_upload_is_verified_by_its_etag(seaweed: S3Endpoint, tmp_path: Path) -> None:
    store = s3_store(seaweed, tmp_path, part_size=5 * MIB)
    data = os.urandom(13 * MIB)
    parts = [data[i : i + 5 * MIB] for i in range(0, len(data), 5 * MIB)]
    expected_etag = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + "-3"

    info = store.put_bytes(data)

    assert store._client.stat_object(BUCKET, f"{store.prefix}/{info.key}").etag == expected_etag
    assert store.get_bytes(info.key) == data


def test_describe(seaweed: S3Endpoint, tmp_path: Path) -> None:
    local = LocalBlobStore(tmp_path / "blobs")
    remote = S3BlobStore(
        f"http://{seaweed.endpoint}",
        BUCKET,
        "/media/v1/",
        access_key=seaweed.access_key,
        secret_key=seaweed.secret_key,
        cache_dir=tmp_path / "cache",
    )

    assert local.describe() == f"file://{tmp_path}/blobs"
    assert remote.describe() == f"s3://{BUCKET}/media/v1 at http://{seaweed.endpoint}"
    assert repr(remote) == f"S3BlobStore('s3://{BUCKET}/media/v1 at http://{seaweed.endpoint}')"


def test_s3_store_creates_its_bucket(seaweed: S3Endpoint, tmp_path: Path) -> None:
    bucket = f"created-{uuid.uuid4().hex[:12]}"

    store = S3BlobStore(
        seaweed.endpoint,
        bucket,
        access_key=seaweed.access_key,
        secret_key=seaweed.secret_key,
        cache_dir=tmp_path / "cache",
    )
    key = store.put_bytes(b"in a new bucket").key

    assert seaweed.client().bucket_exists(bucket)
    assert list(store.iter_keys()) == [key]
    assert store.describe() == f"s3://{bucket} at http://{seaweed.endpoint}"


def test_s3_wrong_secret_is_not_retryable(seaweed: S3Endpoint, tmp_path: Path) -> None:
    with pytest.raises(BlobStoreError, match="SignatureDoesNotMatch") as raised:
        S3BlobStore(seaweed.endpoint, BUCKET, access_key=seaweed.access_key, secret_key="wrong", cache_dir=tmp_path)

    assert not raised.value.retryable


def test_s3_unreachable_endpoint_is_unavailable_and_retryable(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The port was free a moment ago and nothing listens on it now.
    no_retries = urllib3.PoolManager(retries=urllib3.Retry(total=0))

    with pytest.raises(BackendUnavailableError, match="unreachable") as raised:
        S3BlobStore(f"127.0.0.1:{port}", BUCKET, cache_dir=tmp_path, http_client=no_retries)

    assert raised.value.retryable


class TestOpenBlobStore:
    def test_default_is_local_under_home(self, tmp_path: Path) -> None:
        store = open_blob_store(None, home=tmp_path)

        assert isinstance(store, LocalBlobStore)
        assert store.root == tmp_path / "blobs"

    def test_file_url(self, tmp_path: Path) -> None:
        store = open_blob_store(f"file://{tmp_path}/elsewhere", home=tmp_path / "home")

        assert isinstance(store, LocalBlobStore)
        assert store.root == tmp_path / "elsewhere"
        assert store.describe() == f"file://{tmp_path}/elsewhere"

    def test_file_url_without_path(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="names no directory"):
            open_blob_store("file://", home=tmp_path)

    @pytest.mark.parametrize("scheme", ["", "http://"])
    def test_s3_url(self, seaweed: S3Endpoint, tmp_path: Path, scheme: str) -> None:
        prefix = f"open/{uuid.uuid4().hex}"
        store = open_blob_store(
            f"s3://{BUCKET}/{prefix}",
            home=tmp_path,
            s3_endpoint=scheme + seaweed.endpoint,
            s3_access_key=seaweed.access_key,
            s3_secret_key=seaweed.secret_key,
        )

        assert isinstance(store, S3BlobStore)
        assert store.describe() == f"s3://{BUCKET}/{prefix} at http://{seaweed.endpoint}"
        assert store.cache_dir == tmp_path / "cache" / "blobs"
        assert store.get_bytes(store.put_bytes(b"opened").key) == b"opened"

    def test_s3_url_needs_an_endpoint(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="MEDIAMESH_S3_ENDPOINT"):
            open_blob_store(f"s3://{BUCKET}/prefix", home=tmp_path)

    @pytest.mark.parametrize(
        ("object_store", "endpoint", "message"),
        [
            ("s3://", "127.0.0.1:1", "names no bucket"),
            ("s3://Not_A_Bucket/x", "127.0.0.1:1", "invalid S3 bucket name 'Not_A_Bucket'"),
            (f"s3://{BUCKET}", "ftp://127.0.0.1:1", "invalid S3 endpoint 'ftp://127.0.0.1:1'"),
            (f"s3://{BUCKET}", "127.0.0.1:1/path", "invalid S3 endpoint"),
            ("gs://bucket/prefix", None, r"unsupported object store 'gs://bucket/prefix': expected file://PATH"),
            ("/plain/path", None, "unsupported object store"),
        ],
    )
    def test_bad_configuration(self, tmp_path: Path, object_store: str, endpoint: str | None, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            open_blob_store(object_store, home=tmp_path, s3_endpoint=endpoint)

    def test_access_key_needs_a_secret(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="MEDIAMESH_S3_SECRET_KEY"):
            open_blob_store(f"s3://{BUCKET}", home=tmp_path, s3_endpoint="127.0.0.1:1", s3_access_key="key")
