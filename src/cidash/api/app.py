"""The FastAPI application: ``/api/v1``, probes, metrics, security headers and the dashboard.

JSON responses are serialised by pydantic-core straight from the response models (FastAPI's
fast path; ``ORJSONResponse`` is deprecated in the FastAPI this project uses and would go
through ``jsonable_encoder`` first, which is slower).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DBAPIError
from starlette.datastructures import Headers
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import cidash
from cidash import metrics
from cidash.alerts.engine import AlertEngine
from cidash.api import sse, ws
from cidash.api.guard import RequestGuard, document_refusals
from cidash.api.routes import alerts as alert_routes
from cidash.api.routes import api_router
from cidash.api.state import AppState, attach_state, state_of
from cidash.config import Settings
from cidash.domain.views import ServerStatus
from cidash.health import HealthCache
from cidash.live.bus import Bus
from cidash.live.hub import LiveOptions
from cidash.store import Store, reads

log = logging.getLogger(__name__)

FRONTEND_ENV = "CIDASH_FRONTEND_DIR"
DATABASE_RETRY_AFTER_S = 5  # a restarting MariaDB is usually back within seconds (the soak restarts it)
HEALTH_CACHE_TTL_S = 30.0
# For 5 min more a cached value is served at once while it is recomputed in the background: the
# run-level metrics (coverage, agreement) take 0.5-2 s on big histories, and no request should wait.
HEALTH_CACHE_STALE_S = 300.0
"""Run-level health metrics (coverage, agreement, flakiness) and the project list are reused for
this long: they scan a window of ``ci_runs`` and change slowly; counts come fresh from rollups."""
CSP_BASE = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'"
)
"""connect-src is the page's own origin: 'self', plus ws:// and wss:// of the host the page came
from (browsers before CSP level 3 do not count a websocket to the same host as 'self')."""
_HOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
STATIC_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
_CSP_NAME = b"content-security-policy"


def content_security_policy(host: str | None) -> str:
    """The CSP for a page requested with this Host header (one that is not a plain host[:port]
    gets 'self' alone)."""
    if host is None or not _HOST.fullmatch(host):
        return CSP_BASE
    return f"{CSP_BASE} ws://{host} wss://{host}"


FALLBACK_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cidash</title></head>
<body>
<h1>cidash</h1>
<p>The API is running at <a href="api/v1/systems">api/v1/</a> (schema: <a href="openapi.json">openapi.json</a>).</p>
<p>The dashboard is not built. Build it with:</p>
<pre>cd frontend &amp;&amp; npm ci &amp;&amp; npm run build</pre>
<p>then restart cidash (or point CIDASH_FRONTEND_DIR at a built <code>dist/</code> directory).</p>
</body></html>
"""


def default_frontend_dir() -> Path:
    """``$CIDASH_FRONTEND_DIR``, else ``frontend/dist`` of the repository this package lives in."""
    override = os.environ.get(FRONTEND_ENV)
    if override:
        return Path(override).expanduser()
    return Path(cidash.__file__).resolve().parents[2] / "frontend" / "dist"


class Observe:
    """ASGI middleware: security headers on every HTTP response, and request metrics labelled by
    route template (matched against the OpenAPI paths, so the label set stays small)."""

    def __init__(self, app: ASGIApp, templates: Callable[[], list[tuple[re.Pattern[str], str]]]) -> None:
        self.app = app
        self._templates = templates
        self._compiled: list[tuple[re.Pattern[str], str]] | None = None

    def template(self, path: str) -> str:
        if self._compiled is None:
            self._compiled = self._templates()
        for pattern, template in self._compiled:
            if pattern.match(path):
                return template
        return "other"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        csp = content_security_policy(Headers(scope=scope).get("host")).encode()

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    (name, value) for name, value in message.get("headers", []) if name.lower() not in _SECURITY_NAMES
                ]
                headers.extend(STATIC_HEADERS)
                headers.append((_CSP_NAME, csp))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            template = self.template(scope.get("path", ""))
            metrics.HTTP_REQUESTS.labels(scope.get("method", ""), template, str(status)).inc()
            metrics.HTTP_DURATION.labels(template).observe(time.perf_counter() - started)


def _route_templates(app: FastAPI) -> Callable[[], list[tuple[re.Pattern[str], str]]]:
    """The documented paths plus the root probes, literal ones first ("/runs/reparse" before
    "/runs/{run_id}")."""

    def build() -> list[tuple[re.Pattern[str], str]]:
        paths = [*app.openapi().get("paths", {}), "/healthz", "/readyz", "/metrics", "/openapi.json", "/"]
        ordered = sorted(set(paths), key=lambda path: (path.count("{"), -len(path)))
        return [(compile_path(path)[0], path) for path in ordered]

    return build


_SECURITY_NAMES = frozenset([_CSP_NAME, *(name for name, _ in STATIC_HEADERS)])


def _location(loc: Sequence[Any]) -> str:
    parts = [str(part) for part in loc if part not in ("query", "path", "body", "header")]
    return ".".join(parts) or "request"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    messages = []
    for error in exc.errors()[:5]:
        messages.append(f"{_location(error.get('loc', ()))}: {error.get('msg', 'invalid')}")
    return JSONResponse({"detail": "; ".join(messages) or "invalid request"}, status_code=422)


async def _query_error(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=422)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("database error on %s %s: %s", request.method, request.url.path, exc.__class__.__name__)
    return JSONResponse(
        {"detail": "the database is unavailable"},
        status_code=503,
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
    )


def create_app(
    settings: Settings,
    store: Store,
    *,
    status: Callable[[], list[ServerStatus]] | None = None,
    bus: Bus | None = None,
    alerts: AlertEngine | None = None,
    live_options: LiveOptions | None = None,
    extra_routers: Sequence[APIRouter] = (),
    frontend_dir: Path | None = None,
) -> FastAPI:
    """The cidash web application over `store`, with every route: the reads, the live feed
    (``/api/v1/ws``, ``/api/v1/events``) and the incidents and alerts.

    `status` reports each Gerrit server's collector (``/readyz``); `bus` carries the live feed
    (without one, the websocket closes 1011 and ``/events`` answers 503); `alerts` is the incident
    engine (without one, the configured rules are listed as the defaults). `extra_routers` are
    included as they are (tests add their own). The built dashboard is served at ``/`` from
    `frontend_dir` (default :func:`default_frontend_dir`) when it holds an ``index.html``.
    """
    app = FastAPI(
        lifespan=_lifespan,
        title="cidash",
        version=cidash.__version__,
        description="Health of the third-party CI systems voting on Gerrit code review.",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    attach_state(
        app,
        AppState(
            settings=settings,
            store=store,
            health_cache=HealthCache(ttl_s=HEALTH_CACHE_TTL_S, stale_s=HEALTH_CACHE_STALE_S),
            status=status,
            bus=bus,
            alerts=alerts,
            live_options=live_options or LiveOptions(),
        ),
    )

    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(reads.params.QueryError, _query_error)
    app.add_exception_handler(DBAPIError, _database_error)

    for router in (api_router(), ws.router, sse.router, alert_routes.router, *extra_routers):
        app.include_router(router)
    # probes and metrics also at the root, where orchestrators and Prometheus look for them
    app.include_router(_root_probes())

    _serve_frontend(app, frontend_dir if frontend_dir is not None else default_frontend_dir())
    _add_middleware(app, settings)
    return app


def _serve_frontend(app: FastAPI, directory: Path) -> None:
    """The built dashboard at ``/``, or a page saying how to build it."""
    if (directory / "index.html").is_file():
        app.mount("/", StaticFiles(directory=directory, html=True), name="frontend")
    else:

        @app.get("/", response_class=HTMLResponse, include_in_schema=False)
        async def fallback() -> HTMLResponse:
            return HTMLResponse(FALLBACK_PAGE)


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    """Outermost last: metrics around CORS around the request guard."""
    document_refusals(app)
    app.add_middleware(RequestGuard, settings=settings)  # inside CORS: its refusals get CORS headers too
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )
    app.add_middleware(Observe, templates=_route_templates(app))


async def close_app(app: FastAPI) -> None:
    """Stop what the application runs in the background (health refreshes). The lifespan does it;
    call it yourself when the server runs with ``lifespan="off"``."""
    await state_of(app).health_cache.close()


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await close_app(app)


def _root_probes() -> APIRouter:
    from cidash.api.auth import require_read
    from cidash.api.routes.misc import get_metrics, healthz, readyz

    router = APIRouter(include_in_schema=False)
    router.add_api_route("/healthz", healthz, methods=["GET"])
    router.add_api_route("/readyz", readyz, methods=["GET"])
    router.add_api_route("/metrics", get_metrics, methods=["GET"], dependencies=[Depends(require_read)])
    return router
