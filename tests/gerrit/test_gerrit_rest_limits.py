"""A hostile Gerrit on loopback: a 300 MiB body, a gzip bomb (1 MiB that expands to 1 GiB) and a body
trickled one byte every 2 s. The REST client ends each request within its deadline and holds no
more than its size cap; a scheduled backfill pass ends at its deadline and says so in /readyz and
/metrics."""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from cidash.config import Settings
from cidash.errors import GerritUnavailableError
from cidash.gerrit.rest import GerritRestClient, ResponseTooLargeError
from cidash.service.runtime import Runtime
from tests.support.loopback_http import (
    MiB,
    Request,
    answer,
    endless_body,
    gzip_bomb,
    loopback_server,
    trickle,
    trickled_gerrit_answer,
)
from tests.support.wait import until_awaited

CAP = 1 * MiB  # the client's cap in these tests; the memory bound below is a few times that


async def declared_huge(request: Request, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (300 * MiB))
    await writer.drain()
    await trickle(writer, b" " * 100, 0.1)


async def bomb(request: Request, writer: asyncio.StreamWriter) -> None:
    await answer(writer, 200, gzip_bomb(), Content_Encoding="gzip", Content_Type="application/json")


trickling = trickled_gerrit_answer(2.0)


async def small_gzip(request: Request, writer: asyncio.StreamWriter) -> None:
    await answer(writer, 200, zlib.compress(b')]}\'\n"3.9.1"', wbits=31), Content_Encoding="gzip")


async def _refused_within_memory(handler: object) -> tuple[Exception, int, float]:
    async with loopback_server(handler) as server:  # type: ignore[arg-type]
        client = GerritRestClient(server.url, max_bytes=CAP, max_attempts=1)
        tracemalloc.start()
        started = time.monotonic()
        try:
            with pytest.raises(GerritUnavailableError) as raised:
                await client.get_json("changes/")
            elapsed = time.monotonic() - started
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            await client.aclose()
    return raised.value, peak, elapsed


@pytest.mark.parametrize("handler", [endless_body, declared_huge, bomb], ids=["300MiB", "declared-300MiB", "gzip-bomb"])
async def test_a_body_over_the_cap_is_refused_without_holding_it(handler: object) -> None:
    error, peak, elapsed = await _refused_within_memory(handler)
    assert isinstance(error, ResponseTooLargeError)
    assert "rest_max_bytes" in str(error)
    assert peak < 6 * CAP, f"peak {peak / MiB:.1f} MiB"  # the old client held 1.3-4.3 GiB here
    assert elapsed < 10


async def test_a_gzip_answer_under_the_cap_is_decoded() -> None:
    async with loopback_server(small_gzip) as server:
        async with GerritRestClient(server.url, max_bytes=CAP) as client:
            assert await client.version() == "3.9.1"
        assert server.requests[0].headers["accept-encoding"] == "gzip"


async def test_a_trickled_body_ends_at_the_request_deadline() -> None:
    async with loopback_server(trickling) as server:
        client = GerritRestClient(server.url, timeout_s=30, deadline_s=2.5, max_attempts=2, backoff_max_s=0.1)
        started = time.monotonic()
        with pytest.raises(GerritUnavailableError) as raised:
            await client.get_json("changes/")
        elapsed = time.monotonic() - started
        await client.aclose()
    assert "deadline of 2.5 s" in str(raised.value)
    assert len(server.requests) == 2
    assert 2 * 2.5 <= elapsed < 2 * 2.5 + 3  # the old client waited 30 s per byte, i.e. for ever


async def test_a_stalled_backfill_pass_ends_and_shows_in_readyz_and_metrics(tmp_path: Path) -> None:
    async with loopback_server(trickling) as gerrit:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'cidash.db'}",
            api={"port": 0},  # type: ignore[arg-type]
            servers=[
                {  # type: ignore[list-item]
                    "name": "slow",
                    "http_url": gerrit.url,
                    "stream": False,
                    "rest_deadline_s": 600,  # so the pass deadline is what ends it
                    "backfill_deadline_s": 1.5,
                }
            ],
        )
        async with Runtime(settings, serve_api=True) as runtime:
            (collector,) = runtime.collectors
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.api_port}") as http:

                async def stalled() -> dict[str, Any] | None:
                    ready = (await http.get("/readyz")).json()
                    return ready if ready["servers"][0]["backfill_stalled"] else None

                # the first pass starts at once and is cut after 1.5 s
                ready = await until_awaited(stalled, 15, "the backfill to be reported stalled", 0.1)
                exposition = (await http.get("/metrics")).text
    assert ready["servers"][0]["backfill_stalled"] is True
    assert 'cidash_backfill_stalled{server="slow"} 1.0' in exposition
    assert "deadline of 1.5 s" in (collector.health.last_error or "")


async def test_a_change_page_over_the_cap_is_asked_again_at_half_the_size() -> None:
    """Big changes (hundreds of messages) must not stall the backfill for good: the page shrinks."""

    async def big_pages(request: Request, writer: asyncio.StreamWriter) -> None:
        size = int(parse_qs(urlsplit(request.path).query)["n"][0])
        if size > 10:
            await answer(writer, 200, b")]}'\n[" + b" " * (2 * CAP) + b"]")
            return
        await answer(writer, 200, b")]}'\n" + json.dumps([{"_number": n} for n in range(size)]).encode())

    async with loopback_server(big_pages) as server:
        async with GerritRestClient(server.url, max_bytes=CAP, max_attempts=1) as client:
            pages = [page async for page in client.query_changes("status:open", page_size=100)]
    assert [len(page) for page in pages] == [6]
    sizes = [int(parse_qs(urlsplit(r.path).query)["n"][0]) for r in server.requests]
    assert sizes == [100, 50, 25, 12, 6]


async def test_one_change_over_the_cap_is_an_error() -> None:
    async with loopback_server(endless_body) as server:
        async with GerritRestClient(server.url, max_bytes=CAP, max_attempts=1) as client:
            with pytest.raises(ResponseTooLargeError):
                [page async for page in client.query_changes("status:open", page_size=4)]
    assert [int(parse_qs(urlsplit(r.path).query)["n"][0]) for r in server.requests] == [4, 2, 1]
