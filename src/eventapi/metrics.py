"""Prometheus metrics, one registry per app (no module-level state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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
