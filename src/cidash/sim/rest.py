"""The simulated Gerrit's REST API (plain Starlette).

Answers look like Gerrit 3.x: `)]}'` + compact Gson JSON + newline, `application/json;
charset=UTF-8`; errors are text/plain ending with a newline; everything under `/a/` needs HTTP
Basic. Faults (429/500 storms, latency) are read on every `/a/` request. Control endpoints
live under `/__sim/` (no auth). The SSH `gerrit query` command is `cidash.sim.gerrit_query`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote, unquote

import orjson
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from cidash.gerrit.wire import XSSI_PREFIX, gson_dumps
from cidash.sim.faults import FaultRequest, Faults
from cidash.sim.query import MAX_LIMIT, QueryError, parse_query
from cidash.sim.rest_shapes import change_info, mark_more_changes, message_info
from cidash.sim.world import World

# Exactly as Gerrit 3.10 writes them (tests/data/real-gerrit-3.10/rest.json)
_JSON_HEADERS = {
    "Content-Type": "application/json;charset=utf-8",
    "Content-Disposition": "attachment",
    "X-Content-Type-Options": "nosniff",
}
_TEXT_HEADERS = {**_JSON_HEADERS, "Content-Type": "text/plain;charset=utf-8"}
LIST_CHANGES_OPTIONS = frozenset(
    {
        "LABELS",
        "DETAILED_LABELS",
        "SUBMIT_REQUIREMENTS",
        "CURRENT_REVISION",
        "ALL_REVISIONS",
        "CURRENT_COMMIT",
        "ALL_COMMITS",
        "CURRENT_FILES",
        "ALL_FILES",
        "DETAILED_ACCOUNTS",
        "REVIEWER_UPDATES",
        "MESSAGES",
        "CURRENT_ACTIONS",
        "CHANGE_ACTIONS",
        "REVIEWED",
        "SKIP_MERGEABLE",
        "SKIP_DIFFSTAT",
        "SUBMITTABLE",
        "WEB_LINKS",
        "CHECK",
        "COMMIT_FOOTERS",
        "PUSH_CERTIFICATES",
        "TRACKING_IDS",
        "DOWNLOAD_COMMANDS",
        "STAR",
        "CUSTOM_KEYED_VALUES",
        "PARENTS",
    }
)


# -- responses ------------------------------------------------------------------------------------


def _json(value: Any, status: int = 200) -> Response:
    body = (XSSI_PREFIX + gson_dumps(value) + "\n").encode("utf-8")
    return Response(body, status_code=status, headers=_JSON_HEADERS)


def _text(message: str, status: int) -> Response:
    return Response(message if message.endswith("\n") else message + "\n", status_code=status, headers=_TEXT_HEADERS)


def _plain_json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status_code=status, media_type="application/json")


def _int_param(request: Request, *names: str) -> int | None:
    for name in names:
        raw = request.query_params.get(name)
        if raw is not None:
            try:
                return int(raw)
            except ValueError:
                raise _BadRequest(f'"{raw}" is not a valid value for "{name}"') from None
    return None


class _BadRequest(Exception):
    pass


def _options(request: Request) -> frozenset[str]:
    found = set()
    for raw in request.query_params.getlist("o"):
        name = raw.strip().upper()
        if name not in LIST_CHANGES_OPTIONS:
            raise _BadRequest(f'"{raw}" is not a valid value for "-o"')  # Gerrit names the option
        found.add(name)
    return frozenset(found)


def _check_auth(header: str | None, user: str, password: str) -> bool:
    if not header or not header[:6].lower() == "basic ":
        return False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    given_user, sep, given_password = decoded.partition(":")
    if not sep or not given_password:
        return False
    ok_user = secrets.compare_digest(given_user.encode(), user.encode())
    ok_password = secrets.compare_digest(given_password.encode(), password.encode())
    return ok_user and ok_password


def _segments(request: Request) -> list[str]:
    """Path segments after `/a/`, percent-decoded one by one (so `%2F` stays inside a segment)."""
    raw = request.scope.get("raw_path")
    if isinstance(raw, bytes | bytearray):
        path = bytes(raw).split(b"?", 1)[0].decode("latin-1")
    else:
        path = quote(request.url.path)
    parts = path.split("/")[2:]  # drop "" and "a"
    return [unquote(part) for part in parts]


# -- the app -----------------------------------------------------------------------------------------

_DETAIL_OPTIONS = frozenset({"DETAILED_ACCOUNTS", "MESSAGES", "LABELS", "DETAILED_LABELS"})
_UNAUTHORIZED_HEADERS = {
    "Content-Type": "text/plain;charset=iso-8859-1",
    "WWW-Authenticate": 'Basic realm="Gerrit Code Review"',
}


class _GerritApi:
    """The `/a/` endpoints over one world: auth and faults first, then the route by path segments."""

    def __init__(self, world: World, faults: Faults, user: str, password: str) -> None:
        self.world = world
        self.faults = faults
        self.user = user
        self.password = password

    async def handle(self, request: Request) -> Response:
        faults = self.faults
        delay = faults.rest_delay()
        if delay > 0:
            await asyncio.sleep(delay)
        if not _check_auth(request.headers.get("authorization"), self.user, self.password):
            # Jetty's own answer, before Gerrit sees the request
            return Response(b"Unauthorized", status_code=401, headers=_UNAUTHORIZED_HEADERS)
        storm = faults.rest_status()
        if storm == 429:
            faults.count("rest_429")
            return _text("Quota limit reached", 429)
        if storm == 500:
            faults.count("rest_500")
            return _text("Internal server error", 500)
        if request.method not in ("GET", "HEAD"):
            return _text("Method Not Allowed", 405)
        try:
            return self.route(_segments(request), request)
        except (QueryError, _BadRequest) as exc:
            return _text(str(exc), 400)

    def route(self, parts: list[str], request: Request) -> Response:
        head = parts[0] if parts else ""
        rest = parts[1:]
        if head == "changes":
            if not rest or rest == [""]:
                return self.query_changes(request)
            ident, tail = rest[0], [p for p in rest[1:] if p]
            if not tail:
                return self.get_change(ident, request)
            if tail == ["messages"]:
                return self.list_messages(ident)
            if tail == ["detail"]:
                return self.get_change(ident, request, _DETAIL_OPTIONS)
        elif head == "config" and [p for p in rest if p] == ["server", "version"]:
            return _json(self.world.version)
        elif head == "groups" and len(rest) >= 2 and rest[1] == "members" and all(not p for p in rest[2:]):
            return self.group_members(rest[0])
        elif head == "accounts" and len(rest) >= 1 and all(not p for p in rest[1:]):
            return self.account(rest[0])
        return _text("Not found", 404)

    def query_changes(self, request: Request) -> Response:
        world = self.world
        params = request.query_params
        queries = params.getlist("q") or params.getlist("query") or ["status:open"]
        if len(queries) > 10:
            raise _BadRequest("limit of 10 queries")
        limit = _int_param(request, "n", "limit")
        start = _int_param(request, "S", "start") or 0
        if start < 0:
            raise _BadRequest("'start' parameter cannot be less than zero")
        if limit is not None and limit < 0:
            raise _BadRequest("'limit' parameter cannot be less than zero")
        options = _options(request)
        pages: list[list[dict[str, Any]]] = []
        for text in queries:
            query = parse_query(text, world)
            found = query.filter(world.changes.values())
            size = min(limit or MAX_LIMIT, MAX_LIMIT, query.limit or MAX_LIMIT)
            page = [change_info(world, change, options) for change in found[start : start + size]]
            if page and len(found) > start + size:
                mark_more_changes(page[-1])
            pages.append(page)
        return _json(pages[0] if len(pages) == 1 else pages)

    def get_change(self, ident: str, request: Request, extra: frozenset[str] = frozenset()) -> Response:
        change = self.world.find_change(ident)
        if change is None:
            return _text(f"Not found: {ident}", 404)
        return _json(change_info(self.world, change, _options(request) | extra))

    def list_messages(self, ident: str) -> Response:
        change = self.world.find_change(ident)
        if change is None:
            return _text(f"Not found: {ident}", 404)
        return _json([message_info(self.world, message, True) for message in change.messages])

    def group_members(self, ident: str) -> Response:
        world = self.world
        name = ident.replace("+", " ")
        if ident not in (world.group_uuid, world.group_name) and name != world.group_name:
            return _text(f"Not found: {ident}", 404)
        members = sorted(world.group_members(), key=lambda account: (account.name, account.account_id))
        return _json([account.info_detailed for account in members])

    def account(self, ident: str) -> Response:
        world = self.world
        if ident == "self":
            return _json(world.admin.info_detailed)
        found = world.resolve_accounts(ident)
        if len(found) != 1:
            return _text(f"Not found: {ident}", 404)
        return _json(world.accounts[next(iter(found))].info_detailed)


def _control_routes(world: World, faults: Faults, stats: Callable[[], dict[str, object]] | None) -> list[Route]:
    """`/__sim/`: the tests' and the demo's handle on faults, the truth and the counters (no auth)."""

    async def get_faults(request: Request) -> Response:
        return _plain_json(faults.snapshot())

    async def post_faults(request: Request) -> Response:
        body = await request.body()
        try:
            fault_request = FaultRequest.model_validate_json(body or b"{}")
        except ValidationError as exc:
            return _text(f"invalid fault request: {exc}", 400)
        faults.apply(fault_request)
        return _plain_json(faults.snapshot())

    async def truth(request: Request) -> StreamingResponse:
        async def lines() -> AsyncIterator[bytes]:
            chunk: list[bytes] = []
            for line in world.truth_lines():
                chunk.append(line)
                if len(chunk) >= 2000:
                    yield b"".join(chunk)
                    chunk = []
            if chunk:
                yield b"".join(chunk)

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    async def sim_stats(request: Request) -> Response:
        data: dict[str, object] = {
            "changes": len(world.changes),
            "messages": world.message_count,
            "truth_records": len(world.truth),
            "events_generated": world.events_emitted,
        }
        if stats is not None:
            data.update(stats())
        return _plain_json(data)

    return [
        Route("/__sim/faults", get_faults, methods=["GET"]),
        Route("/__sim/faults", post_faults, methods=["POST"]),
        Route("/__sim/truth", truth, methods=["GET"]),
        Route("/__sim/stats", sim_stats, methods=["GET"]),
    ]


def create_rest_app(
    world: World,
    faults: Faults,
    *,
    user: str = "admin",
    password: str = "secret",
    stats: Callable[[], dict[str, object]] | None = None,
) -> Starlette:
    """Gerrit's REST API over `world`, with `faults` applied to every `/a/` request."""
    api = _GerritApi(world, faults, user, password)
    routes = [
        *_control_routes(world, faults, stats),
        Route("/a/{path:path}", api.handle, methods=["GET", "HEAD", "POST", "PUT", "DELETE"]),
    ]
    return Starlette(routes=routes)
