"""Who may call what: API keys for writes (and reads, if configured), CORS, and the OpenAPI
security scheme. The key check runs in http/gate.py, with the rate limits.

With EVENTAPI_API_KEYS set, a request must carry one of the keys, as
``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, when it is

- a write: any method but GET, HEAD and OPTIONS, on any path (even one that does not
  exist, so a caller without a key learns nothing about the routes);
- a read (GET, HEAD, OPTIONS) and EVENTAPI_PUBLIC_READS=false, on any path but /health and
  the documentation (/docs, /docs/oauth2-redirect, /redoc, /openapi.json, and the pages'
  files under /docs/assets/), which a load balancer and a person with no key yet must
  reach. /metrics is a read like the events: it is private too.

Without a key, or with a wrong one, the answer is 401 problem+json with
``WWW-Authenticate: Bearer``, sent before the body is read. Only SHA-256 digests of the
keys are held (settings.ApiKeys); a presented key is hashed and compared as http/caller.py
says. No key, configured or presented, is ever logged.

Without keys the API is open to anyone: start-up says so in one warning line, and
EVENTAPI_ENV=production refuses to start (AccessRefused, raised by check_access).

Order (app.py lists every layer): CORS (only with EVENTAPI_CORS_ORIGINS) -> the gate (key
check, then rate limits) -> the rest of the app. A browser's preflight carries no key, so
CORS answers it before the key check; and a 401 passes back through CORS, so the page can
read it. With public reads the key check costs a read one set lookup of its method.

X-Forwarded-For/-Proto are not handled here: the server honours them only from the peers
in EVENTAPI_TRUSTED_PROXIES (cli.serve configures uvicorn so).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from eventapi.http.caller import Caller
from eventapi.http.docs import ASSETS_URL, DOCS_URL, OAUTH2_REDIRECT_URL, OPENAPI_URL, REDOC_URL
from eventapi.http.problems import problem_response
from eventapi.settings import Settings

log = logging.getLogger("eventapi")

READS = frozenset({"GET", "HEAD", "OPTIONS"})
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
ALWAYS_PUBLIC = ("/health",)
CORS_HEADERS = (
    "Authorization",
    "X-API-Key",
    "Content-Type",
    "If-Match",
    "If-None-Match",
    "Idempotency-Key",
)
CORS_EXPOSED = (
    "ETag",
    "X-Cache",
    "X-Total-Count",
    "Link",
    "Location",
    "Idempotent-Replayed",
    "Retry-After",
    "RateLimit",
    "RateLimit-Policy",
)
OPEN_WARNING = "no EVENTAPI_API_KEYS set: anyone can create, change and delete events"


class AccessRefused(RuntimeError):
    """The settings would serve an API that must not be served (production, no keys)."""


@dataclass(frozen=True, slots=True)
class PublicPaths:
    """``path in public``: the path is one of ``exact`` or lies under one of ``prefixes``
    (each ends with "/", so /docs/assets/ covers /docs/assets/x, not /docs/assetsx)."""

    exact: frozenset[str]
    prefixes: tuple[str, ...] = ()

    def __contains__(self, path: str) -> bool:
        return path in self.exact or path.startswith(self.prefixes)


# The paths that never need a key and are never rate-limited: health, the docs pages and
# the files they load (http/docs.py). A prefix opens no more than the files: below it only
# StaticFiles answers, from its directory (a path whose ".." climbs out of it is a 404,
# never another route).
PUBLIC = PublicPaths(
    frozenset((*ALWAYS_PUBLIC, DOCS_URL, OAUTH2_REDIRECT_URL, REDOC_URL, OPENAPI_URL)),
    (ASSETS_URL + "/",),
)


@dataclass(frozen=True, slots=True)
class KeyCheck:
    """Which requests need one of the configured keys, and the 401 of one that has none."""

    public_reads: bool

    def needs_key(self, method: str, path: str) -> bool:
        if method in READS:
            return not self.public_reads and path not in PUBLIC
        return True

    @staticmethod
    def refusal(caller: Caller, path: str) -> Response:
        detail = (
            "The API key is not valid"
            if caller.presented
            else "This request needs an API key: send 'Authorization: Bearer <key>' "
            "or 'X-API-Key: <key>'"
        )
        return problem_response(
            401,
            detail,
            slug="unauthorized",
            title="Unauthorized",
            instance=path,
            headers={"WWW-Authenticate": "Bearer"},
        )


def check_access(settings: Settings) -> KeyCheck | None:
    """The key check the settings ask for (None: no keys, the API is open, which start-up
    says in one warning line).

    Raises AccessRefused when the settings must not serve (production without keys)."""
    refusal = settings.refusal()
    if refusal is not None:
        raise AccessRefused(refusal)
    keys = settings.api_keys
    if keys:
        return KeyCheck(settings.public_reads)
    extra = " (and read them: EVENTAPI_PUBLIC_READS=false needs keys)"
    log.warning("%s%s", OPEN_WARNING, "" if settings.public_reads else extra)
    return None


def cors(settings: Settings) -> Middleware | None:
    """The CORS layer, with EVENTAPI_CORS_ORIGINS: outside the key check, so a preflight
    (which carries no key) is answered before it, and a 401 passes back through CORS."""
    origins = settings.cors_origin_list
    if not origins:
        return None
    return Middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=METHODS,
        allow_headers=CORS_HEADERS,
        expose_headers=CORS_EXPOSED,
        allow_credentials=False,
    )
