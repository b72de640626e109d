"""Bearer-token access control for ``/api/v1``.

* Writes (PATCH, POST) need ``Authorization: Bearer <api.write_token>``: 401 without a token,
  403 with a wrong one, and 403 "writes disabled" when no write token is configured at all.
  :class:`cidash.api.guard.RequestGuard` checks this from the headers alone, before any byte of
  the body is read; the routes' ``require_write`` says the same in the OpenAPI schema.
* Reads are open, unless ``api.read_token`` is set: then the read token (or the write token)
  must come as a bearer token or as ``?token=`` (for the websocket and quick links).
* Badges follow the reads, unless ``api.public_badges`` opens them to anyone (a README can embed
  them without carrying a token).

Tokens are compared in constant time.
"""

from __future__ import annotations

import secrets

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from cidash.api.state import request_state
from cidash.config import ApiConfig

bearer = HTTPBearer(auto_error=False, description="api.write_token for changes; api.read_token for reads when set")

WRITES_DISABLED = "writes disabled: set api.write_token"
WRITE_TOKEN_REQUIRED = "the write token is required: Authorization: Bearer <api.write_token>"
READ_TOKEN_REQUIRED = "a token is required: Authorization: Bearer <token> or ?token="


def _api(request: Request) -> ApiConfig:
    return request_state(request).settings.api


def _matches(given: str | None, *tokens: SecretStr | None) -> bool:
    if not given:
        return False
    found = False
    for token in tokens:
        if token is not None and secrets.compare_digest(given.encode(), token.get_secret_value().encode()):
            found = True
    return found


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value (None for any other)."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def read_allowed(config: ApiConfig, given: str | None) -> bool:
    """Reads are open unless api.read_token is set; then the read or the write token opens them."""
    return config.read_token is None or _matches(given, config.read_token, config.write_token)


def badges_public(config: ApiConfig) -> bool:
    """Anyone may fetch a badge (and caches may share it): reads are open, or badges opted in."""
    return config.read_token is None or config.public_badges


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


def write_refusal(config: ApiConfig, given: str | None) -> HTTPException | None:
    """Why a write with bearer token `given` is refused (None: it is allowed). ``?token=`` is
    never looked at for writes: a query string ends up in logs and browser history."""
    if config.write_token is None:
        return HTTPException(status.HTTP_403_FORBIDDEN, WRITES_DISABLED)
    if not given:
        return _unauthorized(WRITE_TOKEN_REQUIRED)
    if not _matches(given, config.write_token):
        return HTTPException(status.HTTP_403_FORBIDDEN, "invalid token")
    return None


def _given(request: Request) -> str | None:
    """The token a request carries: a bearer token, else ``?token=``."""
    return bearer_token(request.headers.get("authorization")) or request.query_params.get("token") or None


def reads_open_to(request: Request) -> bool:
    """May this request read (for routes that answer less, rather than 401, without the token)?"""
    return read_allowed(_api(request), _given(request))


def _check_read(request: Request) -> None:
    config = _api(request)
    if config.read_token is None:
        return
    given = _given(request)
    if not given:
        raise _unauthorized(READ_TOKEN_REQUIRED)
    if not read_allowed(config, given):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "invalid token")


async def require_read(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
    """Dependency of every read route: passes when reads are open or a valid token is given
    (`credentials` is there for the OpenAPI schema; the header is read by :func:`_given`)."""
    _check_read(request)


async def require_badge(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
    """Dependency of the badges: open with ``api.public_badges``, else the same as a read."""
    if not _api(request).public_badges:
        _check_read(request)


async def require_write(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
    """Dependency of every route that changes something."""
    refusal = write_refusal(_api(request), bearer_token(request.headers.get("authorization")))
    if refusal is not None:
        raise refusal
