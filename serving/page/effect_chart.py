"""A campaign's effect per segment as SVG geometry: the retention difference (treated − control) as a
dot with its interval as a bar, one row per segment, around a zero line (the template draws it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from churnclv.serving.page.words import label

WIDTH, ROW, LEFT, RIGHT, TOP = 720, 30, 170, 24, 26


@dataclass(frozen=True)
class Row:
    label: str
    y: float
    x: float | None  # the point estimate (None: a group is empty)
    low: float | None
    high: float | None
    text: str
    harmful: bool  # the whole interval lies below 0


@dataclass(frozen=True)
class EffectChart:
    width: int
    height: int
    zero_x: float
    rows: list[Row]
    ticks: list[tuple[float, str]]
    plot: tuple[float, float, float, float]


def effect_chart(segments: list[dict], *, name: Callable[[str], str] = label) -> EffectChart:
    """Rows of ``GET /campaigns/{name}``'s effect (``retention_diff`` and its interval, in shares), each segment
    called ``name(key)`` (the page's words for it)."""
    values = [v for s in segments for v in (s["retention_diff_low"], s["retention_diff_high"]) if v is not None]
    bound = max([abs(v) for v in values] + [0.05])
    bound = round(bound + 0.02, 2)
    height = TOP + ROW * len(segments) + 26
    left, right, bottom = LEFT, WIDTH - RIGHT, height - 26

    def x(v: float | None) -> float | None:
        return None if v is None else round(left + (right - left) * (v + bound) / (2 * bound), 1)

    rows = []
    for i, s in enumerate(segments):
        diff = s["retention_diff"]
        text = "no control" if diff is None else f"{diff * 100:+.1f} pts"
        high = s["retention_diff_high"]
        rows.append(Row(name(s["segment"]), TOP + ROW * i + ROW / 2, x(diff), x(s["retention_diff_low"]),
                        x(high), text, high is not None and high < 0))
    ticks = [(x(t * bound / 2), f"{t * bound / 2 * 100:+.0f}".replace("+0", "0")) for t in (-2, -1, 0, 1, 2)]
    return EffectChart(WIDTH, height, x(0.0), rows, ticks, (left, TOP, right, bottom))
