"""FastAPI's OpenTelemetry bridge is off unless OpenTelemetry is configured when the app is
built (eventapi/telemetry.py): then it stays as FastAPI ships it."""

from __future__ import annotations

import pytest
from opentelemetry import trace

from eventapi import telemetry
from eventapi.app import create_app
from tests.support.settings import app_settings


class ConfiguredTracerProvider:
    """Stands for an SDK's provider (opentelemetry-sdk is not installed here)."""


def test_nothing_configured_turns_the_bridge_off() -> None:
    assert not telemetry.configured()
    assert telemetry.fastapi_options() == {
        "telemetry": {"tracing": False, "metrics": False, "logs": False}
    }


def test_a_configured_provider_keeps_the_bridge_as_fastapi_ships_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(trace, "get_tracer_provider", ConfiguredTracerProvider)

    assert telemetry.configured()
    assert telemetry.fastapi_options() == {}


def test_the_app_is_built_with_the_decision() -> None:
    app = create_app(app_settings(cache_url="none"))

    assert app._telemetry["tracing"] is False  # FastAPI's own record of the option
