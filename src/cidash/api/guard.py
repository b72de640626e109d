"""What is decided from a request's headers, before any byte of its body is read.

A request that may carry a body (any method but GET, HEAD and OPTIONS: every one of them is a
write) needs the write token, and a body declared larger than ``api.max_body_bytes`` is refused
with 413, whatever the route. A body sent without a length (chunked) is counted as it arrives and
refused with the same 413 once it passes the limit. So an anonymous client cannot make the server
buffer anything, and an authorised one at most ``api.max_body_bytes``. (FastAPI's own
``max_body_size`` is not used: it answers every request declaring a big body with its own plain
413, even the one refused for want of a token.)
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cidash.api.auth import bearer_token, write_refusal
from cidash.config import Settings

BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CLOSE = {"Connection": "close"}


def document_refusals(app: FastAPI) -> None:
    """Put the guard's 413 into the OpenAPI schema of every operation it applies to (the routes
    cannot declare it: the guard answers before they run)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for operations in schema.get("paths", {}).values():
                for method, operation in operations.items():
                    if method.upper() not in BODYLESS_METHODS:
                        operation.setdefault("responses", {}).setdefault(
                            "413",
                            {
                                "description": "The request body is over api.max_body_bytes",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
                            },
                        )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def too_large(limit: int, declared: int | None = None) -> HTTPException:
    if declared is None:  # sent without a length: cut when it passed the limit
        detail = f"request body too large: more than the limit of {limit:,} bytes (api.max_body_bytes)"
    else:
        detail = f"request body too large: {declared:,} bytes; the limit is {limit:,} bytes (api.max_body_bytes)"
    return HTTPException(413, detail, headers=dict(CLOSE))


async def _refuse(refusal: HTTPException, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer without reading the body, and close the connection: uvicorn would otherwise read
    (and drop) the rest of a refused body to keep the connection alive."""
    response = JSONResponse(
        {"detail": refusal.detail}, refusal.status_code, headers={**(refusal.headers or {}), **CLOSE}
    )
    await response(scope, receive, send)


def _declared_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    if value is None or not value.strip().isdigit():
        return None  # the HTTP server refuses a malformed length before we see the request
    return int(value)


class RequestGuard:
    """ASGI middleware: write token and declared body size, checked from the headers."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        api = self.settings.api
        if scope["method"] not in BODYLESS_METHODS:
            refusal = write_refusal(api, bearer_token(headers.get("authorization")))
            if refusal is not None:
                await _refuse(refusal, scope, receive, send)
                return
        limit = api.max_body_bytes
        declared = _declared_length(headers)
        if declared is not None and declared > limit:
            await _refuse(too_large(limit, declared), scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            # FastAPI passes an HTTPException raised while it reads the body on to the handlers
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(limit)
            return message

        await self.app(scope, counted, send)
