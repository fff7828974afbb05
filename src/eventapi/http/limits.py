"""Rate limits per client (API key, else address): EVENTAPI_RATE_LIMIT for every request,
EVENTAPI_WRITE_RATE_LIMIT for writes. Installed by the app factory just inside the access
check, so the client is known and a 401 costs no token.

- **Limits** (ratelimit/rates.py): ``<count>/<second|minute|hour|day>``, e.g. ``100/second``
  or ``60/minute``: a token bucket, so a client may send ``count`` at once, then one every
  ``period / count`` seconds. ``off`` (or ``none``) turns one off. Unset, both are off,
  except in EVENTAPI_ENV=production, where writes are limited to 10/second per client
  unless EVENTAPI_WRITE_RATE_LIMIT says otherwise (``off`` included). A value that is not
  a limit stops the app from being built: ValueError naming the variable.
- **What counts**: EVENTAPI_RATE_LIMIT counts every request, EVENTAPI_WRITE_RATE_LIMIT
  every write (any method but GET, HEAD and OPTIONS) as well; a write must pass both. The
  write limit is checked first: a write it refuses costs no token of the other, while one
  the other refuses has spent its write token. /health and
  the documentation are not limited (a load balancer and a person reading the docs must
  reach them); /metrics is, like any read: it can be public, and it is not free to render.
  A CORS preflight is answered before the limiter (outside the access check), so it is
  never counted.
- **The client** is the API key when a configured one is presented (``Authorization:
  Bearer`` or ``X-API-Key``), else the peer address (uvicorn puts the X-Forwarded-For
  address there only for EVENTAPI_TRUSTED_PROXIES). The key is hashed (SHA-256) and only
  part of the digest is kept, in memory and in Redis key names; a key that is not
  configured (a read may carry any) counts as no key, so made-up keys do not buy a client
  fresh buckets.
- **Refused**: 429 problem+json (type .../problems/rate-limited, ``violated-policies``
  naming the limit) with ``Retry-After`` (whole seconds, at least 1, until the next token)
  and the RateLimit fields of draft-ietf-httpapi-ratelimit-headers-11:
  ``RateLimit-Policy: "writes";q=20;w=60, "default";q=100;w=1`` (the limits this request
  is under) and ``RateLimit: "writes";r=0;t=3`` (the one it ran out of; ``t`` equals
  Retry-After). Accepted responses carry no RateLimit fields: with the tokens shared
  through Redis in batches a process does not know the exact remainder without asking, and
  the cached read must stay cheap.
- **Shared or not** (ratelimit/shared.py): with Redis as the cache (EVENTAPI_CACHE_URL
  redis:// or rediss://, or found on localhost), the buckets live in Redis and every
  process takes tokens from them in batches; otherwise each process keeps its own. Redis
  failing never blocks a request: past the cache's time budget, or while this limiter's
  circuit breaker is open, each process limits on its own until Redis answers again.
  shared.py states how exact the shared limit is.
- **Cost**: with no limit set nothing is installed. With only a write limit a read costs one
  set lookup; a limited request costs a header scan (a SHA-256 if it carries a key) and a
  dict lookup, plus a Redis call about once per batch of tokens.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import FastAPI
from prometheus_client import Counter
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from eventapi.cache.breaker import CircuitBreaker
from eventapi.cache.factory import DEFAULT_REDIS_URL, namespace
from eventapi.http.access import BEARER, READS, PublicPaths, public_paths
from eventapi.http.problems import PROBLEM_JSON, problem_response
from eventapi.ratelimit.local import LocalBuckets
from eventapi.ratelimit.rates import Policy, policies_for
from eventapi.ratelimit.shared import RedisTokens, SharedBuckets
from eventapi.settings import Settings, key_digest

log = logging.getLogger("eventapi")

DRAFT = "draft-ietf-httpapi-ratelimit-headers-11"
KEEP_DIGEST = 16  # bytes of a key's SHA-256 that name its buckets


class Limiter(Protocol):
    def take_now(self, client: str) -> float | None:
        """0.0: a token was taken; > 0: refused, seconds until the next token; None: ask
        take() (it needs I/O)."""

    async def take(self, client: str) -> float:
        """0.0: a token was taken; > 0: refused, seconds until the next token."""


@dataclass(frozen=True, slots=True)
class Check:
    policy: Policy
    limiter: Limiter


def client_id(scope: Scope, digests: frozenset[bytes]) -> str:
    """Whose buckets a request draws on: ``key:<digest>`` for a configured API key it
    presents, else ``addr:<peer address>``."""
    if digests:
        for name, value in scope["headers"]:
            if name == b"authorization" and value[:7].lower() == BEARER:
                key = value[7:].strip()
            elif name == b"x-api-key":
                key = value.strip()
            else:
                continue
            digest = key_digest(key)
            # A set lookup on the digest, not a constant-time compare: the timing could
            # only tell how a digest hashes, which says nothing about a key.
            if digest in digests:
                return "key:" + digest[:KEEP_DIGEST].hex()
    peer = scope.get("client")
    return "addr:" + (peer[0] if peer else "unknown")


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        reads: tuple[Check, ...],
        writes: tuple[Check, ...],
        digests: frozenset[bytes],
        exempt: PublicPaths,
        on_refusal: Callable[[str], None] = lambda policy: None,
    ) -> None:
        self.app = app
        self.reads = reads
        self.writes = writes
        self.digests = digests
        self.exempt = exempt
        self._on_refusal = on_refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        checks = self.reads if scope["method"] in READS else self.writes
        if not checks or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        client = client_id(scope, self.digests)
        for check in checks:
            wait = check.limiter.take_now(client)
            if wait is None:
                wait = await check.limiter.take(client)
            if wait > 0:
                self._on_refusal(check.policy.name)
                await refusal(scope["path"], check.policy, checks, wait)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def refusal(path: str, violated: Policy, checks: tuple[Check, ...], wait: float) -> Response:
    """The 429 for a request that ran out of ``violated``'s tokens."""
    seconds = max(1, math.ceil(wait))
    rate = violated.rate
    what = "writes" if violated.writes_only else "requests"
    return problem_response(
        429,
        f"Too many {what}: the limit is {rate} per client. Retry after {seconds} s.",
        slug="rate-limited",
        title="Too Many Requests",
        instance=path,
        headers={
            "Retry-After": str(seconds),
            "RateLimit-Policy": ", ".join(check.policy.header for check in checks),
            "RateLimit": f'"{violated.name}";r=0;t={seconds}',
        },
        **{"violated-policies": [violated.name]},
    )


def redis_url(settings: Settings, cache: Any) -> str | None:
    """The Redis the buckets are shared through: the cache's, if the cache is Redis."""
    url = settings.cache_url
    if url is None and getattr(cache, "backend", None) == "redis":
        url = DEFAULT_REDIS_URL  # auto-detected by the cache factory
    return url if url is not None and url.startswith(("redis:", "rediss:")) else None


def install_limits(app: FastAPI, settings: Settings) -> None:
    """Add the rate limiter to ``app`` when a limit applies.

    Raises ValueError, naming the variable, if a limit setting is not a limit."""
    policies = policies_for(settings)
    if not policies:
        return
    metrics = getattr(app.state, "metrics", None)
    refused = errors = None
    if metrics is not None:
        refused = Counter(
            "eventapi_rate_limited",
            "Requests refused by a rate limit, by policy",
            ["policy"],
            registry=metrics.registry,
        )
        errors = Counter(
            "eventapi_rate_limit_errors",
            "Rate limit calls to Redis that failed or ran out of time",
            registry=metrics.registry,
        )
    redis: RedisTokens | None = None
    if settings.cache_url is None or redis_url(settings, None) is not None:
        redis = RedisTokens(
            settings.cache_timeout,
            CircuitBreaker(reset_timeout=settings.cache_breaker_reset),
            on_error=errors.inc if errors is not None else lambda: None,
        )
        _share_through(app, settings, redis)
    prefix = f"{namespace(settings)}:ratelimit:"
    checks: list[Check] = []
    for policy in policies:
        limiter: Limiter
        if redis is None:
            limiter = LocalBuckets(policy.rate)
        else:
            name = f"{prefix}{policy.name}:{policy.rate.count}/{policy.rate.period}:"
            limiter = SharedBuckets(policy.rate, name, redis)
        checks.append(Check(policy, limiter))
    exempt = public_paths(app)
    app.add_middleware(
        RateLimitMiddleware,
        reads=tuple(check for check in checks if not check.policy.writes_only),
        writes=tuple(checks),
        digests=frozenset(settings.api_keys.digests),
        exempt=exempt,
        on_refusal=_count(refused),
    )
    document_limits(app, policies, exempt)
    described = ", ".join(
        f"{policy.name} {policy.rate}"
        + (" (production default)" if _defaulted(policy, settings) else "")
        for policy in policies
    )
    log.info("rate limits per client: %s", described)


def _count(refused: Counter | None) -> Callable[[str], None]:
    if refused is None:
        return lambda policy: None
    return lambda policy: refused.labels(policy).inc()


def _defaulted(policy: Policy, settings: Settings) -> bool:
    return policy.writes_only and not settings.write_rate_limit.strip()


def _share_through(app: FastAPI, settings: Settings, redis: RedisTokens) -> None:
    """Open ``redis`` once the app's lifespan has opened the cache (whose choice of Redis,
    auto-detected or not, it follows), and close it when the app shuts down. The app has a
    lifespan, so on_shutdown handlers would never run: its lifespan is wrapped instead."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(running: Any) -> AsyncIterator[Any]:
        async with inner(running) as state:
            url = redis_url(settings, getattr(running.state, "cache", None))
            if url is None:
                log.info("rate limits: no Redis, so each process limits on its own")
            else:
                redis.open(url)
            try:
                yield state
            finally:
                await redis.close()

    app.router.lifespan_context = lifespan


def document_limits(app: FastAPI, policies: tuple[Policy, ...], exempt: PublicPaths) -> None:
    """In the OpenAPI document: the 429 of every operation a limit applies to."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        for path, operations in schema.get("paths", {}).items():
            if path in exempt:
                continue
            for method, operation in operations.items():  # FastAPI: operations only
                applies = [p for p in policies if not p.writes_only or method.upper() not in READS]
                if applies:
                    operation.setdefault("responses", {})["429"] = _too_many(applies)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _too_many(policies: list[Policy]) -> dict[str, Any]:
    described = ", ".join(f"{p.name}: {p.rate}" for p in policies)
    text = {"schema": {"type": "string"}}
    return {
        "description": f"Rate limit reached ({described}, per API key or address)",
        "headers": {
            "Retry-After": {
                "description": "Seconds until a retry can pass",
                "schema": {"type": "integer"},
            },
            "RateLimit": {"description": f"The limit reached ({DRAFT})", **text},
            "RateLimit-Policy": {"description": f"The limits that apply ({DRAFT})", **text},
        },
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
