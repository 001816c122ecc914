"""Both blob stores pass one suite: local files, and S3 on a real SeaweedFS."""

from __future__ import annotations

import io
import os
import pickle
import re
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from mediamesh.store.blobs import (
    BlobIntegrityError,
    BlobNotFoundError,
    BlobStore,
    LocalBlobStore,
    S3BlobStore,
    blob_key,
)
from tests.store.blob_support import BUCKET, MIB, requests_sent, s3_store, sha256, stored_files


@pytest.fixture(params=["local", "s3"])
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """A fresh, empty store: a new directory, or a new prefix in the session's bucket."""
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    return s3_store(request.getfixturevalue("seaweed"), tmp_path)


def test_put_bytes_round_trip(blob_store: BlobStore) -> None:
    data = b"shot boundaries\x00\xff" * 100

    info = blob_store.put_bytes(data)

    assert info.sha256 == sha256(data)
    assert info.key == f"sha256/{info.sha256[:2]}/{info.sha256}"
    assert info.size == len(data)
    assert blob_store.exists(info.key)
    assert blob_store.get_bytes(info.key) == data
    assert blob_store.raw_get(info.key) == data


def test_put_file_round_trip(blob_store: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "clip.bin"
    source.write_bytes(os.urandom(70_000))

    info = blob_store.put_file(source)

    assert info.key == blob_key(sha256(source.read_bytes()))
    assert info.size == 70_000
    assert blob_store.get_bytes(info.key) == source.read_bytes()
    dest = tmp_path / "out" / "copy.bin"
    blob_store.copy_to(info.key, dest)
    assert dest.read_bytes() == source.read_bytes()
    assert os.access(dest, os.W_OK), "a copy belongs to the caller and must be writable"


def test_empty_blob(blob_store: BlobStore) -> None:
    info = blob_store.put_bytes(b"")

    assert info.key == blob_key(sha256(b""))
    assert info.size == 0
    assert blob_store.get_bytes(info.key) == b""


def test_same_content_is_stored_once(blob_store: BlobStore, tmp_path: Path) -> None:
    data = b"the same bytes under another name"
    first = blob_store.put_bytes(data)
    stored = blob_store.local_path(first.key).stat() if isinstance(blob_store, LocalBlobStore) else None
    source = tmp_path / "renamed.bin"
    source.write_bytes(data)

    with requests_sent(blob_store) as sent:
        again = blob_store.put_bytes(data)
        from_file = blob_store.put_file(source)
        precomputed = blob_store.put_file(source, sha256=sha256(data))

    assert first == again == from_file == precomputed
    assert list(blob_store.iter_keys()) == [first.key]
    assert not [line for line in sent if line.startswith(("PUT", "POST"))]
    if stored is not None:
        unchanged = blob_store.local_path(first.key).stat()
        assert (unchanged.st_ino, unchanged.st_mtime_ns) == (stored.st_ino, stored.st_mtime_ns)


def test_exists_and_existing(blob_store: BlobStore) -> None:
    a = blob_store.put_bytes(b"a").key
    b = blob_store.put_bytes(b"b").key
    missing = blob_key(sha256(b"never stored"))

    assert blob_store.exists(a)
    assert not blob_store.exists(missing)
    assert blob_store.existing([a, b, missing]) == {a, b}
    assert blob_store.existing([]) == set()


def test_local_path_holds_the_bytes_and_is_reused(blob_store: BlobStore) -> None:
    data = os.urandom(300_000)
    key = blob_store.put_bytes(data).key

    path = blob_store.local_path(key)
    first = path.stat()
    with requests_sent(blob_store) as sent:
        again = blob_store.local_path(key)

    assert path.read_bytes() == data
    assert again == path
    assert (again.stat().st_ino, again.stat().st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
    assert sent == []
    assert not first.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), "blobs are read-only"


def test_precomputed_digest_of_other_content_is_rejected(blob_store: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "asset.bin"
    source.write_bytes(b"original content")
    digest = sha256(source.read_bytes())
    # The file changes after it was hashed and before it is stored, as if rewritten in place.
    source.write_bytes(b"modified content")

    with pytest.raises(BlobIntegrityError, match=r"hash to [0-9a-f]{64}") as raised:
        blob_store.put_file(source, sha256=digest)

    assert not raised.value.retryable
    assert not blob_store.exists(blob_key(digest))
    assert list(blob_store.iter_keys()) == []
    if isinstance(blob_store, LocalBlobStore):
        assert stored_files(blob_store.root) == [], "the temp file is removed too"


def test_source_that_shrank_after_hashing_is_rejected(blob_store: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "asset.bin"
    source.write_bytes(b"x" * 1000)
    digest = sha256(source.read_bytes())
    source.write_bytes(b"x" * 10)

    with pytest.raises(BlobIntegrityError, match="nothing was stored"):
        blob_store.put_file(source, sha256=digest)

    assert not blob_store.exists(blob_key(digest))


def test_precomputed_digest_must_be_hex(blob_store: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "asset.bin"
    source.write_bytes(b"content")

    with pytest.raises(ValueError, match="not a SHA-256 hex digest"):
        blob_store.put_file(source, sha256="ABC")


def _damage(blob_store: BlobStore, key: str, data: bytes) -> None:
    """Overwrite a stored blob behind the store's back."""
    if isinstance(blob_store, LocalBlobStore):
        path = blob_store.root / key
        path.chmod(0o644)
        path.write_bytes(data)
    else:
        assert isinstance(blob_store, S3BlobStore)
        blob_store._client.put_object(BUCKET, f"{blob_store.prefix}/{key}", io.BytesIO(data), len(data))


def test_blob_damaged_behind_the_stores_back_is_rewritten(blob_store: BlobStore) -> None:
    data = b"payload that gets truncated" * 10
    key = blob_store.put_bytes(data).key
    _damage(blob_store, key, data[:5])

    blob_store.put_bytes(data)

    assert blob_store.get_bytes(key) == data


def test_verified_read_catches_a_blob_changed_behind_the_stores_back(blob_store: BlobStore) -> None:
    key = blob_store.put_bytes(b"the bytes that were stored").key
    _damage(blob_store, key, b"other bytes, same length...")

    assert blob_store.get_bytes(key) == b"other bytes, same length..."  # plain reads trust the backend
    with pytest.raises(BlobIntegrityError, match=r"hashes to [0-9a-f]{64}"):
        blob_store.get_bytes(key, verify=True)


def test_delete_and_iter_keys(blob_store: BlobStore) -> None:
    keys = [blob_store.put_bytes(f"value {i}".encode()).key for i in range(3)]

    assert sorted(blob_store.iter_keys()) == sorted(keys)

    blob_store.delete(keys[1])
    blob_store.delete(keys[1])

    assert sorted(blob_store.iter_keys()) == sorted([keys[0], keys[2]])
    assert not blob_store.exists(keys[1])
    with pytest.raises(BlobNotFoundError):
        blob_store.get_bytes(keys[1])


def test_delete_evicts_the_local_path(blob_store: BlobStore) -> None:
    key = blob_store.put_bytes(b"to be collected").key
    blob_store.local_path(key)

    blob_store.delete(key)

    with pytest.raises(BlobNotFoundError):
        blob_store.local_path(key)


def test_iter_keys_skips_temp_files_of_interrupted_writes(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    key = store.put_bytes(b"kept").key
    leftover = store.root / "sha256" / key.split("/")[1] / ".abcdef.crashed.tmp"
    leftover.write_bytes(b"partial")

    assert list(store.iter_keys()) == [key]


def test_missing_key_raises_blob_not_found(blob_store: BlobStore, tmp_path: Path) -> None:
    key = blob_key(sha256(b"never stored"))
    reads: list[Callable[[str], object]] = [
        blob_store.get_bytes,
        blob_store.raw_get,
        blob_store.local_path,
        lambda k: blob_store.copy_to(k, tmp_path / "dest.bin"),
    ]

    for read in reads:
        with pytest.raises(BlobNotFoundError, match=re.escape(f"no blob '{key}' in {blob_store.describe()}")) as raised:
            read(key)
        assert isinstance(raised.value, KeyError)
        assert not raised.value.retryable
    assert not (tmp_path / "dest.bin").exists()


def test_errors_survive_pickling() -> None:
    key = blob_key(sha256(b"x"))
    errors = [BlobNotFoundError(key, "file:///blobs"), BlobIntegrityError("hashes to 00", retryable=True)]

    for error in errors:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert copy.retryable == error.retryable


@pytest.mark.parametrize(
    "key",
    [
        "../../etc/passwd",
        "sha256/ab/" + "cd" * 32,
        "sha256/ab/ab" + "X" * 62,
        "md5/ab/ab" + "0" * 62,
    ],
)
def test_malformed_keys_are_refused(blob_store: BlobStore, key: str, tmp_path: Path) -> None:
    uses: list[Callable[[str], object]] = [
        blob_store.exists,
        blob_store.get_bytes,
        blob_store.local_path,
        blob_store.delete,
        lambda k: blob_store.copy_to(k, tmp_path / "dest.bin"),
    ]

    for use in uses:
        with pytest.raises(ValueError, match="not a blob key"):
            use(key)


def test_large_payload_round_trip(blob_store: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "large.bin"
    source.write_bytes(os.urandom(13 * MIB))

    info = blob_store.put_file(source)

    assert info.size == 13 * MIB
    assert blob_store.get_bytes(info.key) == source.read_bytes()
    assert blob_store.local_path(info.key).read_bytes() == source.read_bytes()
