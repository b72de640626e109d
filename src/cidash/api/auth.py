"""Bearer-token access control for ``/api/v1``.

* Writes (PATCH, POST) need ``Authorization: Bearer <api.write_token>``: 401 without a token,
  403 with a wrong one, and 403 "writes disabled" when no write token is configured at all.
* Reads are open, unless ``api.read_token`` is set: then the read token (or the write token)
  must come as a bearer token or as ``?token=`` (for ``<img>`` badges and quick links).

Tokens are compared in constant time.
"""

from __future__ import annotations

import secrets

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from cidash.config import ApiConfig

bearer = HTTPBearer(auto_error=False, description="api.write_token for changes; api.read_token for reads when set")

WRITES_DISABLED = "writes disabled: set api.write_token"


def _api(request: Request) -> ApiConfig:
    config: ApiConfig = request.app.state.settings.api
    return config


def _matches(given: str | None, *tokens: SecretStr | None) -> bool:
    if not given:
        return False
    found = False
    for token in tokens:
        if token is not None and secrets.compare_digest(given.encode(), token.get_secret_value().encode()):
            found = True
    return found


def read_allowed(config: ApiConfig, given: str | None) -> bool:
    """Reads are open unless api.read_token is set; then the read or the write token opens them."""
    return config.read_token is None or _matches(given, config.read_token, config.write_token)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


async def require_read(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
    """Dependency of every read route: passes when reads are open or a valid token is given."""
    config = _api(request)
    if config.read_token is None:
        return
    given = credentials.credentials if credentials is not None else request.query_params.get("token")
    if not given:
        raise _unauthorized("a token is required: Authorization: Bearer <token> or ?token=")
    if not read_allowed(config, given):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "invalid token")


async def require_write(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
    """Dependency of every route that changes something."""
    config = _api(request)
    if config.write_token is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, WRITES_DISABLED)
    if credentials is None or not credentials.credentials:
        raise _unauthorized("the write token is required: Authorization: Bearer <api.write_token>")
    if not _matches(credentials.credentials, config.write_token):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "invalid token")
