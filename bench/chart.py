"""A hand-written SVG bar chart of cached vs uncached latency (p50 and p99, log scale)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from html import escape

from bench.results import Row

# (group title, [(series, row key)]): each series draws a p50 bar and a lighter p99 bar.
SERIES_COLOURS = {"cached, memory": "#2b6cb0", "cached, redis": "#2f855a", "uncached": "#c05621"}
W, H = 760, 380
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 50, 80


def groups(latency_ms: float) -> list[tuple[str, list[tuple[str, str]]]]:
    return [
        (
            "item GET (hot set)",
            [
                ("cached, memory", "cached-memory"),
                ("cached, redis", "cached-redis"),
                ("uncached", "uncached"),
            ],
        ),
        ("list queries", [("cached, memory", "lists-cached"), ("uncached", "lists-uncached")]),
        (
            f"item GET, {latency_ms:g} ms store",
            [("cached, memory", "slow-cached"), ("uncached", "slow-uncached")],
        ),
    ]


def _fmt(ms: float) -> str:
    return f"{ms:.2f}" if ms < 10 else f"{ms:.0f}"


def svg(rows: Mapping[str, Row], latency_ms: float, connections: int) -> str:
    bars: list[tuple[int, str, str, float, bool]] = []  # group, series, key, ms, is_p99
    for g, (_, series) in enumerate(groups(latency_ms)):
        for name, key in series:
            row = rows.get(key)
            if row is not None and row.load is not None and row.load.requests:
                bars.append((g, name, key, max(row.load.p50, 1e-3), False))
                bars.append((g, name, key, max(row.load.p99, 1e-3), True))
    values = [b[3] for b in bars] or [0.1, 100.0]
    lo = 10.0 ** math.floor(math.log10(min(values)))
    hi = 10.0 ** math.ceil(math.log10(max(values) * 1.01))
    plot_h, plot_w = H - TOP - BOTTOM, W - LEFT - RIGHT

    def y(ms: float) -> float:
        return TOP + plot_h * (1 - (math.log10(ms) - math.log10(lo)) / math.log10(hi / lo))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="11">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">'
        "Latency, cached vs uncached (ms, log scale)</text>",
        f'<text x="{W / 2}" y="38" text-anchor="middle" fill="#555">'
        f"{connections} connections; solid bars p50, light bars p99</text>",
    ]
    decade = lo
    for _ in range(12):  # grid lines, one per power of ten
        if decade > hi * 1.001:
            break
        yy = y(decade)
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}" '
                   'stroke="#ddd"/>')  # fmt: skip
        out.append(f'<text x="{LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end">{decade:g} ms</text>')
        decade *= 10
    group_list = groups(latency_ms)
    group_w = plot_w / len(group_list)
    for g, (title, _) in enumerate(group_list):
        x0 = LEFT + g * group_w
        out.append(f'<text x="{x0 + group_w / 2:.1f}" y="{H - BOTTOM + 20}" '
                   f'text-anchor="middle" font-weight="bold">{escape(title)}</text>')  # fmt: skip
        mine = [b for b in bars if b[0] == g]
        bar_w = min(34.0, (group_w - 30) / max(len(mine), 1))
        start = x0 + (group_w - bar_w * len(mine)) / 2
        for i, (_, name, _, ms, p99) in enumerate(mine):
            x, top = start + i * bar_w, y(ms)
            colour, opacity = SERIES_COLOURS[name], 0.45 if p99 else 1.0
            out.append(
                f'<rect x="{x + 2:.1f}" y="{top:.1f}" width="{bar_w - 4:.1f}" '
                f'height="{TOP + plot_h - top:.1f}" fill="{colour}" fill-opacity="{opacity}">'
                f"<title>{escape(name)} {'p99' if p99 else 'p50'}: {ms:.3f} ms</title></rect>"
            )
            out.append(f'<text x="{x + bar_w / 2:.1f}" y="{top - 4:.1f}" text-anchor="middle" '
                       f'font-size="9">{_fmt(ms)}</text>')  # fmt: skip
    out.append(_legend())
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _legend() -> str:
    parts, x = [], LEFT
    for name, colour in SERIES_COLOURS.items():
        parts.append(f'<rect x="{x}" y="{H - 34}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{x + 16}" y="{H - 24}">{escape(name)}</text>')
        x += 130
    return "\n".join(parts)
