"""Server-rendered SVG charts: the project page's usage per day, with no JavaScript.

Small multiples, one panel per measure (calls, tokens, cost, errors as bars summed over
models; p95 latency as a line per model, since percentiles do not add up). Colours come
from CSS custom properties (``currentColor`` and ``var(--accent)``), so the charts follow
the light or dark scheme; every bar has a ``<title>`` (a tooltip, and text for screen
readers).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 640, 130, 64, 22, 10
SERIES = 6  # colours of lines, as classes s0..s5 in ui.css (the CSP allows no inline style)


def _fmt(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    if value and value < 1:
        return f"{value:.3g}"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _days(since: dt.date, until: dt.date) -> list[dt.date]:
    return [since + dt.timedelta(days=i) for i in range((until - since).days + 1)]


def _frame(title: str, top: float, days: list[dt.date], unit: str) -> list[str]:
    inner_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    parts = [
        f'<text x="0" y="{PAD_TOP + 4}" class="axis">{escape(_fmt(top))}{escape(unit)}</text>',
        f'<text x="0" y="{PAD_TOP + inner_h}" class="axis">0</text>',
        f'<line x1="{PAD_LEFT}" y1="{PAD_TOP + inner_h}" x2="{WIDTH}" y2="{PAD_TOP + inner_h}"'
        ' class="grid"/>',
        f'<line x1="{PAD_LEFT}" y1="{PAD_TOP}" x2="{WIDTH}" y2="{PAD_TOP}" class="grid faint"/>',
    ]
    if days:
        for i, anchor in ((0, "start"), (len(days) // 2, "middle"), (len(days) - 1, "end")):
            x = PAD_LEFT + (i + 0.5) * (WIDTH - PAD_LEFT) / len(days)
            if anchor == "start":
                x = PAD_LEFT
            elif anchor == "end":
                x = WIDTH
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - 6}" class="axis" text-anchor="{anchor}">'
                f"{days[i].isoformat()}</text>"
            )
            if len(days) == 1:
                break
    head = (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img"'
        f' aria-label="{escape(title)} per day"><title>{escape(title)} per day</title>'
    )
    return [head, *parts]


def bars(title: str, values: dict[dt.date, float], days: list[dt.date], unit: str = "") -> Markup:
    top = max(values.values(), default=0) or 1
    inner_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    step = (WIDTH - PAD_LEFT) / max(1, len(days))
    parts = _frame(title, top, days, unit)
    for i, day in enumerate(days):
        value = values.get(day, 0)
        if not value:
            continue
        h = max(1.0, inner_h * value / top)
        parts.append(
            f'<rect class="bar" x="{PAD_LEFT + i * step + step * 0.1:.1f}"'
            f' y="{PAD_TOP + inner_h - h:.1f}" width="{max(1.0, step * 0.8):.1f}"'
            f' height="{h:.1f}"><title>{day.isoformat()}: {escape(_fmt(value))}{escape(unit)}'
            "</title></rect>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def lines(
    title: str, series: dict[str, dict[dt.date, float]], days: list[dt.date], unit: str = ""
) -> Markup:
    top = max((v for s in series.values() for v in s.values()), default=0) or 1
    inner_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    step = (WIDTH - PAD_LEFT) / max(1, len(days))
    parts = _frame(title, top, days, unit)
    legend = []
    for n, (name, values) in enumerate(sorted(series.items())):
        colour = f"s{n % SERIES}"
        points = [
            (PAD_LEFT + (i + 0.5) * step, PAD_TOP + inner_h - inner_h * values[day] / top, day)
            for i, day in enumerate(days)
            if values.get(day) is not None
        ]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
            parts.append(f'<polyline class="line {colour}" points="{path}"/>')
        for x, y, day in points:
            parts.append(
                f'<circle class="dot {colour}" cx="{x:.1f}" cy="{y:.1f}" r="2.5">'
                f"<title>{escape(name)} {day.isoformat()}: {escape(_fmt(values[day]))}"
                f"{escape(unit)}</title></circle>"
            )
        legend.append((colour, name))
    parts.append("</svg>")
    keys = "".join(
        f'<span class="key"><i class="{c}"></i>{escape(name)}</span>' for c, name in legend
    )
    return Markup("".join(parts) + f'<div class="legend">{keys}</div>')


def usage_charts(usage: Iterable[dict], since: dt.date, until: dt.date) -> list[tuple[str, Markup]]:
    """The project page's panels from ``queries.usage`` rows."""
    usage = list(usage)
    days = _days(since, until)
    totals: dict[str, dict[dt.date, float]] = defaultdict(lambda: defaultdict(float))
    p95: dict[str, dict[dt.date, float]] = defaultdict(dict)
    for row in usage:
        day = row["day"]
        for key in ("calls", "tokens", "cost_usd", "errors"):
            totals[key][day] += float(row[key] or 0)
        latency = row.get("latency_p95_ms")
        if latency is None:
            latency = row.get("avg_latency_ms")
        if latency is not None:
            p95[row["model"] or "(no model)"][day] = float(latency)
    latency_title = (
        "p95 latency"
        if any(r.get("latency_p95_ms") is not None for r in usage)
        else "latency (mean)"
    )
    return [
        ("Calls", bars("Calls", totals["calls"], days)),
        ("Tokens", bars("Tokens", totals["tokens"], days)),
        ("Cost", bars("Cost", totals["cost_usd"], days, " $")),
        ("Errors", bars("Errors", totals["errors"], days)),
        (latency_title.capitalize(), lines(latency_title, p95, days, " ms")),
    ]


def trend_chart(report: Any, since: dt.date, until: dt.date) -> tuple[Markup, list[Any]]:
    """A score's daily mean per model and prompt version (``experiments.trends``), and
    the points its change detector flagged."""
    days = _days(since, until)
    series: dict[str, dict[dt.date, float]] = defaultdict(dict)
    for point in report.points:
        if point.score.estimate is None:
            continue
        name = f"{point.model or '(no model)'} · {point.prompt_version or 'no prompt version'}"
        series[name][point.period] = float(point.score.estimate)
    return lines(f"{report.score} (mean)", series, days), list(report.alerts)


def neighbour_graph(centre: Any, neighbours: list[Any], base: str) -> Markup:
    """The entity in the middle, its neighbours on a circle around it, each edge as thick
    as the number of generations supporting it; every node links to its own page."""
    import math

    size, radius = 420, 150
    cx = cy = size / 2
    top = max((n.support for n in neighbours), default=1) or 1
    parts = [
        f'<svg class="chart graph" viewBox="0 0 {size} {size}" role="img"'
        f' aria-label="{escape(centre.name)} and its neighbours">'
    ]
    nodes = []
    for i, n in enumerate(neighbours):
        angle = 2 * math.pi * i / max(1, len(neighbours)) - math.pi / 2
        x, y = cx + radius * math.cos(angle), cy + radius * math.sin(angle)
        width = 1 + 4 * n.support / top
        parts.append(
            f'<line class="edge" x1="{cx:.1f}" y1="{cy:.1f}" x2="{x:.1f}" y2="{y:.1f}"'
            f' stroke-width="{width:.1f}"><title>{escape(n.predicate)}: {n.support}'
            " generations</title></line>"
        )
        nodes.append((x, y, n))
    for x, y, n in nodes:
        parts.append(
            f'<a href="{escape(base)}/{n.id}"><circle class="node" cx="{x:.1f}" cy="{y:.1f}"'
            f' r="6"><title>{escape(n.kind)}: {escape(n.name)}</title></circle>'
            f'<text class="label" x="{x:.1f}" y="{y - 10:.1f}" text-anchor="middle">'
            f"{escape(n.name[:28])}</text></a>"
        )
    parts.append(
        f'<circle class="node centre" cx="{cx:.1f}" cy="{cy:.1f}" r="9"></circle>'
        f'<text class="label centre" x="{cx:.1f}" y="{cy - 14:.1f}" text-anchor="middle">'
        f"{escape(centre.name[:32])}</text></svg>"
    )
    return Markup("".join(parts))
