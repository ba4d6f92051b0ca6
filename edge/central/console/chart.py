"""One pseudonym's hourly timeline as an inline SVG: drawn on the server, no script, no CDN.

x is time (first to last alerted hour, at least a day), y the risk level 0-10; each alert
is a dot coloured by level, with its hour and label as a tooltip (``<title>``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from html import escape

from edge.central.queries import AlertRow
from edge.core.clock import parse_utc

WIDTH, HEIGHT, MARGIN = 760, 220, 40
# the default level cuts (analytics.level_cuts): High from 5, Medium from 3, Low from 1
SEVERITIES = ((5, "high", "#b3261e"), (3, "medium", "#e8710a"), (1, "low", "#c79a00"),
              (0, "none", "#5f6368"))


def severity(level: int) -> str:
    """The CSS class of a level (the Content-Security-Policy allows no inline style)."""
    return next(name for floor, name, _colour in SEVERITIES if level >= floor)


def level_colour(level: int) -> str:
    return next(colour for floor, _name, colour in SEVERITIES if level >= floor)


def timeline_svg(points: Sequence[AlertRow]) -> str:
    if not points:
        return ""
    hours = [parse_utc(p.hour_start) for p in points]
    first, last = min(hours), max(hours)
    span = max((last - first).total_seconds(), timedelta(days=1).total_seconds())
    plot_w, plot_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN

    def x(moment_s: float) -> float:
        return MARGIN + plot_w * moment_s / span

    def y(level: int) -> float:
        return HEIGHT - MARGIN - plot_h * level / 10

    parts = [f'<svg class="timeline" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="risk level per hour" xmlns="http://www.w3.org/2000/svg">']
    for level in (0, 1, 3, 5, 10):
        parts.append(f'<line x1="{MARGIN}" x2="{WIDTH - MARGIN}" y1="{y(level):.1f}" '
                     f'y2="{y(level):.1f}" class="grid"/><text x="{MARGIN - 8}" '
                     f'y="{y(level) + 4:.1f}" class="axis" text-anchor="end">{level}</text>')
    parts.append(f'<text x="{MARGIN}" y="{HEIGHT - 10}" class="axis">'
                 f'{escape(first.strftime("%Y-%m-%d %H:%M"))} UTC</text>')
    parts.append(f'<text x="{WIDTH - MARGIN}" y="{HEIGHT - 10}" class="axis" '
                 f'text-anchor="end">{escape(last.strftime("%Y-%m-%d %H:%M"))} UTC</text>')
    for point, hour in zip(points, hours):
        cx, cy = x((hour - first).total_seconds()), y(point.level)
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="'
                     f'{level_colour(point.level)}"><title>{escape(point.hour_start)}: '
                     f'level {point.level} ({escape(point.label)}), {escape(point.device)}'
                     '</title></circle>')
    parts.append("</svg>")
    return "".join(parts)
