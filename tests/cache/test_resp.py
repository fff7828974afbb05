"""The lean RESP client (cache/resp.py) against real throwaway redis-server processes: many
calls pipelined on one connection, each reply to its own caller through cancellations and
time-outs, failures and recovery, NOSCRIPT, AUTH and SELECT from the URL, unix sockets and
TLS, and a frozen server that never hangs a caller.

Commands are held back on the server with BLPOP on an empty list (the connection's later
commands then wait behind it, in order), released by an RPUSH from another connection.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import pytest
from redis.exceptions import AuthenticationError, DataError, NoScriptError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from eventapi.cache.base import CacheUnavailable, LookupState, item_key
from eventapi.cache.breaker import CircuitBreaker
from eventapi.cache.guard import GuardedCache
from eventapi.cache.redis import READS, WRITES, RedisCache, RedisLink, Script
from eventapi.cache.resp import Endpoint, RespClient, ServerIdentity, ServerReplaced
from tests.support.redis_server import RedisServer, free_port

# A call given no deadline: only a guard against a broken test hanging.
TIMEOUT = 5.0
# A caller's budget in the tests where it runs out.
BUDGET = 0.1


def lean(url: str, timeout: float = TIMEOUT) -> RespClient:
    client = RespClient.from_url(url, timeout)
    assert client is not None, url
    return client


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[RespClient]:
    made = lean(redis_server.url)
    try:
        yield made
    finally:
        await made.close()


def clients(server: RedisServer) -> list[dict[str, str]]:
    listing = server.command("CLIENT", "LIST").decode()
    return [
        dict(part.split("=", 1) for part in line.split() if "=" in part)
        for line in listing.splitlines()
    ]


async def blocked(server: RedisServer, other_than: str = "") -> str:
    """Bounded poll of CLIENT LIST until a client (not ``other_than``) waits in BLPOP; its
    id. (Readiness of another process, not a timing assumption.)"""
    for _ in range(500):
        for fields in clients(server):
            holding = fields.get("cmd") == "blpop" and "b" in fields["flags"]
            if holding and fields["id"] != other_than:
                return fields["id"]
        await asyncio.sleep(0.005)
    pytest.fail("no client ever waited in BLPOP")


def stat(server: RedisServer, field: str) -> int:
    """A field of INFO stats (asked on a connection of its own: one more connection)."""
    for line in server.command("INFO", "stats").decode().splitlines():
        if line.startswith(field + ":"):
            return int(line.split(":", 1)[1])
    raise AssertionError(field)


async def client_info(client: RespClient) -> dict[str, str]:
    reply: bytes = await client.execute("CLIENT", "INFO")
    return dict(part.split("=", 1) for part in reply.decode().split())


def deadline_in(seconds: float) -> float:
    return asyncio.get_running_loop().time() + seconds


async def hold_back(client: RespClient, server: RedisServer) -> asyncio.Task[Any]:
    """A BLPOP that keeps every later reply on ``client``'s connection back until release()."""
    task = asyncio.create_task(client.execute("BLPOP", "held", 30))
    await blocked(server)
    return task


def release(server: RedisServer) -> None:
    assert server.command("RPUSH", "held", "go").startswith(b":")


async def sent(*calls: Awaitable[Any]) -> list[asyncio.Task[Any]]:
    """Start the calls; once this returns, each has queued its command."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    await asyncio.sleep(0)  # each task's first step queues its command
    return tasks


# --- pipelining ---------------------------------------------------------------------------


async def test_concurrent_calls_share_one_connection_and_one_write_each_gets_its_reply(
    client: RespClient, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    await client.execute("PING")
    connections = stat(redis_server, "total_connections_received")
    conn = client._conn
    assert conn is not None
    assert conn.transport is not None
    writes: list[bytes] = []
    write = conn.transport.write

    def counted(data: bytes | bytearray | memoryview) -> None:
        writes.append(bytes(data))
        write(data)

    monkeypatch.setattr(conn.transport, "write", counted)
    replies = await asyncio.gather(*(client.execute("ECHO", f"reply {n}") for n in range(1000)))
    assert replies == [f"reply {n}".encode() for n in range(1000)]
    assert len(writes) == 1, "the commands of one loop iteration go out in one write"
    big = bytes(range(256)) * 8192  # 2 MiB: many reads, and many replies in one read
    echoes = [client.execute("ECHO", b"%d" % n) for n in range(100)]
    replies = await asyncio.gather(client.execute("ECHO", big), *echoes)
    assert replies == [big, *(b"%d" % n for n in range(100))]
    assert stat(redis_server, "total_connections_received") == connections + 1  # (INFO's)


async def test_reads_and_writes_go_down_two_connections(redis_server: RedisServer) -> None:
    cache = RedisCache(RedisLink(redis_server.url, timeout=TIMEOUT), "lanes")
    try:
        await cache.reset(0)
        lookup = await cache.lease(item_key("a" * 24), 60_000)
        assert lookup.state is LookupState.LEASED
        lanes = cache._link.lanes
        assert lanes is not None
        ids = [await lanes[lane].execute("CLIENT", "ID") for lane in (READS, WRITES)]
        assert ids[0] != ids[1]
    finally:
        await cache.close()


# --- replies meet their callers -----------------------------------------------------------


async def test_a_cancelled_or_timed_out_caller_does_not_shift_the_replies(
    client: RespClient, redis_server: RedisServer
) -> None:
    held = await hold_back(client, redis_server)
    late = deadline_in(BUDGET)
    cancelled, timed_out, shorter, waiting = await sent(
        client.execute("ECHO", "cancelled"),
        client.execute("INCR", "counter", deadline=late),
        client.execute("ECHO", "shorter", deadline=late - BUDGET / 2),  # re-arms the timer
        client.execute("ECHO", "waiting"),
    )
    cancelled.cancel()
    with pytest.raises(RedisTimeoutError):
        await shorter
    with pytest.raises(RedisTimeoutError):
        await timed_out
    release(redis_server)
    assert await held == [b"held", b"go"]
    assert await waiting == b"waiting"
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    replies = await asyncio.gather(*(client.execute("ECHO", str(n)) for n in range(100)))
    assert replies == [str(n).encode() for n in range(100)]
    # The timed-out INCR ran once: a time-out is never tried again.
    assert await client.execute("GET", "counter") == b"1"


# --- failures -----------------------------------------------------------------------------


async def test_every_waiter_fails_when_the_server_dies_and_the_next_call_reconnects(
    client: RespClient, redis_server: RedisServer
) -> None:
    held = await hold_back(client, redis_server)
    waiting = await sent(*(client.execute("ECHO", str(n)) for n in range(50)))
    redis_server.kill()
    results = await asyncio.gather(held, *waiting, return_exceptions=True)
    assert all(isinstance(r, RedisConnectionError) for r in results), results
    with pytest.raises(RedisConnectionError):  # refused
        await client.execute("PING")
    redis_server.start()
    assert await client.execute("ECHO", "back") == b"back"


async def test_a_restarted_server_is_refused_until_it_is_forgotten(
    redis_server: RedisServer,
) -> None:
    """A new connection that meets another Redis (another run_id: restarted, perhaps from
    an old snapshot) fails its calls, on every client sharing the identity, until its owner
    forgets the old one; a connection dropped to the same Redis is simply made again."""
    identity = ServerIdentity()
    reads, writes = (RespClient.from_url(redis_server.url, TIMEOUT, None, identity) for _ in "rw")
    assert reads is not None
    assert writes is not None
    try:
        await reads.execute("PING")
        reads.drop()  # the same server: no harm
        assert await reads.execute("ECHO", "same") == b"same"

        redis_server.restart()
        for client in (reads, writes, reads):
            with pytest.raises(ServerReplaced):
                await client.execute("PING")
        identity.forget()
        assert await writes.execute("ECHO", "known") == b"known"
        assert await reads.execute("ECHO", "known") == b"known"
    finally:
        await reads.close()
        await writes.close()


async def test_a_client_without_an_identity_takes_any_server(
    client: RespClient, redis_server: RedisServer
) -> None:
    await client.execute("PING")
    redis_server.restart()
    assert await client.execute("ECHO", "back") == b"back"


async def test_a_call_on_a_connection_that_drops_is_made_again_on_a_new_one(
    client: RespClient, redis_server: RedisServer
) -> None:
    await client.execute("PING")
    held = asyncio.create_task(client.execute("BLPOP", "held", 30))
    first = await blocked(redis_server)
    assert redis_server.command("CLIENT", "KILL", "ID", first) == b":1\r\n"
    await blocked(redis_server, other_than=first)  # sent again, on a new connection
    release(redis_server)
    assert await held == [b"held", b"go"]


async def test_a_dropped_connection_is_replaced(
    client: RespClient, redis_server: RedisServer
) -> None:
    before = await client.execute("CLIENT", "ID")
    held = await hold_back(client, redis_server)
    client.drop()  # what reconnect() does after an outage
    await blocked(redis_server, other_than=str(before))  # the BLPOP, sent again
    release(redis_server)
    assert await held == [b"held", b"go"]
    assert await client.execute("CLIENT", "ID") != before


async def test_a_server_that_does_not_speak_resp_is_a_connection_error() -> None:
    """Garbage, or a reply nobody asked for: the connection is dropped, its callers fail."""

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.write(b"!not resp\r\n")
        await writer.drain()
        await reader.read()
        writer.close()

    async def unasked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"+HELLO\r\n")  # before any command
        await reader.read()
        writer.close()

    for handler in (garbage, unasked):
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = lean(f"redis://127.0.0.1:{port}/0")
        try:
            with pytest.raises(RedisConnectionError):
                await client.execute("PING")
        finally:
            await client.close()
            server.close()
            await server.wait_closed()


async def test_error_replies_are_redis_py_exceptions(client: RespClient) -> None:
    with pytest.raises(NoScriptError):
        await client.execute("EVALSHA", "0" * 40, 0)
    with pytest.raises(ResponseError):
        await client.execute("NO-SUCH-COMMAND")
    with pytest.raises(DataError):
        await client.execute("SET", "key", None)  # type: ignore[arg-type]
    assert await client.execute("ECHO", "still in step") == b"still in step"


async def test_a_script_unknown_to_the_server_is_sent_in_full(client: RespClient) -> None:
    script = Script("return ARGV[1]")
    assert await script.on(client, [], ["first"], None) == b"first"  # NOSCRIPT, then EVAL
    assert await client.execute("EVALSHA", script.sha, 0, "cached") == b"cached"


async def test_a_connection_reset_fails_its_callers(
    client: RespClient, redis_server: RedisServer
) -> None:
    """Killed with commands it had not read (frozen): the kernel resets the connection."""
    await client.execute("PING")
    redis_server.freeze()
    waiting = await sent(*(client.execute("ECHO", str(n)) for n in range(10)))
    await asyncio.sleep(0)  # written
    redis_server.kill()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, RedisConnectionError) for r in results), results


# --- a frozen server ------------------------------------------------------------------------


async def test_a_frozen_server_never_holds_a_caller_beyond_its_deadline(
    client: RespClient, redis_server: RedisServer
) -> None:
    loop = asyncio.get_running_loop()
    await client.execute("PING")
    redis_server.freeze()
    try:
        start = loop.time()
        with pytest.raises(RedisTimeoutError):
            await client.execute("PING", deadline=start + BUDGET)
        # A new connection: the kernel accepts it, SELECT is never answered.
        selecting = lean(redis_server.url.removesuffix("/0") + "/1")
        try:
            with pytest.raises(RedisTimeoutError):
                await selecting.execute("PING", deadline=loop.time() + BUDGET)
        finally:
            await selecting.close()  # its connection is still being made: cancelled
        # No deadline given: the client's own time-out.
        hurried = lean(redis_server.url, timeout=BUDGET)
        try:
            with pytest.raises(RedisTimeoutError):
                await hurried.execute("PING")
        finally:
            await hurried.close()
        # The making of a connection has a time-out of its own, whatever its callers' budgets.
        endpoint = Endpoint.from_url(redis_server.url.removesuffix("/0") + "/1")
        assert endpoint is not None
        connecting = RespClient(endpoint, timeout=TIMEOUT, connect_timeout=BUDGET)
        try:
            with pytest.raises(RedisTimeoutError, match="connecting"):
                await connecting.execute("PING")
        finally:
            await connecting.close()
        assert loop.time() - start < 10 * BUDGET
    finally:
        redis_server.thaw()
    assert await client.execute("ECHO", "thawed") == b"thawed"  # the late PONG was dropped


async def test_the_guard_bounds_every_call_through_its_deadline(
    redis_server: RedisServer,
) -> None:
    """GuardedCache hands RedisCache a deadline instead of an asyncio.timeout; a frozen Redis,
    before the first call (finding out what the URL names) or after, still never holds a
    call beyond the guard's budget."""
    loop = asyncio.get_running_loop()
    for warm in (False, True):
        link = RedisLink(redis_server.url, timeout=TIMEOUT, socket_timeout=TIMEOUT)
        guard = GuardedCache(RedisCache(link, "guarded"), BUDGET, CircuitBreaker())
        try:
            if warm:
                await guard.reset(0)
                await guard.reconnect()  # (bounded the same way)
            redis_server.freeze()
            try:
                start = loop.time()
                with pytest.raises(CacheUnavailable):
                    await guard.lease(item_key("b" * 24), 60_000)
                assert loop.time() - start < 10 * BUDGET
            finally:
                redis_server.thaw()
        finally:
            await guard.close()


# --- what the URL says ----------------------------------------------------------------------


@pytest.mark.system  # starts redis-server
async def test_auth_select_and_client_name_from_the_url(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, extra_args=["--requirepass", "s3cret"]).start()
    base = f"127.0.0.1:{server.port}"
    made: list[RespClient] = []

    def client(url: str) -> RespClient:
        made.append(lean(url))
        return made[-1]

    try:
        admin = client(f"redis://:s3cret@{base}/3?client_name=resp-test")
        await admin.execute("SET", "where", "db 3")
        info = await client_info(admin)
        assert (info["db"], info["name"]) == ("3", "resp-test")
        await admin.execute("ACL", "SETUSER", "reader", "on", ">pw", "~*", "+@all")
        reader = client(f"redis://reader:pw@{base}/3")
        assert await reader.execute("ACL", "WHOAMI") == b"reader"
        assert await reader.execute("GET", "where") == b"db 3"
        for refused in (f"redis://:wrong@{base}/0", f"redis://{base}/0"):
            with pytest.raises(AuthenticationError):  # WRONGPASS, NOAUTH
                await client(refused).execute("GET", "where")
    finally:
        for each in made:
            await each.close()
        server.stop()


@pytest.mark.system  # starts redis-server
async def test_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "redis.sock"
    server = RedisServer(tmp_path, extra_args=["--unixsocket", str(path)]).start()
    client = lean(f"unix://{path}?db=2")
    try:
        await client.execute("SET", "where", "db 2")
        assert (await client_info(client))["db"] == "2"
    finally:
        await client.close()
        server.stop()


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA, and a certificate it signed for 127.0.0.1 (not for localhost)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    ca, cert, key = directory / "ca.crt", directory / "server.crt", directory / "server.key"
    (directory / "names.ext").write_text("subjectAltName=IP:127.0.0.1\n")

    def run(command: str) -> None:
        args = [openssl, *command.format(d=directory).split()]
        subprocess.run(args, check=True, capture_output=True)

    new_key = "-newkey rsa:2048 -nodes"
    run(f"req -x509 {new_key} -days 1 -subj /CN=test-ca -keyout {{d}}/ca.key -out {{d}}/ca.crt")
    run(f"req {new_key} -subj /CN=127.0.0.1 -keyout {{d}}/server.key -out {{d}}/server.csr")
    run(
        "x509 -req -in {d}/server.csr -CA {d}/ca.crt -CAkey {d}/ca.key -CAcreateserial"
        " -days 1 -extfile {d}/names.ext -out {d}/server.crt"
    )
    return ca, cert, key


@pytest.mark.system  # starts redis-server
async def test_tls_with_the_certificate_checked(tmp_path: Path) -> None:
    ca, cert, key = make_certificates(tmp_path)
    port = free_port()
    tls = ["--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key)]
    tls += ["--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no"]
    server = RedisServer(tmp_path, extra_args=tls).start()
    made: list[RespClient] = []

    def client(url: str) -> RespClient:
        made.append(lean(url))
        return made[-1]

    try:
        trusted = client(f"rediss://127.0.0.1:{port}/1?ssl_ca_certs={ca}")
        assert await trusted.execute("ECHO", "over TLS") == b"over TLS"
        unchecked = client(f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=none")
        assert await unchecked.execute("ECHO", "unchecked") == b"unchecked"
        for refused in (
            f"rediss://127.0.0.1:{port}/0",  # an unknown CA
            f"rediss://localhost:{port}/0?ssl_ca_certs={ca}",  # not the certificate's name
        ):
            with pytest.raises(RedisConnectionError):
                await client(refused).execute("PING")
    finally:
        for each in made:
            await each.close()
        server.stop()


def test_what_a_url_asks_for() -> None:
    full = Endpoint.from_url(
        "redis://user:pw@cache.example:7000/2?client_name=app&socket_timeout=1"
        "&socket_connect_timeout=0.5&socket_keepalive=true&max_connections=9"
    )
    assert full == Endpoint(
        host="cache.example",
        port=7000,
        db=2,
        username="user",
        password="pw",
        client_name="app",
        connect_timeout=0.5,
        keepalive=True,
    )
    assert full.handshake() == [
        ("AUTH", "user", "pw"),
        ("CLIENT", "SETNAME", "app"),
        ("SELECT", 2),
    ]
    assert Endpoint.from_url("redis://cache.example") == Endpoint(host="cache.example")
    assert Endpoint(host="h").handshake() == []
    unix = Endpoint.from_url("unix:///run/redis.sock?db=4")
    assert unix is not None
    assert (unix.path, unix.db, unix.name) == ("/run/redis.sock", 4, "/run/redis.sock")
    secure = Endpoint.from_url("rediss://cache.example:6380/0")
    assert secure is not None
    assert secure.tls is not None
    # As redis-py's SSLConnection: the certificate and its host name are checked by default.
    assert (secure.tls.cert_reqs, secure.tls.check_hostname) == (ssl.CERT_REQUIRED, True)
    # What only redis-py speaks: the caller keeps redis-py for it.
    for url in (
        "redis://cache.example/0?protocol=3",
        "redis://cache.example/0?ssl_ca_certs=/ca.pem",  # TLS options without rediss://
        "redis://cache.example/0?decode_responses=true",
    ):
        assert Endpoint.from_url(url) is None, url


async def test_a_url_the_lean_client_does_not_speak_keeps_redis_py(
    redis_server: RedisServer,
) -> None:
    link = RedisLink(redis_server.url + "?protocol=3", timeout=TIMEOUT)
    cache = RedisCache(link, "resp3")
    try:
        await cache.reset(0)
        assert (await cache.lease(item_key("c" * 24), 60_000)).state is LookupState.LEASED
        assert await cache.watermark() == 0
        await cache.ping()
        assert (link.cluster, link.lanes) == (False, None)
    finally:
        await cache.close()


async def test_keepalive_from_the_url(redis_server: RedisServer) -> None:
    client = lean(redis_server.url + "?socket_keepalive=true")
    try:
        await client.execute("PING")
        assert client._conn is not None
        assert client._conn.transport is not None
        sock = client._conn.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    finally:
        await client.close()


# --- closing --------------------------------------------------------------------------------


async def test_close_fails_what_waits_and_refuses_what_comes(
    client: RespClient, redis_server: RedisServer
) -> None:
    held = await hold_back(client, redis_server)
    [queued] = await sent(client.execute("ECHO", "queued, not written yet"))
    await client.close()
    for call in (held, queued):
        with pytest.raises(RedisConnectionError):
            await call  # (not sent again: the client is closed)
    with pytest.raises(RedisConnectionError):
        await client.execute("PING")
