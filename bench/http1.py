"""Just enough HTTP/1.1 for the load generator: a request record and response framing
(Content-Length or chunked bodies, "Connection: close")."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

IO_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)


@dataclass(slots=True)
class Request:
    method: str
    path: str
    body: bytes = b""
    tag: Any = None  # the workload's own bookkeeping (an id, a version...)


async def read_response(head: bytes, reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, server closes) for a response whose header block is ``head``."""
    status = int(head[9:12])
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at >= 0:
        length = int(lower[at + 17 : lower.index(b"\r\n", at + 2)])
        body = await reader.readexactly(length) if length else b""
    elif b"\r\ntransfer-encoding: chunked" in lower:
        body = await _read_chunked(reader)
    else:
        body = b""
    return status, body, b"\r\nconnection: close" in lower


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    for _ in range(1_000_000):
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        chunk = await reader.readexactly(size + 2)
        if size == 0:
            return b"".join(parts)
        parts.append(chunk[:-2])
    raise ValueError("too many chunks")
