"""The profit curve as SVG geometry (the template draws it): contacts -> expected net value.

The curve of ``/profit_curve`` runs from no contact to every customer of the segments; the chart shows
it up to a little past the larger of the chosen plan and the best one, where the decisions are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from churnclv.serving.page.words import money
from churnclv.serving.schemas import ProfitCurveResponse

WIDTH, HEIGHT = 720, 280
LEFT, RIGHT, TOP, BOTTOM = 78, 16, 14, 38


@dataclass(frozen=True)
class Mark:
    x: float
    y: float
    contacts: int
    value: float


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    line: str  # SVG polyline points
    chosen: Mark
    best: Mark
    zero_y: float
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    plot: tuple[float, float, float, float]  # left, top, right, bottom


def ticks(low: float, high: float, n: int = 5) -> list[float]:
    """About ``n`` round values (1, 2 or 5 × a power of ten apart) covering [low, high]."""
    span = high - low if high > low else max(abs(high), 1.0)
    raw = span / max(1, n - 1)
    step = min((m * 10 ** math.floor(math.log10(raw)) for m in (1, 2, 5, 10)), key=lambda s: abs(s - raw))
    first = math.floor(low / step) * step
    return [first + i * step for i in range(int(math.ceil((high - first) / step)) + 1)]


def short(value: float) -> str:
    """A tick label: 1,200 -> 1.2k, 3,000,000 -> 3M."""
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:g}{suffix}".replace("-", "−")
    return f"{value:g}".replace("-", "−")


def profit_chart(curve: ProfitCurveResponse) -> Chart:
    """Scale the curve into the chart's box, marking the chosen plan and the best one."""
    shown_max = max(curve.best.contacts, curve.chosen.contacts)
    x_max = min(curve.customers, max(10, round(shown_max * 1.6))) or 1
    points = [p for p in curve.points if p.contacts <= x_max] or curve.points[:1]
    values = [p.expected_net_value for p in points] + [0.0, curve.chosen.expected_net_value]
    y_ticks = ticks(min(values), max(values))
    x_ticks = [t for t in ticks(0, x_max) if t <= x_max]
    y_low, y_high = y_ticks[0], y_ticks[-1] if y_ticks[-1] > y_ticks[0] else y_ticks[0] + 1
    left, top, right, bottom = LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM

    def x(c: float) -> float:
        return round(left + (right - left) * c / x_max, 1)

    def y(v: float) -> float:
        return round(bottom - (bottom - top) * (v - y_low) / (y_high - y_low), 1)

    def mark(p) -> Mark:
        return Mark(x(p.contacts), y(p.expected_net_value), p.contacts, p.expected_net_value)

    return Chart(WIDTH, HEIGHT, " ".join(f"{x(p.contacts)},{y(p.expected_net_value)}" for p in points),
                 mark(curve.chosen), mark(curve.best), y(0.0),
                 [(x(t), short(t)) for t in x_ticks], [(y(t), money(t, 0)) for t in y_ticks if t <= y_high],
                 (left, top, right, bottom))
