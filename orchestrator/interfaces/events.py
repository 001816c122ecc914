"""S3 event notifications (AWS and MinIO) read into the objects they announce.

A notification is ``{"Records": [{"eventName": ..., "s3": {"bucket": {"name": ...}, "object": {"key": ...}}}]}``;
MinIO also sends ``EventName`` and ``Key`` (``bucket/key``, not URL-encoded) at the top level, and AWS sends
``{"Event": "s3:TestEvent"}`` with no records when a notification is first configured. Each record is judged
on its own: a new object in a landing bucket is ``new``; any other event is ``ignored``; an object whose key
is unsafe, or that lies outside the landing buckets, is ``rejected`` with a message that says why.
"""

from __future__ import annotations

import unicodedata
import urllib.parse
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mediamesh.features.errors import DefinitionError

__all__ = [
    "Announcement",
    "EventRejectedError",
    "FilerEvent",
    "S3Bucket",
    "S3Entity",
    "S3Notification",
    "S3Object",
    "S3Record",
    "announcements",
    "filer_announcements",
    "object_key",
    "safe_key",
]

# S3 limits a key to 1,024 bytes of UTF-8.
MAX_KEY_BYTES = 1024
# ObjectCreated events that change an existing object's metadata, not its bytes.
_METADATA_EVENTS = frozenset({"PutRetention", "PutLegalHold", "PutTagging", "DeleteTagging"})


class EventRejectedError(DefinitionError):
    """An event names an object mediamesh will not read: an unsafe key or a bucket that is not a landing bucket."""


class _Model(BaseModel):
    # Senders add fields freely (AWS: requestParameters, userIdentity, ...); only these few are read.
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class S3Bucket(_Model):
    name: str


class S3Object(_Model):
    key: str = Field(description="The object key, URL-encoded as S3 sends it ('+' for a space).")
    size: int | None = Field(default=None, ge=0)
    etag: str | None = Field(default=None, alias="eTag")


class S3Entity(_Model):
    bucket: S3Bucket
    object_: S3Object = Field(alias="object")


class S3Record(_Model):
    event_name: str | None = Field(default=None, alias="eventName")
    s3: S3Entity


class S3Notification(_Model):
    """An S3 or MinIO event notification, as posted to a webhook."""

    records: list[S3Record] = Field(default_factory=list, alias="Records")
    event_name: str | None = Field(default=None, alias="EventName", description="MinIO: the records' event.")
    key: str | None = Field(default=None, alias="Key", description="MinIO: 'bucket/key' of the single record.")
    event: str | None = Field(default=None, alias="Event", description="AWS: 's3:TestEvent' on configuration.")


@dataclass(frozen=True)
class Announcement:
    """One record of a notification, judged: a ``new`` object to register, ``ignored`` or ``rejected``."""

    bucket: str
    key: str
    event: str
    status: Literal["new", "ignored", "rejected"]
    detail: str = ""
    size: int | None = None
    etag: str | None = None


def announcements(notification: S3Notification, landing_buckets: Collection[str]) -> list[Announcement]:
    """Each record of ``notification`` judged against the landing buckets, in order."""
    if not notification.records:
        if notification.event_name and notification.key and "/" in notification.key:
            bucket, key = notification.key.split("/", 1)
            # MinIO's top-level Key is the plain name; quote it so that it reads like a record's key.
            record = S3Record(
                eventName=notification.event_name,
                s3=S3Entity(bucket=S3Bucket(name=bucket), object=S3Object(key=urllib.parse.quote_plus(key, safe="/"))),
            )
            return [_judge(record, notification.event_name, landing_buckets)]
        return []
    return [_judge(record, notification.event_name, landing_buckets) for record in notification.records]


def object_key(raw: str) -> str:
    """The object key an event names: URL-decoded (``+`` is a space), refused when it is unsafe to use as a name.

    Refused: an empty key, invalid UTF-8, ``..`` segments, a leading ``/``, backslashes, NUL and other
    control characters, and keys longer than S3 allows.
    """
    try:
        key = urllib.parse.unquote_plus(raw, errors="strict")
    except UnicodeDecodeError:
        raise EventRejectedError(f"object key {raw!r} is not valid UTF-8 once URL-decoded") from None
    return safe_key(key)


def safe_key(key: str) -> str:
    """``key`` itself (not URL-encoded), unless it is unsafe to use as a name (see :func:`object_key`)."""
    if not key:
        raise EventRejectedError("the object key is empty")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise EventRejectedError(f"object key is longer than {MAX_KEY_BYTES} bytes")
    if any(unicodedata.category(c) == "Cc" for c in key):
        raise EventRejectedError(f"object key {key!r} contains NUL or control characters")
    if "\\" in key:
        raise EventRejectedError(f"object key {key!r} contains a backslash")
    if key.startswith("/"):
        raise EventRejectedError(f"object key {key!r} is an absolute path")
    if ".." in key.split("/"):
        raise EventRejectedError(f"object key {key!r} has a '..' segment")
    return key


class FilerEntry(_Model):
    name: str = ""
    is_directory: bool = False


class FilerMessage(_Model):
    new_entry: FilerEntry | None = None
    new_parent_path: str | None = None


class FilerEvent(_Model):
    """A SeaweedFS filer webhook event: ``{"event_type": "create", "key": "/buckets/B/KEY", "message": ...}``."""

    event_type: str = Field(description="create, update, delete or rename.")
    key: str = Field(description="The filer path: /buckets/BUCKET/KEY for S3 objects.")
    message: FilerMessage = Field(default_factory=FilerMessage)


def filer_announcements(
    event: FilerEvent, landing_buckets: Collection[str], root: str = "/buckets/"
) -> list[Announcement]:
    """A SeaweedFS filer event judged like an S3 record: a file created or rewritten in a landing bucket is new."""
    name = f"filer:{event.event_type}"
    if event.event_type not in ("create", "update") or event.message.new_entry is None:
        return [Announcement("", event.key, name, "ignored", f"a filer {event.event_type!r} event adds no object")]
    if event.message.new_entry.is_directory:
        return [Announcement("", event.key, name, "ignored", "a folder, not a file")]
    if not event.key.startswith(root) or "/" not in event.key.removeprefix(root):
        return [Announcement("", event.key, name, "rejected", f"{event.key!r} is not an object under {root}BUCKET/")]
    bucket, raw_key = event.key.removeprefix(root).split("/", 1)
    try:
        key = safe_key(raw_key)
    except EventRejectedError as exc:
        return [Announcement(bucket, raw_key, name, "rejected", str(exc))]
    return [_landing(bucket, key, name, landing_buckets)]


def _landing(bucket: str, key: str, event: str, landing_buckets: Collection[str]) -> Announcement:
    if bucket not in landing_buckets:
        configured = ", ".join(sorted(landing_buckets)) or "none configured: set MEDIAMESH_API_LANDING_BUCKETS"
        return Announcement(bucket, key, event, "rejected", f"bucket {bucket!r} is not a landing bucket ({configured})")
    return Announcement(bucket, key, event, "new")


def _judge(record: S3Record, default_event: str | None, landing_buckets: Collection[str]) -> Announcement:
    event = record.event_name or default_event or ""
    bucket = record.s3.bucket.name
    raw_key = record.s3.object_.key
    size, etag = record.s3.object_.size, record.s3.object_.etag
    kind = _created_kind(event)
    if kind is None:
        return Announcement(bucket, raw_key, event, "ignored", f"{event or 'an event without a name'} adds no object")
    if kind in _METADATA_EVENTS:
        return Announcement(bucket, raw_key, event, "ignored", f"{event} changes metadata, not bytes")
    try:
        key = object_key(raw_key)
    except EventRejectedError as exc:
        return Announcement(bucket, raw_key, event, "rejected", str(exc), size, etag)
    if key.endswith("/"):
        return Announcement(bucket, key, event, "ignored", "a folder marker, not a file", size, etag)
    if bucket not in landing_buckets:
        configured = ", ".join(sorted(landing_buckets)) or "none configured: set MEDIAMESH_API_LANDING_BUCKETS"
        detail = f"bucket {bucket!r} is not a landing bucket ({configured})"
        return Announcement(bucket, key, event, "rejected", detail, size, etag)
    return Announcement(bucket, key, event, "new", "", size, etag)


def _created_kind(event: str) -> str | None:
    """``Put`` for ``s3:ObjectCreated:Put`` or ``ObjectCreated:Put``; None for any event but ObjectCreated."""
    parts = event.removeprefix("s3:").split(":")
    if parts[0] != "ObjectCreated":
        return None
    return parts[1] if len(parts) > 1 else "*"
