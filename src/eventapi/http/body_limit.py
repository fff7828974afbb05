"""Refuse request bodies over a size limit before the app reads them.

A declared Content-Length over the limit is refused without reading a byte. A body without
one (chunked) is read only up to the limit; one byte more and the request is refused. The
body that passes is at most ``limit`` bytes and is replayed to the app unchanged.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventapi.errors import PayloadTooLarge
from eventapi.http.problems import PROBLEM_JSON, problem_for


def install_body_limit(app: FastAPI, limit: int) -> None:
    app.add_middleware(BodyLimitMiddleware, limit=limit)
    _document(app, limit)


def _document(app: FastAPI, limit: int) -> None:
    """In the OpenAPI document: the 413 of every operation. The limit applies to any request
    with a body, a GET's included, before routing."""
    build = app.openapi
    too_large = {
        "description": f"Request body larger than {limit} bytes (EVENTAPI_MAX_BODY_BYTES)",
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }

    def openapi() -> dict[str, Any]:
        schema = build()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                operation.setdefault("responses", {}).setdefault("413", too_large)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # Client went away: let the app see the disconnect.
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        too_large = PayloadTooLarge(f"Request body is larger than {self.limit} bytes")
        response = problem_for(too_large, scope.get("path"), headers={"Connection": "close"})
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
