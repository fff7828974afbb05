"""Prometheus metrics, one registry per app (no module-level state).

The hot path never calls labels(): it takes a lock and checks the label values on every
call, which cost a few percent of a cached read. The children a request touches are
looked up in plain dicts instead: built up front where the label values are a closed set,
remembered on first use (boundedly) where a client chooses them.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_ROUTES = ("item", "list")
_OUTCOMES = ("HIT", "MISS", "BYPASS")
_MAX_LATENCY_CHILDREN = 1024  # (method, route, status) triples; the method is the client's


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.cache_requests = Counter(
            "eventapi_cache_requests",
            "Cached reads by route and outcome (hit, miss, bypass)",
            ["route", "outcome"],
            registry=self.registry,
        )
        self.cache_errors = Counter(
            "eventapi_cache_errors",
            "Cache operations that failed or ran out of time",
            ["operation"],
            registry=self.registry,
        )
        self.store_operations = Counter(
            "eventapi_store_operations",
            "Store calls by operation",
            ["operation"],
            registry=self.registry,
        )
        self.breaker_open = Gauge(
            "eventapi_cache_breaker_open",
            "1 while the cache circuit breaker is open or probing",
            registry=self.registry,
        )
        self.request_latency = Histogram(
            "eventapi_request_duration_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self._cache_requests = {
            (route, outcome): self.cache_requests.labels(route, outcome.lower())
            for route in _ROUTES
            for outcome in _OUTCOMES
        }
        self._latency: dict[tuple[str, str, int], Any] = {}

    def cache_request(self, route: str, outcome: str) -> None:
        """One cached read of ``route`` (item, list) with X-Cache ``outcome``."""
        self._cache_requests[route, outcome].inc()

    def store_operation(self, operation: str) -> None:
        # Not on a cached read's path: labels() is fine here.
        self.store_operations.labels(operation).inc()

    def observe_latency(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        child = self._latency.get(key)
        if child is None:
            child = self.request_latency.labels(method, route, str(status))
            if len(self._latency) < _MAX_LATENCY_CHILDREN:
                self._latency[key] = child
        child.observe(seconds)
