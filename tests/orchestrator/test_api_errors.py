"""The API answers each error family with one status, from one ordered table."""

from __future__ import annotations

import pytest

from mediamesh.features.errors import (
    BackendUnavailableError,
    CorruptError,
    DefinitionError,
    MediaError,
    MediameshError,
    TransientError,
    UnknownFeatureError,
)
from mediamesh.orchestrator.interfaces.api.errors import status_of
from mediamesh.store import AmbiguousAssetError, AssetNotFoundError, ValueNotFoundError
from mediamesh.store.landing import LandingObjectNotFoundError


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (AmbiguousAssetError("'ab' matches 2 assets"), 409),
        (AssetNotFoundError("no asset matches 'ab'"), 404),
        (ValueNotFoundError("asset ab has no stored shots@9"), 404),
        (LandingObjectNotFoundError("s3://landing/a.mp4: no such object"), 404),
        # An unknown feature is a NotFoundError as well as a DefinitionError: not found wins.
        (UnknownFeatureError("no feature named 'shot'"), 404),
        (BackendUnavailableError("database", "db:5432", "refused", "start it"), 503),
        (CorruptError("blob ab: checksum mismatch"), 500),
        (DefinitionError("'shots@1' names version '1', but version '2' was asked for"), 422),
        (TransientError("the GPU was busy"), 503),
        (MediaError("cannot decode"), 500),
    ],
)
def test_each_error_family_has_one_status(error: MediameshError, status: int) -> None:
    assert status_of(error) == status
