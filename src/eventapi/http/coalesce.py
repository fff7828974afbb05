"""One write per response: the transport under `eventapi serve`'s protocol (connections.py).

uvicorn writes a response's head and its body with two ``transport.write`` calls, and uvloop
sends each at once: two send calls and two TCP segments for every response. On a loopback
or LAN the kernel's work per segment is the biggest single cost of a cached GET (measured:
the head's write alone took a third of the server's time). ``CoalescingTransport`` keeps the
writes made during one turn of the event loop and sends them together at the end of that
turn: the same bytes, in the same order, one send call. Nothing waits longer than the turn
it was written in, so no response is delayed past the code that produced it.

Closing (or half-closing) sends what is kept first; aborting drops it, as aborting does.
"""

from __future__ import annotations

import asyncio
from typing import Any


class CoalescingTransport(asyncio.Transport):
    __slots__ = ("_inner", "_kept", "_loop")

    def __init__(self, inner: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._inner = inner
        self._kept: list[bytes] = []
        self._loop = loop

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._kept:
            self._loop.call_soon(self._flush)
        self._kept.append(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def _flush(self) -> None:
        kept = self._kept
        if not kept:
            return
        self._kept = []
        if not self._inner.is_closing():  # the peer went away meanwhile: nowhere to send
            self._inner.write(kept[0] if len(kept) == 1 else b"".join(kept))

    def close(self) -> None:
        self._flush()
        self._inner.close()

    def write_eof(self) -> None:
        self._flush()
        self._inner.write_eof()

    def abort(self) -> None:
        self._kept = []
        self._inner.abort()

    def can_write_eof(self) -> bool:
        return self._inner.can_write_eof()

    def is_closing(self) -> bool:
        return self._inner.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._inner.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._inner.get_protocol()

    def is_reading(self) -> bool:
        return self._inner.is_reading()

    def pause_reading(self) -> None:
        self._inner.pause_reading()

    def resume_reading(self) -> None:
        self._inner.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._inner.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._inner.get_write_buffer_size() + sum(map(len, self._kept))

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._inner.get_write_buffer_limits()
