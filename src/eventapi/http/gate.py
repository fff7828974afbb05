"""The gate: the API-key check (http/access.py), then the rate limits (http/limits.py), in one
layer, on the caller worked out once (http/caller.py). Installed only when keys or limits
are configured; a request it lets through goes on unchanged.

A 401 is answered before any token is taken; a write the write limit refuses costs no token
of the request limit (its checks are in that order). Neither reads the body.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from eventapi.http.access import PUBLIC, KeyCheck
from eventapi.http.caller import Callers
from eventapi.http.limits import RateLimits, refusal


class Gate:
    def __init__(
        self,
        app: ASGIApp,
        callers: Callers,
        keys: KeyCheck | None,
        limits: RateLimits | None,
    ) -> None:
        self.app = app
        self.callers = callers
        self.keys = keys
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        path: str = scope["path"]
        if self.keys is not None and self.keys.needs_key(method, path):
            caller = self.callers.of(scope)
            if caller.digest is None:
                await self.keys.refusal(caller, path)(scope, receive, send)
                return
        if self.limits is not None and path not in PUBLIC:
            checks = self.limits.checks_for(method)
            if checks:
                client = self.callers.of(scope).client
                for check in checks:
                    wait = check.limiter.take_now(client)
                    if wait is None:
                        wait = await check.limiter.take(client)
                    if wait > 0:
                        self.limits.on_refusal(check.policy.name)
                        await refusal(path, check.policy, checks, wait)(scope, receive, send)
                        return
        await self.app(scope, receive, send)
