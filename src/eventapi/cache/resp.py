"""A lean, pipelined RESP client for one standalone Redis: the cache's hot path.

Why. Every cached GET runs one Lua script (redis.py). redis-py's asyncio client, for every
command, takes a connection from its pool, writes the command with its own write, reads the
reply under its own ``wait_for``, and gives the connection back: at thousands of lookups a
second that cost the app more CPU than the rest of a cached GET. Here one connection (an
asyncio.Protocol) carries every command of a client:

- A command is queued with a future and written once per event-loop iteration, together
  with every other command queued in that iteration: one ``write`` for a batch.
- ``data_received`` parses whatever arrived with hiredis (redis-py's own parser) and resolves
  the oldest waiting futures in order: Redis answers a connection's commands in the order it
  got them. A waiter given up on (cancelled, or out of time) stays in the queue until its
  reply comes, and that reply is dropped: a late reply can never reach the wrong caller.
- Time-outs cost one timer per connection, not one per call: each call carries its
  deadline, the timer is armed for the earliest one, and when it fires it fails every call
  past its deadline with TimeoutError and re-arms for the next. The caller owns the budget
  (the guard's deadline, guard.py); a call given none gets ``timeout``.
- A connection that fails (EOF, reset, refused, a reply that is not RESP) fails every call
  waiting on it with ConnectionError and is replaced on the next call. A call that fails
  with ConnectionError is made once more, at once, on a new connection (every script is safe
  to run twice), never after a time-out.
- A new connection asks the server for its ``run_id`` (INFO server, in the same write as
  AUTH and SELECT). One that finds another server than the client knew (``ServerIdentity``,
  shared by the clients of one Redis) fails its calls with ServerReplaced until the owner
  says the new one is known (``ServerIdentity.forget``): a Redis restarted from a snapshot
  holds what it held then, and its owner must catch it up before trusting it (guard.py).

What it keeps from redis-py: the URL's parsing (``parse_url``), its TLS context, and its
exception classes, chosen for an error reply by redis-py's own error parser (NOSCRIPT ->
NoScriptError, WRONGPASS -> AuthenticationError...): the rest of the code (REDIS_FAILURES, the
guard, Script's NOSCRIPT fallback) sees what redis-py would have raised. A URL with an option
this client does not implement gets no RespClient (``from_url`` says None): the caller keeps
redis-py for it.
"""

from __future__ import annotations

import asyncio
import math
import socket
from collections import deque
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlparse

import hiredis
from redis._parsers.base import BaseParser
from redis.asyncio.connection import RedisSSLContext, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, InvalidResponse, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT

from eventapi.cache.base import CacheReplaced

# hiredis' answer when the bytes fed so far hold no complete reply.
_NOT_ENOUGH = object()

# URL options that tune redis-py's own pool and sockets. This client has neither a pool nor
# a socket time-out: one connection, and every call's time is its caller's.
_TUNING = frozenset(
    {
        "socket_timeout",
        "socket_read_size",
        "retry_on_timeout",
        "max_connections",
        "health_check_interval",
        "timeout",
    }
)
# The ssl_* URL options, as RedisSSLContext names them (without the prefix).
_TLS = frozenset(
    {
        "keyfile",
        "certfile",
        "cert_reqs",
        "include_verify_flags",
        "exclude_verify_flags",
        "ca_certs",
        "ca_data",
        "ca_path",
        "check_hostname",
        "min_version",
        "ciphers",
        "password",
    }
)
# How long close() waits for a dropped connection's socket to be closed by the loop.
_CLOSE_WITHIN = 1.0


def pack(args: tuple[EncodableT, ...]) -> bytes:
    """A command as RESP: str as UTF-8, int and float in decimal, bytes as they are."""
    try:
        packed: bytes = hiredis.pack_command(cast(Any, args))
    except TypeError as exc:  # None, a bool...: redis-py refuses them too (DataError)
        raise DataError(f"cannot send {args!r}: {exc}") from None
    return packed


def _fail(waiter: asyncio.Future[Any], exc: BaseException) -> None:
    waiter.set_exception(exc)
    # The caller, if it still waits, raises it; if it gave up meanwhile, nobody needs to.
    waiter.exception()


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One Redis, and how to open a session on it, as its URL says."""

    host: str = "localhost"
    port: int = 6379
    path: str | None = None  # unix://
    tls: RedisSSLContext | None = None  # rediss://
    db: int = 0
    username: str | None = None
    password: str | None = None
    client_name: str | None = None
    connect_timeout: float | None = None
    keepalive: bool = False

    @classmethod
    def from_url(cls, url: str) -> Endpoint | None:
        """``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS, with redis-py's
        ``ssl_*`` options) or ``unix://path?db=N``; None if the URL asks for anything else
        (RESP3, an option redis-py knows and this client does not)."""
        scheme = urlparse(url).scheme
        options: dict[str, Any] = dict(parse_url(url))
        options.pop("connection_class", None)
        for name in _TUNING:
            options.pop(name, None)
        if options.pop("protocol", 2) != 2:
            return None
        tls: RedisSSLContext | None = None
        if scheme == "rediss":
            given = {name: options.pop("ssl_" + name) for name in _TLS if "ssl_" + name in options}
            # redis-py's SSLConnection defaults: the certificate and its host name checked.
            tls = RedisSSLContext(**{"cert_reqs": "required", "check_hostname": True, **given})
        endpoint = cls(
            host=options.pop("host", "localhost"),
            port=int(options.pop("port", 6379)),
            path=options.pop("path", None),
            tls=tls,
            db=int(options.pop("db", 0)),
            username=options.pop("username", None),
            password=options.pop("password", None),
            client_name=options.pop("client_name", None),
            connect_timeout=options.pop("socket_connect_timeout", None),
            keepalive=bool(options.pop("socket_keepalive", False)),
        )
        return None if options else endpoint

    @property
    def name(self) -> str:
        return self.path or f"{self.host}:{self.port}"

    def handshake(self) -> list[tuple[EncodableT, ...]]:
        """The commands that open a session, sent before any other on a new connection."""
        commands: list[tuple[EncodableT, ...]] = []
        if self.password is not None:
            if self.username:
                commands.append(("AUTH", self.username, self.password))
            else:
                commands.append(("AUTH", self.password))
        if self.client_name:
            commands.append(("CLIENT", "SETNAME", self.client_name))
        if self.db:
            commands.append(("SELECT", self.db))
        return commands


class ServerReplaced(RedisError, CacheReplaced):
    """A new connection reached another Redis than the one the client knew (its run_id
    changed: a restart, or a replacement behind the same address)."""


class ServerIdentity:
    """The run_id of the Redis the clients sharing this object have talked to (None: not
    known yet, so the next one met is taken)."""

    def __init__(self) -> None:
        self.run_id: bytes | None = None

    def forget(self) -> None:
        """Take the next server met as the known one (its owner is catching it up)."""
        self.run_id = None

    def check(self, run_id: bytes | None, name: str) -> None:
        if run_id is None:  # nothing to compare
            return
        if self.run_id is None:
            self.run_id = run_id
        elif run_id != self.run_id:
            raise ServerReplaced(f"{name} is another Redis now (run_id changed)")


INFO_SERVER = ("INFO", "server")


def _run_id(info: object) -> bytes | None:
    """The run_id field of an INFO server reply."""
    if not isinstance(info, bytes):
        return None
    for line in info.splitlines():
        if line.startswith(b"run_id:"):
            return line[len(b"run_id:") :].strip()
    return None


class _Connection(asyncio.Protocol):
    """One socket to Redis: commands go out in order, each reply resolves the oldest waiter."""

    def __init__(self, loop: asyncio.AbstractEventLoop, name: str) -> None:
        self._loop = loop
        self._name = name
        self._parser = hiredis.Reader(
            protocolError=InvalidResponse,
            replyError=BaseParser.parse_error,
            notEnoughData=_NOT_ENOUGH,
        )
        # Every command sent and not answered yet, oldest first, with its deadline. A waiter
        # given up on stays until its reply comes: the replies must meet their commands.
        self._waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._out: list[bytes] = []  # commands queued in this loop iteration
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self.failure: RedisConnectionError | None = None  # set: dead, never used again
        self.lost: asyncio.Future[None] = loop.create_future()  # the socket is closed

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        waiting = self._waiting
        parser.feed(data)
        try:
            reply = parser.gets()
            while reply is not _NOT_ENOUGH:
                waiter = waiting.popleft()[0]
                if not waiter.done():
                    if isinstance(reply, Exception):
                        _fail(waiter, reply)
                    else:
                        waiter.set_result(reply)
                reply = parser.gets()
        except (InvalidResponse, IndexError) as exc:  # not RESP, or a reply nobody asked for
            self._lose(f"Protocol error from {self._name}: {exc!r}")

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is None:
            self._lose(f"Connection closed by server ({self._name}).")
        else:
            self._lose(f"Error while reading from {self._name}: {exc}")
        self.lost.set_result(None)

    # --- used by RespClient ---

    def send(self, command: bytes, deadline: float) -> asyncio.Future[Any]:
        """Queue ``command`` (written at the end of this loop iteration); its reply, or
        TimeoutError once ``deadline`` (loop time) has passed, or ConnectionError."""
        waiter = self._loop.create_future()
        if self.failure is not None:  # failed since the caller found it (it will try again)
            _fail(waiter, RedisConnectionError(*self.failure.args))
            return waiter
        self._waiting.append((waiter, deadline))
        if not self._out:
            self._loop.call_soon(self._flush)
        self._out.append(command)
        if deadline < self._timer_at:
            self._arm(deadline)
        return waiter

    def close(self) -> None:
        """Fail what waits, and drop the socket at once (nothing more is written)."""
        self._lose(f"Connection to {self._name} dropped by the client.")

    @property
    def transport(self) -> asyncio.Transport | None:
        return self._transport

    # --- internals ---

    def _flush(self) -> None:
        if self.failure is not None:  # failed since: its commands were failed with it
            return
        out, self._out = self._out, []
        assert self._transport is not None
        self._transport.write(out[0] if len(out) == 1 else b"".join(out))

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(when, self._expire)
        self._timer_at = when

    def _expire(self) -> None:
        """Fail every waiter past its deadline; re-arm for the earliest one left."""
        self._timer = None
        self._timer_at = math.inf
        now = self._loop.time()
        soonest = math.inf
        for waiter, deadline in self._waiting:
            if waiter.done():
                continue
            if deadline <= now:
                _fail(waiter, RedisTimeoutError(f"Timeout reading from {self._name}"))
            elif deadline < soonest:
                soonest = deadline
        if soonest < math.inf:
            self._arm(soonest)

    def _lose(self, why: str) -> None:
        """Fail every waiter and drop the socket (once: the first reason is the one)."""
        if self.failure is not None:
            return
        self.failure = RedisConnectionError(why)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiting, self._waiting = self._waiting, deque()
        self._out = []
        for waiter, _ in waiting:
            if not waiter.done():
                _fail(waiter, RedisConnectionError(why))
        assert self._transport is not None  # (set before anything can fail it)
        self._transport.abort()


class RespClient:
    """The commands of one client of one Redis, pipelined over one connection, which is made
    on first use and made again after it failed or was dropped.

    ``timeout`` bounds a call given no deadline; ``connect_timeout`` (default: ``timeout``;
    the URL's ``socket_connect_timeout`` first) the making of a connection, AUTH and SELECT
    included."""

    def __init__(
        self,
        endpoint: Endpoint,
        timeout: float,
        connect_timeout: float | None = None,
        identity: ServerIdentity | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.identity = identity  # None: whichever Redis answers will do
        self.timeout = timeout
        self.connect_timeout = endpoint.connect_timeout or connect_timeout or timeout
        self._conn: _Connection | None = None
        self._connecting: asyncio.Task[_Connection] | None = None
        self._dropped: list[_Connection] = []  # closed by us, their sockets not yet by the loop
        self._closed = False

    @classmethod
    def from_url(
        cls,
        url: str,
        timeout: float,
        connect_timeout: float | None = None,
        identity: ServerIdentity | None = None,
    ) -> RespClient | None:
        """A client of the standalone Redis ``url`` names; None if this client cannot speak
        to it as the URL asks (see Endpoint.from_url)."""
        endpoint = Endpoint.from_url(url)
        return None if endpoint is None else cls(endpoint, timeout, connect_timeout, identity)

    async def execute(self, *args: EncodableT, deadline: float | None = None) -> Any:
        """Send one command and return its reply (an error reply raised as redis-py raises
        it), by ``deadline`` (the event loop's clock) or ``timeout`` from now."""
        command = pack(args)
        if deadline is None:
            deadline = asyncio.get_running_loop().time() + self.timeout
        retried = False
        while True:
            conn = self._conn
            try:
                if conn is None or conn.failure is not None:
                    conn = await self._connected(deadline)
                return await conn.send(command, deadline)
            except RedisConnectionError:
                if retried:
                    raise
                retried = True

    def drop(self) -> None:
        """Close the connection (after an outage it may be dead): the next call makes a new
        one. The calls waiting on it fail with ConnectionError."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._retire(conn)

    async def close(self) -> None:
        self._closed = True
        task, self._connecting = self._connecting, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        self.drop()
        open_sockets = [conn.lost for conn in self._dropped if not conn.lost.done()]
        self._dropped = []
        if open_sockets:
            await asyncio.wait(open_sockets, timeout=_CLOSE_WITHIN)

    # --- connections ---

    def _retire(self, conn: _Connection) -> None:
        conn.close()
        self._dropped = [c for c in self._dropped if not c.lost.done()]
        if not conn.lost.done():
            self._dropped.append(conn)

    async def _connected(self, deadline: float) -> _Connection:
        """A live connection: the one being made, or a new one. Its making is shared by
        every call that needs it, and each waits for it only until its own deadline."""
        if self._closed:
            raise RedisConnectionError(f"Client of {self.endpoint.name} closed.")
        if self._conn is not None:  # failed: its socket is closed (or closing)
            self._retire(self._conn)
            self._conn = None
        task = self._connecting
        if task is None:
            task = asyncio.get_running_loop().create_task(self._connect(), name="redis-connect")
            task.add_done_callback(self._made)
            self._connecting = task
        try:
            async with asyncio.timeout_at(deadline):
                return await asyncio.shield(task)
        except TimeoutError:
            raise RedisTimeoutError(f"Timeout connecting to {self.endpoint.name}") from None

    def _made(self, task: asyncio.Task[_Connection]) -> None:
        if self._connecting is task:
            self._connecting = None
        if task.cancelled() or task.exception() is not None:
            return  # (retrieved: the callers waiting for it, if any, raise it)
        self._conn = task.result()  # (close() waits for this, then drops it)

    async def _connect(self) -> _Connection:
        endpoint = self.endpoint
        loop = asyncio.get_running_loop()
        within = self.connect_timeout
        conn: _Connection | None = None

        def protocol() -> _Connection:
            return _Connection(loop, endpoint.name)

        try:
            async with asyncio.timeout(within):
                if endpoint.path is not None:
                    _, conn = await loop.create_unix_connection(protocol, endpoint.path)
                else:
                    tls = None if endpoint.tls is None else endpoint.tls.get()
                    _, conn = await loop.create_connection(
                        protocol, endpoint.host, endpoint.port, ssl=tls
                    )
                    if endpoint.keepalive:
                        assert conn.transport is not None
                        sock = conn.transport.get_extra_info("socket")
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                deadline = loop.time() + within
                opening = [conn.send(pack(c), deadline) for c in endpoint.handshake()]
                identity = self.identity
                info = None if identity is None else conn.send(pack(INFO_SERVER), deadline)
                for reply in opening:
                    await reply
                if identity is not None and info is not None:
                    try:
                        run_id = _run_id(await info)
                    except ResponseError:  # INFO refused (a proxy, an ACL)
                        run_id = None
                    identity.check(run_id, endpoint.name)
        except BaseException as exc:
            if conn is not None:
                self._retire(conn)
            if isinstance(exc, TimeoutError):
                raise RedisTimeoutError(f"Timeout connecting to {endpoint.name}") from None
            if isinstance(exc, OSError):  # refused, unreachable, TLS refused...
                raise RedisConnectionError(f"Error connecting to {endpoint.name}: {exc}") from exc
            raise
        return conn
