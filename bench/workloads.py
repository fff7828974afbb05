"""Which requests a scenario sends: a hot set of ids, Zipf-distributed ids, list queries."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence

ITEM = "/api/events/{}"

# Realistic list pages: the default page, a category, a text search, a date window, a
# deep page in reverse order, and a category sorted by title.
LIST_QUERIES = (
    "/api/events",
    "/api/events?category=music",
    "/api/events?q=festival&limit=10",
    "/api/events?date_from=2026-01-01T00:00:00&date_to=2026-03-31T23:59:59",
    "/api/events?sort=-date&limit=50&offset=100",
    "/api/events?category=technology&sort=title&limit=25",
)


def item_paths(ids: Sequence[str]) -> list[str]:
    return [ITEM.format(i) for i in ids]


def hot_set(ids: Sequence[str], size: int, seed: int = 7) -> list[str]:
    """``size`` ids picked at random (reproducibly) from ``ids``."""
    return random.Random(seed).sample(list(ids), min(size, len(ids)))


def uniform(paths: Sequence[str], seed: int = 11) -> Callable[[], str]:
    """A chooser returning one of ``paths`` at random, as wrk's script does."""
    rng = random.Random(seed)
    choices = list(paths)
    if len(choices) == 1:
        return itertools.repeat(choices[0]).__next__
    return lambda: choices[int(rng.random() * len(choices))]


class Zipf:
    """Ranks 0..n-1 with P(rank k) proportional to 1 / (k + 1) ** s, drawn in batches."""

    def __init__(self, n: int, s: float = 1.1, seed: int = 13, batch: int = 4096) -> None:
        weights = (1.0 / (k + 1) ** s for k in range(n))
        self._cum = list(itertools.accumulate(weights))
        self._rng = random.Random(seed)
        self._population = range(n)
        self._batch = batch
        self._drawn: list[int] = []

    def next(self) -> int:
        if not self._drawn:
            self._drawn = self._rng.choices(self._population, cum_weights=self._cum, k=self._batch)
        return self._drawn.pop()

    def top_share(self, top: int) -> float:
        """The probability mass of the ``top`` most popular ranks."""
        top = min(max(top, 1), len(self._cum))
        share: float = self._cum[top - 1] / self._cum[-1]
        return share
