"""What the tests do to the servers' shared Redis and database from outside, behind the
servers' backs: find and lose the cache's bookkeeping keys, fill Redis up, and run the
console script's bulk writes (`eventapi seed`, `eventapi import`) as an operator would."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hiredis

from tests.support.redis_server import RedisServer
from tests.support.server import EVENTAPI, run

# The cache's bookkeeping keys, by the suffix of their names (cache/redis/cache.py: key layout,
# ``{ns}:<schema version>:<suffix>``): matched by suffix, whatever the schema version.
BOOKKEEPING = ("epoch", "generation", "watermark", "delivered")


def ask(redis: RedisServer, *args: str) -> Any:
    """One command on a fresh connection, its reply parsed (an error reply is returned as a
    hiredis.ReplyError, not raised)."""
    reader = hiredis.Reader()
    reader.feed(redis.command(*args))
    return reader.gets()


def bookkeeping_key(redis: RedisServer, suffix: str) -> str:
    """The full name of one bookkeeping key of the (one) namespace in ``redis``: found
    through the epoch's, which every cache has once a server has started (`KEYS`)."""
    found = [bytes(k).decode() for k in ask(redis, "KEYS", "*:epoch")]
    assert len(found) == 1, f"one epoch key expected: {found}"
    return found[0].removesuffix("epoch") + suffix


def info(redis: RedisServer, section: str) -> dict[str, str]:
    text = bytes(ask(redis, "INFO", section)).decode()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def used_memory(redis: RedisServer) -> int:
    return int(info(redis, "memory")["used_memory"])


def refuses_writes(redis: RedisServer) -> bool:
    """Whether Redis now refuses a write that adds to it (OOM under maxmemory)."""
    reply = ask(redis, "SET", "test:probe:full", "x")
    return isinstance(reply, hiredis.ReplyError) and str(reply).startswith("OOM")


def eventapi(env: Mapping[str, str], cwd: Path, *args: str | Path) -> str:
    """The console script, as an operator runs it beside the servers; its output."""
    done = run([EVENTAPI, *map(str, args)], env, cwd)
    assert done.returncode == 0, done
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout
