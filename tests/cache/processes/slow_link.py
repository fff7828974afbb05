"""A TCP proxy to Redis that delivers every byte, each way, a fixed few milliseconds late
and in order: Redis farther from some server processes than from others (app servers in
another zone, or on a busy host), so that one process's commands reach it after those that
another process sent later.

The distance is per server PROCESS: the link finds which process opened each connection
(Linux /proc), and gives the n-th process it meets ``delays[n % len(delays)]``, for every
connection it opens. So the workers of one `eventapi serve --workers N`, which all share
one URL, are spread over the distances too.

Run as its own process (``slow_link()``), so that the test process's event loop, busy with
its HTTP clients, adds nothing: the delays stay a few milliseconds, inside every cache
budget. A protocol that is right whatever its messages' delays is right through this link
too; one that assumes a command sent beside a store write reaches Redis before the commit
is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from tests.support.server import ROOT, STOP_WITHIN, read_until


@contextmanager
def slow_link(port: int, delays: Sequence[float]) -> Iterator[str]:
    """A proxy to the Redis on 127.0.0.1:``port``; yields its URL; killed on exit."""
    with link_process(port, delays) as (url, _):
        yield url


@contextmanager
def link_process(
    port: int, delays: Sequence[float] = (0.0,)
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The proxy, and its process: SIGSTOP it and Redis is frozen for the processes that
    reach it through this link only."""
    args = [sys.executable, "-m", "tests.cache.processes.slow_link", str(port), *map(str, delays)]
    with subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE) as proc:
        try:
            assert proc.stdout is not None
            listening = int(read_until(proc.stdout, b"\n", within=10.0))
            yield f"redis://127.0.0.1:{listening}/0", proc
        finally:
            proc.kill()
            proc.wait(timeout=STOP_WITHIN)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    due: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            at, chunk = await due.get()
            if not chunk:
                break
            await asyncio.sleep(at - loop.time())  # the link's latency, not synchronisation
            writer.write(chunk)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while chunk := await reader.read(1 << 16):
            due.put_nowait((loop.time() + delay, chunk))
    finally:
        due.put_nowait((0.0, b""))
        with contextlib.suppress(OSError):
            await sender
        writer.close()


def _owner(peer: int, port: int) -> int | None:
    """The process whose socket 127.0.0.1:``peer`` is connected to ``port``, if any."""
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    inodes = [r[9] for r in rows if _port(r[1]) == peer and _port(r[2]) == port]
    if not inodes:
        return None
    socket = f"socket:[{inodes[0]}]"
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):  # processes come and go meanwhile
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == socket:
                        return int(pid)
    return None


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1], 16)  # /proc/net/tcp: "0100007F:1F90"


async def _serve(port: int, delays: Sequence[float]) -> None:
    turns = itertools.cycle(delays)
    distance: dict[int | None, float] = {}  # by process, in the order they were met
    server: asyncio.Server | None = None

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert server is not None
        listening = server.sockets[0].getsockname()[1]
        pid = await asyncio.to_thread(_owner, writer.get_extra_info("peername")[1], listening)
        if pid not in distance:
            distance[pid] = next(turns)
        delay = distance[pid]
        with contextlib.suppress(OSError):
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
            await asyncio.gather(
                _pump(reader, up_writer, delay),
                _pump(up_reader, writer, delay),
                return_exceptions=True,
            )

    server = await asyncio.start_server(connection, "127.0.0.1", 0)  # (nothing connects yet)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1]), [float(d) for d in sys.argv[2:]]))
