"""Which CPUs the server side and the load generator get.

On a small machine the load generator competes with the server for the same cores. With
``taskset`` and at least two usable CPUs, the server under test goes on the first CPU
and the load generator on the others; otherwise nothing is pinned and the report says so.
redis-server goes with the load generator, not with the app: in production Redis is
another machine, so its work must not be charged to the app's core.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass


def usable_cpus() -> list[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


@dataclass(frozen=True)
class Pinning:
    server: tuple[int, ...]  # empty: not pinned
    load: tuple[int, ...]
    taskset: str | None
    reason: str = ""  # why nothing is pinned

    @classmethod
    def plan(cls, enabled: bool = True) -> Pinning:
        cpus = usable_cpus()
        taskset = shutil.which("taskset")
        if not enabled:
            return cls((), (), None, "turned off")
        if taskset is None:
            return cls((), (), None, "taskset is not installed")
        if len(cpus) < 2:
            return cls((), (), None, "fewer than 2 CPUs")
        return cls((cpus[0],), tuple(cpus[1:]), taskset)

    @property
    def active(self) -> bool:
        return bool(self.server)

    def describe(self) -> str:
        if not self.active:
            return f"not pinned ({self.reason}): server and load generator share the CPUs"
        return (
            f"server under test (uvicorn or granian) on CPU {_cpu_list(self.server)}, "
            f"load generator and redis-server on CPU {_cpu_list(self.load)}"
        )

    def server_prefix(self) -> list[str]:
        """Command prefix that runs a server-side process on the server CPUs."""
        if not self.active or self.taskset is None:
            return []
        return [self.taskset, "-c", _cpu_list(self.server)]

    def redis_prefix(self) -> list[str]:
        """Command prefix for redis-server: off the app's CPU (see the module docstring)."""
        return self.load_prefix()

    def load_prefix(self) -> list[str]:
        """Command prefix for an external load generator (wrk)."""
        if not self.active or self.taskset is None:
            return []
        return [self.taskset, "-c", _cpu_list(self.load)]

    @contextlib.contextmanager
    def load_affinity(self) -> Iterator[None]:
        """Run this thread (the Python load generator's event loop) on the load CPUs meanwhile."""
        if not self.active or not hasattr(os, "sched_setaffinity"):
            yield
            return
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, set(self.load))
        try:
            yield
        finally:
            os.sched_setaffinity(0, before)


def _cpu_list(cpus: tuple[int, ...]) -> str:
    return ",".join(str(c) for c in cpus)
