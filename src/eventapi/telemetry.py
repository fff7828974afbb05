"""Whether FastAPI's OpenTelemetry bridge runs, decided once per app instead of per request.

FastAPI (0.16x) asks OpenTelemetry on every request whether a tracer, meter or logger
provider has been configured: about 7-10% of a cached read in a profile of the bench's hit
path, spent finding out that none has. Here the question is asked once, when the app is
built: if OpenTelemetry is set up by then (`opentelemetry-instrument`, or an SDK
configured before the app is created), FastAPI's bridge stays on as FastAPI ships it;
otherwise it is off. A provider configured only after the app is built is not seen.
"""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import FastAPI

# OpenTelemetry's stand-ins until a provider is configured (and its no-op ones).
_PLACEHOLDERS = ("Proxy", "_Proxy", "NoOp", "_NoOp", "Default")


def configured() -> bool:
    """Whether any OpenTelemetry provider (traces, metrics, logs) is configured now."""
    try:
        from opentelemetry import metrics, trace
        from opentelemetry._logs import get_logger_provider
    except ImportError:  # no OpenTelemetry API: nothing to bridge to
        return False
    providers = (trace.get_tracer_provider(), metrics.get_meter_provider(), get_logger_provider())
    return any(not type(p).__name__.startswith(_PLACEHOLDERS) for p in providers)


def fastapi_options() -> dict[str, Any]:
    """The keyword FastAPI(...) takes: telemetry off when nothing is configured (and only
    on FastAPI versions that have the bridge)."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters or configured():
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
