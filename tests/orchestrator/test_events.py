"""S3 and MinIO event notifications read into the objects they announce."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mediamesh.orchestrator.interfaces.events import (
    Announcement,
    EventRejectedError,
    S3Notification,
    announcements,
    object_key,
)

LANDING = ("landing",)


def _record(key: str, bucket: str = "landing", event: str | None = "ObjectCreated:Put") -> dict[str, Any]:
    record: dict[str, Any] = {"s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 5, "eTag": "abc"}}}
    if event is not None:
        record["eventName"] = event
    return record


def _judge(body: dict[str, Any], landing: tuple[str, ...] = LANDING) -> list[Announcement]:
    return announcements(S3Notification.model_validate(body), landing)


def test_an_aws_notification_announces_its_new_objects() -> None:
    body = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "eu-west-1",
                "eventTime": "2024-05-01T12:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "landing",
                    "bucket": {"name": "landing", "arn": "arn:aws:s3:::landing"},
                    "object": {
                        "key": "movies/Big+Buck+Bunny%21.mp4",
                        "size": 1055736,
                        "eTag": "0123",
                        "sequencer": "1",
                    },
                },
            },
            _record("trailer.mp4", event="ObjectCreated:CompleteMultipartUpload"),
        ]
    }
    assert _judge(body) == [
        Announcement("landing", "movies/Big Buck Bunny!.mp4", "ObjectCreated:Put", "new", "", 1055736, "0123"),
        Announcement("landing", "trailer.mp4", "ObjectCreated:CompleteMultipartUpload", "new", "", 5, "abc"),
    ]


def test_a_minio_notification_with_top_level_event_name_and_key() -> None:
    body = {
        "EventName": "s3:ObjectCreated:Put",
        "Key": "landing/dir/a b.mp4",
        "Records": [_record("dir/a+b.mp4", event="s3:ObjectCreated:Put")],
    }
    [found] = _judge(body)
    assert (found.bucket, found.key, found.status) == ("landing", "dir/a b.mp4", "new")
    # A record without its own eventName takes MinIO's top-level one.
    [found] = _judge({"EventName": "s3:ObjectCreated:Copy", "Records": [_record("x.mp4", event=None)]})
    assert (found.event, found.status) == ("s3:ObjectCreated:Copy", "new")
    # Without records, MinIO's top-level Key (a plain name) is the object.
    [found] = _judge({"EventName": "s3:ObjectCreated:Put", "Key": "landing/dir/50% off.mp4"})
    assert (found.bucket, found.key, found.status) == ("landing", "dir/50% off.mp4", "new")


def test_only_object_created_events_count() -> None:
    body = {
        "Records": [
            _record("gone.mp4", event="s3:ObjectRemoved:Delete"),
            _record("read.mp4", event="s3:ObjectAccessed:Get"),
            _record("tagged.mp4", event="s3:ObjectCreated:PutTagging"),
            _record("nameless.mp4", event=None),
            _record("movies%2F"),
        ]
    }
    found = _judge(body)
    assert [f.status for f in found] == ["ignored"] * 5
    assert found[0].detail == "s3:ObjectRemoved:Delete adds no object"
    assert found[2].detail == "s3:ObjectCreated:PutTagging changes metadata, not bytes"
    assert found[3].detail == "an event without a name adds no object"
    assert (found[4].key, found[4].detail) == ("movies/", "a folder marker, not a file")
    # The AWS test event sent when a notification is configured has no records.
    assert _judge({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "landing"}) == []


def test_keys_are_url_decoded() -> None:
    assert object_key("a+b%2Bc.mp4") == "a b+c.mp4"
    assert object_key("caf%C3%A9/%E6%98%A0%E7%94%BB.mp4") == "café/映画.mp4"
    assert object_key("plain/path/./x.mp4") == "plain/path/./x.mp4"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "the object key is empty"),
        ("..%2F..%2Fetc%2Fpasswd", r"object key '\.\./\.\./etc/passwd' has a '\.\.' segment"),
        ("movies/../secret.mp4", "has a '..' segment"),
        ("%2Fetc%2Fpasswd", "object key '/etc/passwd' is an absolute path"),
        ("dir%5Cfile.mp4", "contains a backslash"),
        ("a%00b.mp4", "contains NUL or control characters"),
        ("line%0Abreak.mp4", "contains NUL or control characters"),
        ("bad%FF.mp4", "is not valid UTF-8 once URL-decoded"),
        ("k" * 1025, "longer than 1024 bytes"),
    ],
)
def test_unsafe_keys_are_rejected(raw: str, message: str) -> None:
    with pytest.raises(EventRejectedError, match=message):
        object_key(raw)
    [found] = _judge({"Records": [_record(raw)]})
    assert found.status == "rejected"
    assert found.detail.startswith(("object key", "the object key"))


def test_a_key_with_dots_that_are_not_a_segment_is_fine() -> None:
    assert object_key("v1..2/movie..mp4") == "v1..2/movie..mp4"


def test_an_unknown_bucket_is_rejected() -> None:
    [found] = _judge({"Records": [_record("a.mp4", bucket="elsewhere")]}, landing=("landing", "uploads"))
    assert (found.status, found.detail) == ("rejected", "bucket 'elsewhere' is not a landing bucket (landing, uploads)")
    [found] = _judge({"Records": [_record("a.mp4")]}, landing=())
    assert (
        found.detail == "bucket 'landing' is not a landing bucket (none configured: set MEDIAMESH_API_LANDING_BUCKETS)"
    )


def test_a_malformed_notification_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match=r"Records\.0\.s3\.bucket\s+Field required"):
        S3Notification.model_validate({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": "k"}}}]})
    with pytest.raises(ValidationError, match="valid dictionary"):
        S3Notification.model_validate([_record("a.mp4")])
    with pytest.raises(ValidationError, match=r"size\s+Input should be greater than or equal to 0"):
        S3Notification.model_validate(
            {"Records": [{"s3": {"bucket": {"name": "b"}, "object": {"key": "k", "size": -1}}}]}
        )
