"""What the numbers were measured on: CPU, cores, memory, Python and library versions."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from bench import server, wrk
from bench.pinning import usable_cpus


def _proc_field(path: str, name: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == name:
                return value.strip()
    except OSError:
        pass
    return ""


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _redis_version() -> str:
    if server.REDIS_SERVER is None:
        return "not installed"
    out = subprocess.run(
        [server.REDIS_SERVER, "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    words = out.stdout.split()
    version = next((w for w in words if w.startswith("v=")), "")
    return version.removeprefix("v=") or out.stdout.strip()


OTHERS = ("granian", "fastapi-cache2")


def describe(generator: str) -> list[tuple[str, str]]:
    cpu = _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown"
    memory = _proc_field("/proc/meminfo", "MemTotal")
    if memory.endswith(" kB") and memory[:-3].isdigit():
        memory = f"{int(memory[:-3]) / 1024 / 1024:.1f} GiB"
    versions = ", ".join(
        f"{p} {_version(p)}" for p in ("fastapi", "starlette", "uvicorn", "uvloop", "httptools")
    )
    if generator == "wrk":
        load = f"wrk ({wrk.version()}), Lua script choosing each path at random"
    else:
        load = "bundled Python generator (asyncio streams on uvloop, HTTP/1.1 keep-alive)"
    return [
        ("CPU", cpu),
        ("cores", f"{os.cpu_count()} ({len(usable_cpus())} usable by this process)"),
        ("memory", memory or "unknown"),
        ("OS", platform.platform()),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("libraries", f"{versions}, orjson {_version('orjson')}, redis-py {_version('redis')}"),
        ("other servers, peers", ", ".join(f"{p} {_version(p)}" for p in OTHERS)),
        ("redis-server", _redis_version()),
        ("load generator", load),
    ]
