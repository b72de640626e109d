"""A raw HTTP/1.1 server on 127.0.0.1 for the hostile-peer tests: its handler writes whatever bytes
it likes, as slowly as it likes (a trickling webhook receiver, a Gerrit sending an endless body or
a gzip bomb)."""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field


@dataclass
class Request:
    method: str
    path: str  # with its query string
    headers: dict[str, str]  # lower-case names
    body: bytes


Handler = Callable[[Request, asyncio.StreamWriter], Awaitable[None]]
MiB = 1024 * 1024


@dataclass
class LoopbackServer:
    url: str
    requests: list[Request] = field(default_factory=list)


async def answer(writer: asyncio.StreamWriter, status: int = 200, body: bytes = b"", **headers: str) -> None:
    """A complete response that closes the connection."""
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
    head += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    await writer.drain()


async def trickle(writer: asyncio.StreamWriter, data: bytes, every_s: float) -> None:
    """`data` one byte at a time, `every_s` apart (until the client hangs up or the server stops)."""
    for offset in range(len(data)):
        if writer.transport.is_closing():
            return
        writer.write(data[offset : offset + 1])
        await writer.drain()
        await asyncio.sleep(every_s)


def trickled_gerrit_answer(every_s: float) -> Handler:
    """A Gerrit REST answer with valid headers whose body then comes one byte every `every_s`
    (each read succeeds well within any per-read timeout)."""

    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        body = b")]}'\n[]" + b" " * 1000
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
        await writer.drain()
        await trickle(writer, body, every_s)

    return handler


@contextlib.asynccontextmanager
async def loopback_server(handler: Handler) -> AsyncIterator[LoopbackServer]:
    """Serve `handler` on a free loopback port; every request is recorded in `requests`."""
    state = LoopbackServer("")
    handlers: dict[asyncio.Task[object], asyncio.StreamWriter] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers[task] = writer
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            request = Request(method, path, headers, body)
            state.requests.append(request)
            await handler(request, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client gave up on us: that is what these tests provoke
        finally:
            handlers.pop(task, None)
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield state
    finally:
        server.close()
        for writer in list(handlers.values()):  # a trickle still under way ends at its next byte
            writer.transport.abort()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


def gzip_bomb(expanded_mib: int = 1024) -> bytes:
    """About 1 KiB per MiB of zeros: one full-flushed deflate block repeated (built in milliseconds;
    no trailer, the reader must stop long before it would need one)."""
    zeros = bytes(MiB)
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    first = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    return first + block * (expanded_mib - 1)


async def endless_body(request: Request, writer: asyncio.StreamWriter) -> None:
    """300 MiB of JSON-ish bytes, chunked (no Content-Length to refuse early)."""
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b")]}'\n[" + b" " * (64 * 1024 - 6)
    frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    for _ in range(300 * 16):
        if writer.transport.is_closing():
            return
        writer.write(frame)
        await writer.drain()
