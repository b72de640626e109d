"""Writing to a real Gerrit through its REST API, as one account (HTTP basic auth on `/a/`).

cidash itself only reads Gerrit (gerrit/rest.py); this is the other side, used to build a CI
community on a test Gerrit and to post a scenario into it as that community's accounts.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import orjson

from cidash.gerrit.wire import loads, strip_xssi


class GerritWriteError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, text: str) -> None:
        super().__init__(f"Gerrit {method} /a/{path} answered HTTP {status}: {text.strip()[:500]}")
        self.status = status


def ident(text: str) -> str:
    """One path segment (`openstack/nova` -> `openstack%2Fnova`)."""
    return quote(text, safe="")


class GerritWriter:
    """REST calls as `user`; JSON bodies in, decoded JSON out (None for an empty answer)."""

    def __init__(self, base_url: str, user: str, password: str, *, timeout_s: float = 60.0) -> None:
        self.user = user
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/a/", auth=httpx.BasicAuth(user, password), timeout=timeout_s
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> GerritWriter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        params: list[tuple[str, str | int | float | bool | None]] | None = None,
        ok: tuple[int, ...] = (),
    ) -> Any:
        """`ok`: extra statuses that are not errors (e.g. 409 for "already exists")."""
        headers = {}
        content: bytes | None = raw
        if raw is not None:
            headers["Content-Type"] = "text/plain; charset=UTF-8"  # RawInput: file content, SSH key
        elif body is not None:
            headers["Content-Type"] = "application/json; charset=UTF-8"
            content = orjson.dumps(body)
        response = await self._client.request(method, path, content=content, headers=headers, params=params)
        if response.status_code >= 400 and response.status_code not in ok:
            raise GerritWriteError(method, path, response.status_code, response.text)
        if response.status_code >= 400 or not response.content.strip():
            return None
        text = strip_xssi(response.content)
        return loads(text) if response.headers.get("content-type", "").startswith("application/json") else text

    async def get(self, path: str, params: list[tuple[str, str | int | float | bool | None]] | None = None) -> Any:
        return await self.call("GET", path, params=params)

    async def post(self, path: str, body: Any = None) -> Any:
        return await self.call("POST", path, body if body is not None else {})

    async def put(self, path: str, body: Any = None, *, raw: bytes | None = None, ok: tuple[int, ...] = ()) -> Any:
        return await self.call("PUT", path, body, raw=raw, ok=ok)

    async def delete(self, path: str, body: Any = None) -> Any:
        return await self.call("DELETE", path, body)
