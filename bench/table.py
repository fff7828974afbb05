"""The results table: one row of cells per scenario, as text for the terminal."""

from __future__ import annotations

from collections.abc import Sequence

from bench.results import Row

HEAD = ["scenario", "cache", "load", "conns", "req/s", "p50 ms", "p99 ms", "p99.9 ms",
        "x floor", "store reads", "per 1k req", "hit ratio", "errors", "notes"]  # fmt: skip


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def cells(row: Row) -> list[str]:
    load = row.load
    if load is None:
        return [row.label, row.cache, *["-"] * 11, f"skipped: {row.skipped}"]
    errors = str(load.errors + load.non_2xx)
    if load.server_errors:
        errors += f" ({load.server_errors} 5xx)"
    return [
        row.label, row.cache, load.generator, str(load.connections), f"{load.rps:,.0f}",
        _num(load.p50, 3), _num(load.p99, 3), _num(load.p999, 3), _num(row.ratio),
        "-" if row.store_reads is None else str(row.store_reads), _num(row.per_1k, 1),
        "-" if row.hit_ratio is None else f"{row.hit_ratio:.1%}", errors, row.note,
    ]  # fmt: skip


def progress_line(row: Row) -> str:
    c = cells(row)
    if row.load is None:
        return f"  {c[0]} ({row.cache}): {c[-1]}"
    return f"  {c[0]} ({row.cache}): {c[4]} req/s, p50 {c[5]} ms, p99 {c[6]} ms"


def text_table(rows: Sequence[Row]) -> str:
    table = [HEAD[:-1]] + [cells(r)[:-1] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEAD) - 1)]
    lines = ["  ".join(v.ljust(w) if i < 3 else v.rjust(w) for i, (v, w) in
                       enumerate(zip(line, widths, strict=True))) for line in table]  # fmt: skip
    return "\n".join(lines)
