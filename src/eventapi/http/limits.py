"""Rate limits per client (API key, else address): EVENTAPI_RATE_LIMIT for every request,
EVENTAPI_WRITE_RATE_LIMIT for writes. Checked by the gate (http/gate.py) after the key
check, so a 401 costs no token.

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
- **The client** is the request's caller (http/caller.py): the API key when a configured
  one is presented (``Authorization: Bearer`` or ``X-API-Key``), else the peer address
  (uvicorn puts the X-Forwarded-For address there only for EVENTAPI_TRUSTED_PROXIES). Only
  part of the key's digest is kept, in memory and in Redis key names; a key that is not
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
  process takes tokens from them in batches; otherwise each process keeps its own. The
  app's lifespan opens that Redis client with the cache's factory (cache/factory.py,
  ``limits_link``) and closes it. Redis
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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import Counter
from starlette.responses import Response

from eventapi.cache.breaker import CircuitBreaker
from eventapi.cache.factory import namespace
from eventapi.http.access import READS
from eventapi.http.problems import problem_response
from eventapi.metrics import Metrics
from eventapi.ratelimit.local import LocalBuckets
from eventapi.ratelimit.rates import Policy, policies_for
from eventapi.ratelimit.shared import RedisTokens, SharedBuckets
from eventapi.settings import Settings

log = logging.getLogger("eventapi")

DRAFT = "draft-ietf-httpapi-ratelimit-headers-11"


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


class RateLimits:
    """The limits the settings ask for, each with its limiter, and the Redis client they
    share tokens through (``tokens``: None when no process shares them; the app's lifespan
    opens and closes it)."""

    def __init__(self, settings: Settings, metrics: Metrics, policies: tuple[Policy, ...]) -> None:
        self.policies = policies
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
        self.on_refusal: Callable[[str], None] = lambda policy: refused.labels(policy).inc()
        self.tokens: RedisTokens | None = None
        url = settings.cache_url
        if url is None or url.startswith(("redis:", "rediss:")):
            self.tokens = RedisTokens(
                settings.cache_timeout,
                CircuitBreaker(reset_timeout=settings.cache_breaker_reset),
                on_error=errors.inc,
            )
        prefix = f"{namespace(settings)}:ratelimit:"
        checks: list[Check] = []
        for policy in policies:
            limiter: Limiter
            if self.tokens is None:
                limiter = LocalBuckets(policy.rate)
            else:
                name = f"{prefix}{policy.name}:{policy.rate.count}/{policy.rate.period}:"
                limiter = SharedBuckets(policy.rate, name, self.tokens)
            checks.append(Check(policy, limiter))
        self.reads = tuple(check for check in checks if not check.policy.writes_only)
        self.writes = tuple(checks)

    def checks_for(self, method: str) -> tuple[Check, ...]:
        return self.reads if method in READS else self.writes


def rate_limits(settings: Settings, metrics: Metrics) -> RateLimits | None:
    """The rate limits of ``settings``; None when no limit applies.

    Raises ValueError, naming the variable, if a limit setting is not a limit."""
    policies = policies_for(settings)
    if not policies:
        return None
    described = ", ".join(
        f"{policy.name} {policy.rate}"
        + (" (production default)" if _defaulted(policy, settings) else "")
        for policy in policies
    )
    log.info("rate limits per client: %s", described)
    return RateLimits(settings, metrics, policies)


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


def _defaulted(policy: Policy, settings: Settings) -> bool:
    return policy.writes_only and not settings.write_rate_limit.strip()
