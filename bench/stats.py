"""What one load run measured: counts, requests per second and latency percentiles."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (0.0 when it is empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, round(fraction * len(sorted_values) + 0.5 - 1e-9))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class LoadResult:
    """One run of a load generator. Latencies are in milliseconds."""

    generator: str  # "python" or "wrk"
    connections: int
    requests: int  # responses received (any status)
    elapsed: float  # seconds, from the first request sent to the last response
    p50: float
    p99: float
    p999: float
    errors: int = 0  # connection errors, timeouts, malformed responses
    non_2xx: int = 0  # responses outside 2xx/3xx
    server_errors: int | None = 0  # 5xx (None: the generator cannot tell)
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed if self.elapsed > 0 else 0.0

    @classmethod
    def from_samples(
        cls,
        generator: str,
        connections: int,
        elapsed: float,
        latencies_ns: list[int],
        statuses: Counter[int],
        errors: int,
    ) -> LoadResult:
        ms = sorted(v / 1e6 for v in latencies_ns)
        return cls(
            generator=generator,
            connections=connections,
            requests=len(ms),
            elapsed=elapsed,
            p50=percentile(ms, 0.50),
            p99=percentile(ms, 0.99),
            p999=percentile(ms, 0.999),
            errors=errors,
            non_2xx=sum(n for s, n in statuses.items() if not 200 <= s < 400),
            server_errors=sum(n for s, n in statuses.items() if s >= 500),
            statuses=statuses,
        )
