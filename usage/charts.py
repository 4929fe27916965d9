"""Charts drawn on the server as SVG: no chart library, no script, nothing from a CDN.

Each function returns safe markup (every text is escaped) with a <title> and an aria-label,
so a screen reader gets the gist; the usage page also shows the same figures as tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# Colour-blind-friendly (Okabe-Ito), in the order endpoints are listed.
COLOURS = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
)


def colour(index: int) -> str:
    return COLOURS[index % len(COLOURS)]


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _frame(width: int, height: int, label: str, body: list[str]) -> SafeString:
    return mark_safe(  # noqa: S308 - every text inside went through escape()
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(label)}</title>{''.join(body)}</svg>"
    )


def stacked_bars(
    days: Sequence[dt.date],
    series: Mapping[str, Mapping[dt.date, float]],
    *,
    label: str,
    unit: str = "",
    width: int = 720,
    height: int = 220,
) -> SafeString:
    """Bars per day, stacked by series (e.g. jobs per day by endpoint)."""
    left, bottom, top = 40, 22, 10
    plot_w, plot_h = width - left - 8, height - bottom - top
    totals = [sum(s.get(day, 0) for s in series.values()) for day in days]
    peak = _nice_max(max(totals, default=0))
    slot = plot_w / max(1, len(days))
    bar = max(1.0, slot * 0.75)
    body = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}" '
        f'class="axis"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" class="tick">'
        f"{escape(_num(peak))}{escape(unit)}</text>",
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" class="tick">0</text>',
        f'<line x1="{left}" y1="{top}" x2="{width - 8}" y2="{top}" class="grid"/>',
    ]
    for i, day in enumerate(days):
        x = left + i * slot + (slot - bar) / 2
        y = top + plot_h
        for index, (name, values) in enumerate(series.items()):
            value = values.get(day, 0)
            if not value:
                continue
            h = plot_h * value / peak
            y -= h
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colour(index)}"><title>{escape(day.isoformat())} · '
                f"{escape(name)}: {escape(_num(value))}{escape(unit)}</title></rect>"
            )
    if days:
        for i in sorted({0, len(days) // 2, len(days) - 1}):
            x = left + i * slot + slot / 2
            body.append(
                f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle" class="tick">'
                f"{escape(days[i].strftime('%d %b'))}</text>"
            )
    return _frame(width, height, label, body)


def lines(
    days: Sequence[dt.date],
    series: Mapping[str, Mapping[dt.date, Decimal]],
    *,
    label: str,
    width: int = 720,
    height: int = 200,
) -> SafeString:
    """One line per series over the days (e.g. the provider balance), gaps where no value."""
    left, bottom, top = 56, 22, 10
    plot_w, plot_h = width - left - 8, height - bottom - top
    values = [float(v) for s in series.values() for v in s.values()]
    high = _nice_max(max(values, default=0))
    low = 0.0
    slot = plot_w / max(1, len(days) - 1)
    body = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}" '
        f'class="axis"/>',
        f'<line x1="{left}" y1="{top}" x2="{width - 8}" y2="{top}" class="grid"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" class="tick">'
        f"${escape(_num(high))}</text>",
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" class="tick">$0</text>',
    ]
    index_of = {day: i for i, day in enumerate(days)}
    for n, (name, points) in enumerate(series.items()):
        coords = [
            (left + index_of[day] * slot, top + plot_h * (1 - (float(v) - low) / (high - low)))
            for day, v in sorted(points.items())
            if day in index_of
        ]
        if not coords:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        body.append(
            f'<polyline points="{path}" fill="none" stroke="{colour(n)}" stroke-width="2">'
            f"<title>{escape(name)}</title></polyline>"
        )
        for (x, y), (day, v) in zip(coords, sorted(points.items()), strict=False):
            body.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour(n)}">'
                f"<title>{escape(name)} {escape(day.isoformat())}: ${v:.2f}</title></circle>"
            )
    if days:
        for i in sorted({0, len(days) // 2, len(days) - 1}):
            x = left + i * slot
            body.append(
                f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle" class="tick">'
                f"{escape(days[i].strftime('%d %b'))}</text>"
            )
    return _frame(width, height, label, body)


def meter(value: float, peak: float, *, label: str, width: int = 160) -> SafeString:
    """A small horizontal bar for a table cell (its share of the largest value)."""
    share = 0 if peak <= 0 else max(0.0, min(1.0, value / peak))
    return _frame(
        width,
        10,
        label,
        [
            f'<rect x="0" y="1" width="{width}" height="8" rx="2" class="meter-track"/>',
            f'<rect x="0" y="1" width="{width * share:.1f}" height="8" rx="2" '
            f'fill="{COLOURS[0]}"/>',
        ],
    )
