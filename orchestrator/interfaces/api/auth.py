"""Bearer-token access: writes always need ``MEDIAMESH_API_TOKEN``; reads too, unless reads are open."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

if TYPE_CHECKING:
    from mediamesh.orchestrator.interfaces.api.app import ApiSettings

__all__ = ["access"]

_NO_TOKEN = "no API token configured: set MEDIAMESH_API_TOKEN"
_bearer = HTTPBearer(auto_error=False, description="The token set in MEDIAMESH_API_TOKEN.")
_Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def access(settings: ApiSettings) -> tuple[list[Any], list[Any]]:
    """The dependencies of reads and of writes, as route ``dependencies`` lists."""

    def write_access(credentials: _Credentials) -> None:
        _check_token(settings, credentials)

    def read_access(credentials: _Credentials) -> None:
        if not settings.open_reads:
            _check_token(settings, credentials)

    return [Depends(read_access)], [Depends(write_access)]


def _check_token(settings: ApiSettings, credentials: HTTPAuthorizationCredentials | None) -> None:
    if settings.token is None:
        raise HTTPException(503, _NO_TOKEN)
    if credentials is None:
        raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    expected = settings.token.get_secret_value().encode()
    if not hmac.compare_digest(credentials.credentials.encode(), expected):
        raise HTTPException(
            403, "the bearer token is wrong", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )
