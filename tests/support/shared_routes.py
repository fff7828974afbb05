"""Every in-process test builds a new app, and FastAPI (0.165) builds the state of each route
an app includes (the pydantic fields of its parameters and responses) on that app's first
request: about 25 ms an app, 40% of the time of tests/api/test_errors.py (cProfile). The
routes, and how create_app includes them, are the same in every app the tests build, so
``share_route_state`` makes the apps of one test process share that state.

Production builds one app per process: nothing to share there, and nothing of this runs.
What is shared never depends on the app: the key is the route and every field of its
inclusion except the app itself, and an app with dependency overrides (no test sets any)
builds its own. If FastAPI moves the method this wraps, the suite fails at start-up, here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import routing

_CONTEXT = routing._EffectiveRouteContext  # the per-inclusion state of one route
_PER_APP = "dependency_overrides_provider"


def share_route_state() -> None:
    built = _CONTEXT.__dict__["from_api_route"].__func__
    shared: dict[tuple[int, str], Any] = {}

    def from_api_route(cls: type, *, original_route: Any, include_context: Any) -> Any:
        provider = getattr(include_context, _PER_APP, None)
        if getattr(provider, "dependency_overrides", None):
            return built(cls, original_route=original_route, include_context=include_context)
        how = repr(
            [
                (f.name, getattr(include_context, f.name))
                for f in dataclasses.fields(include_context)
                if f.name != _PER_APP
            ]
        )
        key = (id(original_route), how)
        if key not in shared:
            shared[key] = (
                original_route,  # kept alive, so its id is never reused
                built(cls, original_route=original_route, include_context=include_context),
            )
        return shared[key][1]

    _CONTEXT.from_api_route = classmethod(from_api_route)  # type: ignore[method-assign,assignment]
