"""Chart geometry for the HTML report: plain values that a template turns into inline SVG.

Nothing here is markup: a ``Chart`` is rectangles, lines and labels with numeric coordinates; the template
(``templates/charts.html``) writes them as SVG elements with presentation attributes (no ``style``
attributes, no script), through an autoescaping Jinja environment. Colours come only from the fixed palettes
below, never from data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

OUTCOME_COLORS = {"success": "#1b7a3d", "error": "#b3261e", "incomplete": "#c98a00", "pending": "#9aa3b2"}
TIER_COLORS = {"baseline": "#7fa2e0", "elevated": "#1f5fd1", "high": "#6a35b8", "critical": "#b3261e",
               "unknown": "#9aa3b2"}
_SPARE = ("#2a9d8f", "#e76f51", "#264653", "#8ab17d", "#e9c46a", "#5e548e")
SHARE_COLOR = "#1f5fd1"
GRID = "#dfe3ea"
INK = "#5b6475"


def color_for(name: str, palette: Mapping[str, str]) -> str:
    if name in palette:
        return palette[name]
    return _SPARE[sum(name.encode()) % len(_SPARE)]


@dataclass(frozen=True, slots=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str
    title: str


@dataclass(frozen=True, slots=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True, slots=True)
class Text:
    x: float
    y: float
    text: str
    anchor: str = "start"  # SVG text-anchor


@dataclass(slots=True)
class Chart:
    title: str
    width: int
    height: int
    rects: list[Rect] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (colour, label)
    empty: bool = False


def _nice_max(value: int) -> int:
    if value <= 5:
        return max(value, 1)
    magnitude: int = 10 ** (len(str(value)) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return value


def stacked_by_day(
    title: str, days: Sequence[str], series: Mapping[str, Sequence[int]], palette: Mapping[str, str]
) -> Chart:
    """Flows per day, one stacked bar per day, one colour per series (outcome or tier)."""
    width, height, left, right, top, bottom = 720, 240, 44, 12, 14, 36
    chart = Chart(title, width, height)
    totals = [sum(values[i] for values in series.values()) for i in range(len(days))]
    peak = _nice_max(max(totals, default=0))
    chart.empty = not any(totals)
    plot_w, plot_h = width - left - right, height - top - bottom
    for k in range(5):
        value = peak * k / 4
        y = top + plot_h - plot_h * k / 4
        chart.lines.append(Line(left, y, width - right, y))
        chart.texts.append(Text(left - 6, y + 4, f"{value:g}", "end"))
    n = max(len(days), 1)
    slot = plot_w / n
    bar = max(slot * 0.72, 1.0)
    for i, d in enumerate(days):
        x = left + i * slot + (slot - bar) / 2
        y = top + plot_h
        for name, values in series.items():
            v = values[i]
            if not v:
                continue
            h = plot_h * v / peak
            y -= h
            chart.rects.append(Rect(x, y, bar, h, color_for(name, palette), f"{d}: {v} {name}"))
        if n <= 14 or i % max(1, n // 10) == 0 or i == n - 1:
            chart.texts.append(Text(x + bar / 2, height - bottom + 16, d[5:], "middle"))
    chart.legend = [(color_for(name, palette), name) for name in series]
    return chart


def share_bars(title: str, items: Sequence[tuple[str, float, str]], color: str = SHARE_COLOR) -> Chart:
    """Horizontal bars of shares in [0, 1]: (label, share, note shown at the bar's end)."""
    row, left, right, top = 26, 190, 120, 8
    width = 720
    height = top * 2 + row * max(len(items), 1)
    chart = Chart(title, width, height, empty=not items)
    plot_w = width - left - right
    for k in range(5):
        x = left + plot_w * k / 4
        chart.lines.append(Line(x, top, x, height - top))
    for i, (label, share, note) in enumerate(items):
        y = top + i * row
        share = min(max(share, 0.0), 1.0)
        chart.texts.append(Text(left - 8, y + row / 2 + 4, label, "end"))
        chart.rects.append(Rect(left, y + 5, max(plot_w * share, 0.5), row - 10, color, f"{label}: {note}"))
        chart.texts.append(Text(left + plot_w * share + 6, y + row / 2 + 4, note))
    return chart
