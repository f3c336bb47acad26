"""Inline SVG charts drawn in Python: they need no script, no network and no fonts to load.

Every text that came from a database (experiment, algorithm, label and feature names) is
escaped here, so a name such as ``<script>`` is shown, never run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

# The residual plot draws at most this many points (evenly picked), so pages stay small.
MAX_POINTS = 2000


def fmt(value: float | None, digits: int = 4) -> str:
    """A number as the pages show it: integers as they are, every float with the same
    number of decimals (a perfect score reads 1.0000), NULL as an en dash."""
    if value is None:
        return "\u2013"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _tick_text(value: float) -> str:
    return f"{value:.6g}"


@dataclass(frozen=True)
class _Frame:
    """Maps data coordinates into the plotting area of an SVG."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    x_low: float
    x_high: float
    y_low: float
    y_high: float

    def x(self, value: float) -> float:
        span = self.x_high - self.x_low or 1.0
        return self.left + (value - self.x_low) / span * (self.width - self.left - self.right)

    def y(self, value: float) -> float:
        span = self.y_high - self.y_low or 1.0
        inner = self.height - self.top - self.bottom
        return self.height - self.bottom - (value - self.y_low) / span * inner

    def axes(self, x_title: str, y_title: str, x_ticks: Sequence[float] | None = None) -> str:
        parts = []
        for tick in _ticks(self.y_low, self.y_high):
            y = self.y(tick)
            parts.append(
                f'<line class="grid" x1="{self.left}" x2="{self.width - self.right}" '
                f'y1="{y:.1f}" y2="{y:.1f}"/>'
                f'<text class="tick" x="{self.left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                f"{_tick_text(tick)}</text>"
            )
        for tick in x_ticks if x_ticks is not None else _ticks(self.x_low, self.x_high):
            x = self.x(tick)
            parts.append(
                f'<text class="tick" x="{x:.1f}" y="{self.height - self.bottom + 16}" '
                f'text-anchor="middle">{_tick_text(tick)}</text>'
            )
        bottom = self.height - self.bottom
        parts.append(
            f'<line class="axis" x1="{self.left}" x2="{self.width - self.right}" '
            f'y1="{bottom}" y2="{bottom}"/>'
            f'<line class="axis" x1="{self.left}" x2="{self.left}" y1="{self.top}" '
            f'y2="{bottom}"/>'
            f'<text class="axis-title" x="{(self.left + self.width - self.right) / 2:.1f}" '
            f'y="{self.height - 6}" text-anchor="middle">{escape(x_title)}</text>'
            f'<text class="axis-title" transform="translate(14 '
            f'{(self.top + bottom) / 2:.1f}) rotate(-90)" text-anchor="middle">'
            f"{escape(y_title)}</text>"
        )
        return "".join(parts)


def _padded(low: float, high: float) -> tuple[float, float]:
    if high == low:
        return low - 0.5, high + 0.5
    pad = (high - low) * 0.08
    return low - pad, high + pad


def _svg(width: int, height: int, label: str, css_class: str, body: str) -> str:
    return (
        f'<svg class="sqml-chart {css_class}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(label)}">{body}</svg>'
    )


@dataclass(frozen=True)
class RunPoint:
    run_id: int
    algorithm: str
    score: float | None
    deployed: bool
    status: str


def score_chart(experiment: str, metric: str, runs: Sequence[RunPoint]) -> str:
    """Score of every run in order of training: one circle per scored run (the deployed one
    ringed), a line through them and a cross at the bottom for each run without a score."""
    width, height = 640, 260
    scored = [run for run in runs if run.score is not None]
    if not runs:
        return '<p class="empty">No runs yet.</p>'
    scores = [float(run.score) for run in scored if run.score is not None]
    y_low, y_high = _padded(min(scores, default=0.0), max(scores, default=1.0))
    frame = _Frame(width, height, 56, 16, 14, 40, 0.5, len(runs) + 0.5, y_low, y_high)
    positions = {run.run_id: index + 1 for index, run in enumerate(runs)}
    parts = [
        frame.axes(
            "n-th run of the experiment (hover a point for its run id)",
            metric,
            _integer_ticks(len(runs)),
        )
    ]
    if len(scored) > 1:
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{frame.x(positions[run.run_id]):.1f} "
            f"{frame.y(float(run.score)):.1f}"
            for i, run in enumerate(scored)
            if run.score is not None
        )
        parts.append(f'<path class="score-line" d="{path}"/>')
    for run in runs:
        x = frame.x(positions[run.run_id])
        name = escape(run.algorithm)
        if run.score is None:
            low = height - frame.bottom - 8.0
            parts.append(
                f'<path class="failed-run" data-run-id="{run.run_id}" '
                f'd="M{x - 4:.1f} {low - 4:.1f} L{x + 4:.1f} {low + 4:.1f} '
                f'M{x - 4:.1f} {low + 4:.1f} L{x + 4:.1f} {low - 4:.1f}">'
                f"<title>run {run.run_id} \u00b7 {name} \u00b7 {escape(run.status)}</title></path>"
            )
            continue
        y = frame.y(float(run.score))
        deployed = " deployed" if run.deployed else ""
        note = " \u00b7 deployed" if run.deployed else ""
        parts.append(
            f'<circle class="run-point{deployed}" cx="{x:.1f}" cy="{y:.1f}" r="5" '
            f'data-run-id="{run.run_id}" data-score="{run.score!r}">'
            f"<title>run {run.run_id} \u00b7 {name} \u00b7 {escape(metric)} "
            f"{fmt(run.score)}{note}</title></circle>"
        )
    return _svg(width, height, f"{metric} per run of {experiment}", "score-chart", "".join(parts))


def _integer_ticks(count: int) -> list[float]:
    step = max(1, math.ceil(count / 12))
    return [float(i) for i in range(1, count + 1, step)]


def confusion_matrix(labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> str:
    """Rows: actual label; columns: predicted label; darker cells hold more rows."""
    cell = max(28, min(64, 360 // max(1, len(labels))))
    margin_left, margin_top = 110, 70
    size = cell * len(labels)
    width, height = margin_left + size + 20, margin_top + size + 20
    biggest = max((max(row) for row in matrix if row), default=0) or 1
    parts = [
        f'<text class="axis-title" x="{margin_left + size / 2:.1f}" y="16" '
        'text-anchor="middle">predicted</text>',
        f'<text class="axis-title" transform="translate(14 {margin_top + size / 2:.1f}) '
        'rotate(-90)" text-anchor="middle">actual</text>',
    ]
    for i, label in enumerate(labels):
        text = escape(_short(label))
        parts.append(
            f'<text class="tick" x="{margin_left + i * cell + cell / 2:.1f}" '
            f'y="{margin_top - 8}" text-anchor="middle">{text}</text>'
            f'<text class="tick" x="{margin_left - 8}" '
            f'y="{margin_top + i * cell + cell / 2 + 4:.1f}"'
            f' text-anchor="end">{text}</text>'
        )
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            share = count / biggest
            x, y = margin_left + j * cell, margin_top + i * cell
            kind = "hit" if i == j else "miss"
            ink = "light" if share > 0.55 else "dark"
            parts.append(
                f'<rect class="cm-cell {kind}" x="{x}" y="{y}" width="{cell}" height="{cell}" '
                f'fill-opacity="{0.08 + 0.92 * share:.3f}" data-count="{count}">'
                f"<title>actual {escape(labels[i])}, predicted {escape(labels[j])}: {count}"
                f"</title></rect>"
                f'<text class="cm-count {ink}" x="{x + cell / 2:.1f}" y="{y + cell / 2 + 4:.1f}" '
                f'text-anchor="middle">{count}</text>'
            )
    return _svg(width, height, "confusion matrix", "confusion-matrix", "".join(parts))


def _short(text: str, limit: int = 14) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def residual_plot(actual: Sequence[float], predicted: Sequence[float]) -> str:
    """Residual (actual − predicted) against the prediction, with the zero line."""
    width, height = 640, 300
    pairs = list(zip(predicted, actual, strict=True))
    if not pairs:
        return '<p class="empty">No rows to plot.</p>'
    if len(pairs) > MAX_POINTS:
        step = len(pairs) / MAX_POINTS
        pairs = [pairs[int(i * step)] for i in range(MAX_POINTS)]
    residuals = [a - p for p, a in pairs]
    x_low, x_high = _padded(min(p for p, _ in pairs), max(p for p, _ in pairs))
    y_low, y_high = _padded(min([*residuals, 0.0]), max([*residuals, 0.0]))
    frame = _Frame(width, height, 64, 16, 14, 40, x_low, x_high, y_low, y_high)
    zero = frame.y(0.0)
    parts = [
        frame.axes("predicted", "residual (actual \u2212 predicted)"),
        f'<line class="zero" x1="{frame.left}" x2="{width - frame.right}" y1="{zero:.1f}" '
        f'y2="{zero:.1f}"/>',
    ]
    for (p, a), residual in zip(pairs, residuals, strict=True):
        parts.append(
            f'<circle class="residual" cx="{frame.x(p):.1f}" cy="{frame.y(residual):.1f}" r="2.5">'
            f"<title>predicted {fmt(p)}, actual {fmt(a)}</title></circle>"
        )
    return _svg(width, height, "residual plot", "residual-plot", "".join(parts))


def bar_chart(items: Sequence[tuple[str, float]], limit: int = 20) -> str:
    """Horizontal bars, largest magnitude first (feature importances)."""
    items = list(items)[:limit]
    if not items:
        return '<p class="empty">Nothing to show.</p>'
    bar, gap, left, right = 18, 6, 170, 70
    width = 640
    height = 10 + len(items) * (bar + gap)
    biggest = max(abs(value) for _, value in items) or 1.0
    parts = []
    for i, (name, value) in enumerate(items):
        y = 5 + i * (bar + gap)
        length = abs(value) / biggest * (width - left - right)
        sign = "negative" if value < 0 else "positive"
        parts.append(
            f'<text class="tick" x="{left - 8}" y="{y + bar / 2 + 4:.1f}" text-anchor="end">'
            f"{escape(_short(name, 24))}</text>"
            f'<rect class="bar {sign}" x="{left}" y="{y}" width="{max(length, 1.0):.1f}" '
            f'height="{bar}"><title>{escape(name)}: {fmt(value)}</title></rect>'
            f'<text class="tick" x="{left + length + 6:.1f}" y="{y + bar / 2 + 4:.1f}">'
            f"{fmt(value)}</text>"
        )
    return _svg(width, height, "feature importances", "bar-chart", "".join(parts))


@dataclass(frozen=True)
class CurveLine:
    """One line of a curve chart: a class's points and its area, for the legend."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    area: float


_CURVE_COLOURS = ("#2f6fde", "#d64545", "#1f9d55", "#b7791f", "#805ad5", "#2c7a7b", "#c05621")


def curve_chart(
    title: str, x_title: str, y_title: str, lines: Sequence[CurveLine], diagonal: bool
) -> str:
    """Curves in the unit square (ROC: with the chance diagonal; precision-recall), one
    coloured line per class with its area in the legend."""
    if not lines:
        return '<p class="empty">No curve to draw.</p>'
    width, height = 420, 360
    frame = _Frame(width, height, 56, 16, 14, 40, 0.0, 1.0, 0.0, 1.0)
    parts = [frame.axes(x_title, y_title)]
    if diagonal:
        parts.append(
            f'<line class="chance" x1="{frame.x(0):.1f}" y1="{frame.y(0):.1f}" '
            f'x2="{frame.x(1):.1f}" y2="{frame.y(1):.1f}"/>'
        )
    legend = []
    for index, line in enumerate(lines[: len(_CURVE_COLOURS)]):
        colour = _CURVE_COLOURS[index]
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{frame.x(x):.1f} {frame.y(y):.1f}"
            for i, (x, y) in enumerate(zip(line.xs, line.ys, strict=True))
        )
        name = escape(line.label)
        parts.append(
            f'<path class="curve" stroke="{colour}" d="{path}" data-class="{name}" '
            f'data-area="{line.area!r}"><title>{name}: area {fmt(line.area)}</title></path>'
        )
        y = 24 + index * 16
        legend.append(
            f'<rect x="{width - 150}" y="{y - 9}" width="10" height="10" fill="{colour}"/>'
            f'<text class="tick" x="{width - 136}" y="{y}">{escape(_short(line.label))}: '
            f"{fmt(line.area, 3)}</text>"
        )
    return _svg(width, height, title, "curve-chart", "".join(parts + legend))


STYLE = """
:root { --ink: #1f2933; --muted: #616e7c; --line: #d9e2ec; --accent: #2f6fde;
        --good: #1f9d55; --bad: #d64545; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink);
       margin: 0 auto; max-width: 1100px; padding: 1.2em 1.5em 3em; }
h1 { font-size: 1.6em; margin: .3em 0 .2em; } h2 { margin-top: 1.6em; }
h3 { margin-bottom: .3em; }
a { color: var(--accent); }
.muted, .source, .empty { color: var(--muted); }
.source { font-size: .9em; margin-top: .2em; }
.run-error { min-width: 22em; font-size: .9em; }
table.sqml { border-collapse: collapse; margin: .6em 0 1em; font-size: .92em; }
table.sqml th, table.sqml td { border-bottom: 1px solid var(--line); padding: .3em .7em;
  text-align: left; vertical-align: top; }
table.sqml td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.sqml td.when { white-space: nowrap; }
table.sqml tr.deployed td { background: #eef6ff; }
.badge { display: inline-block; padding: 0 .5em; border-radius: .7em; font-size: .85em;
  background: #e3f8ec; color: var(--good); }
.badge.failed { background: #fde8e8; color: var(--bad); }
.experiment { border-top: 2px solid var(--line); margin-top: 1.5em; }
svg.sqml-chart { max-width: 100%; height: auto; background: #fff; }
svg .grid { stroke: #eef2f6; } svg .axis { stroke: #9aa5b1; }
svg .tick { font-size: 11px; fill: var(--muted); }
svg .axis-title { font-size: 12px; fill: var(--ink); }
svg .score-line { fill: none; stroke: var(--accent); stroke-width: 1.5; stroke-opacity: .5; }
svg .run-point { fill: var(--accent); }
svg .run-point.deployed { fill: var(--good); stroke: var(--ink); stroke-width: 2; }
svg .failed-run { stroke: var(--bad); stroke-width: 2; }
svg .residual { fill: var(--accent); fill-opacity: .55; } svg .zero { stroke: var(--bad); }
svg .cm-cell.hit { fill: var(--good); } svg .cm-cell.miss { fill: var(--bad); }
svg .cm-cell { stroke: #fff; } svg .cm-count { font-size: 12px; }
svg .cm-count.light { fill: #fff; } svg .cm-count.dark { fill: var(--ink); }
svg .bar.positive { fill: var(--accent); } svg .bar.negative { fill: var(--bad); }
svg .curve { fill: none; stroke-width: 2; } svg .chance { stroke: #9aa5b1; stroke-dasharray: 4 4; }
.curves { display: flex; flex-wrap: wrap; gap: 1em; }
table.sqml td.params, table.sqml td.decision { font-size: .85em; max-width: 26em; }
table.sqml.compare td.better { font-weight: bold; color: var(--good); }
table.sqml.summary td.num { min-width: 5em; }
"""
