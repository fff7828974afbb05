"""The app has one composition root (app.py): its lifespan opens every client and yields one
typed state; the layers in front of the routes are the ones it lists, in its order; the
OpenAPI document is built in one place."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from eventapi.app import create_app
from eventapi.http.body_limit import BodyLimitMiddleware
from eventapi.http.fastpath import ReadEdge
from eventapi.http.gate import Gate
from eventapi.http.limits import RateLimits
from eventapi.http.observe import ObserveMiddleware
from eventapi.runtime import Runtime
from eventapi.settings import Settings
from tests.support.app import run_app
from tests.support.redis_server import RedisServer


def layers(app: FastAPI) -> list[str]:
    return [getattr(m.cls, "__name__", "") for m in app.user_middleware]


def settings_for(tmp_path: Path, **fields: object) -> Settings:
    fields.setdefault("cache_url", "memory://")
    return Settings(database_url=f"sqlite:///{tmp_path}/app.db", **fields)  # type: ignore[arg-type]


async def test_the_lifespan_yields_one_typed_state_and_the_app_keeps_nothing(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path)
    app = create_app(settings)
    async with app.router.lifespan_context(app) as state:
        assert state is not None
        assert list(state) == ["runtime"]
        runtime = state["runtime"]
        assert isinstance(runtime, Runtime)
        assert runtime.settings is settings
    # Nothing is kept on the app itself: everything a request needs is in the state.
    assert vars(app.state)["_state"] == {}


def test_the_layers_are_the_ones_app_py_lists_in_its_order(tmp_path: Path) -> None:
    bare = create_app(settings_for(tmp_path))
    assert layers(bare) == [c.__name__ for c in (ObserveMiddleware, ReadEdge, BodyLimitMiddleware)]
    full = create_app(
        settings_for(
            tmp_path,
            api_keys="key-0123456789abcdef",
            rate_limit="10/second",
            cors_origins="https://example.org",
        )
    )
    order = (ObserveMiddleware, CORSMiddleware, Gate, ReadEdge, BodyLimitMiddleware)
    assert layers(full) == [c.__name__ for c in order]


async def test_the_lifespan_opens_the_rate_limits_redis_and_closes_it(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = settings_for(tmp_path, cache_url=redis_server.url, rate_limit="10/second")
    app = create_app(settings)
    limits = next(m.kwargs["limits"] for m in app.user_middleware if m.kwargs.get("limits"))
    assert isinstance(limits, RateLimits)
    tokens = limits.tokens
    assert tokens is not None
    assert not tokens.ready()  # nothing opened before the lifespan
    async with run_app(app=app):
        assert tokens.ready()
    assert not tokens.ready()  # closed with the app


def test_the_openapi_document_is_built_once(tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path, api_keys="key-0123456789abcdef", rate_limit="1/second"))
    document = app.openapi()
    assert app.openapi() is document
    operation = document["paths"]["/api/events"]["post"]
    assert {"401", "413", "429"} <= set(operation["responses"])
