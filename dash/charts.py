"""Run charts as PNG (for chat apps) and SVG (for the web page and the printed report).

Why this shape: a nurse looks at the chart on a phone in a chat thread, so the PNG is about
1080 px wide with large text, few ticks and short date labels ("Mon 3"); a coach sees the same
chart inline on a page, so the SVG must be safe to inline (no script, no external fonts or
links, every caller string XML-escaped) and deterministic so tests and caches can compare it.
Every word on the chart comes from the caller (already localised); this module adds only
numbers and symbols.

Matplotlib is used through ``matplotlib.figure.Figure`` only: no pyplot, no figure manager,
no figure kept between calls; finished images are kept in `chart_cache`, keyed by every
input (drawing is deterministic, so an equal input is the same picture). The few settings the
SVG writer reads from global rcParams (the id salt and text-as-text) are fixed once, when the
first chart is drawn (matplotlib is imported only then: most processes that import this module,
`dash --help` or a webhook worker, never draw), and rendering holds a lock because matplotlib's
text layout shares font caches between threads.
"""

from __future__ import annotations

import io
import math
import re
import textwrap
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import TYPE_CHECKING, Literal

from dash.analytics import RunsAnalysis

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "ChartAnnotation",
    "RunChartData",
    "chart_cache",
    "empty_chart",
    "highlight_from",
    "run_chart",
]

Fmt = Literal["png", "svg"]
Size = Literal["phone", "page"]

_RENDER_LOCK = threading.Lock()
_DOCTYPE = re.compile(rb"<!DOCTYPE[^>]*>\s*")

#: English weekday abbreviations; callers pass their own for other languages.
DEFAULT_WEEKDAYS: tuple[str, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class _Style:
    """Geometry and type sizes for one output size."""

    width_in: float
    height_in: float
    dpi: int
    font: float
    title: float
    max_xticks: int
    marker: float
    line: float
    wrap: int


_STYLES: dict[str, _Style] = {
    # 7.2 in x 150 dpi = 1080 px: full width of a phone screen at native resolution.
    "phone": _Style(7.2, 6.0, 150, 15, 18, 5, 8, 2.6, 34),
    "page": _Style(10.0, 4.6, 100, 11, 14, 10, 6, 2.0, 80),
}

_C_DATA = "#1f4e79"
_C_SIGNAL = "#e8730c"
_C_CENTRE = "#555555"
_C_CENTRE_SIGNAL = "#c0392b"
_C_GOAL = "#1a7f37"
_C_NOTE = "#6a3d9a"
_LABEL_CHARS = 10  # right-hand line labels ("Median", "Goal") wrap at this width
_FONT = "DejaVu Sans"  # ships with matplotlib, so PNGs look the same everywhere


@dataclass(frozen=True)
class ChartAnnotation:
    """A dated note on the chart, e.g. the day a PDSA cycle was tested."""

    day: date
    label: str


@dataclass(frozen=True)
class RunChartData:
    """Everything one run chart shows; all text is supplied (and localised) by the caller.

    ``values`` line up with ``dates``; None is a missing day (a gap in the line). With
    ``percent`` the values are proportions 0..1 drawn as 0..100 %. ``freeze`` is the number
    of leading points the centre was computed over: the centre is drawn solid over them and
    dashed beyond (a frozen, extended baseline). ``highlight`` holds positions of points in a
    signal (see :func:`highlight_from`); ``runs_signal`` marks the centre line as in
    qicharts2. Empty label strings are simply not drawn.
    """

    title: str
    y_label: str
    dates: Sequence[date]
    values: Sequence[float | None]
    percent: bool = False
    centre: float | None = None
    freeze: int | None = None
    goal: float | None = None
    highlight: Sequence[int] = ()
    runs_signal: bool = False
    annotations: Sequence[ChartAnnotation] = ()
    better: Literal["higher", "lower"] | None = None
    centre_label: str = ""
    goal_label: str = ""
    better_label: str = ""
    weekday_names: Sequence[str] = field(default=DEFAULT_WEEKDAYS)

    def __post_init__(self) -> None:
        if len(self.dates) != len(self.values):
            raise ValueError("dates and values differ in length")
        if len(self.weekday_names) != 7:
            raise ValueError("weekday_names needs seven names, Monday first")


def highlight_from(result: RunsAnalysis) -> tuple[int, ...]:
    """Positions of every point in an IHI shift or trend, for ``RunChartData.highlight``."""
    return tuple(sorted(set(result.shift_indices) | set(result.trend_indices)))


class ChartCache:
    """Drawn charts by everything that is drawn: an in-process LRU bounded in bytes.

    Why it cannot go stale or leak: a chart is a pure function of its inputs (the output is
    deterministic), and the key is all of them, every point, date, label, annotation, the
    centre, freeze, goal, format and size, not an id or a timestamp. A new value, a
    correction, a PDSA change, a frozen baseline or another language changes the input and so
    misses; two teams share an entry only if every word and point, the title with the team's
    name included, is the same, which is then the same picture. Matplotlib takes 30-50 ms per
    chart; a lookup takes microseconds.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[object, ...], bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...]) -> bytes | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: tuple[object, ...], image: bytes) -> None:
        if len(image) > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._entries[key] = image
            self._bytes += len(image)
            while self._bytes > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= len(dropped)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
            self.hits = self.misses = 0

    @property
    def size_bytes(self) -> int:
        return self._bytes


#: 16 MB: ~1,000 page SVGs (~12 KB) or ~200 phone PNGs (~80 KB), a busy cohort's worth.
chart_cache = ChartCache(16 * 1024 * 1024)


def _chart_key(series: RunChartData) -> tuple[object, ...]:
    """Every field of ``series`` as hashable plain values (tests check none is left out)."""
    return (
        series.title,
        series.y_label,
        tuple(series.dates),
        tuple(None if v is None else float(v) for v in series.values),
        bool(series.percent),
        None if series.centre is None else float(series.centre),
        series.freeze,
        None if series.goal is None else float(series.goal),
        tuple(int(i) for i in series.highlight),
        bool(series.runs_signal),
        tuple((a.day, a.label) for a in series.annotations),
        series.better,
        series.centre_label,
        series.goal_label,
        series.better_label,
        tuple(series.weekday_names),
    )


def run_chart(series: RunChartData, fmt: Fmt = "png", size: Size = "phone") -> bytes:
    """Draw ``series`` as PNG or SVG bytes, sized for a phone or for a page (cached)."""
    style = _style(size)
    _check_fmt(fmt)
    key = ("run", fmt, size, _chart_key(series))
    cached = chart_cache.get(key)
    if cached is not None:
        return cached
    with _RENDER_LOCK:
        fig = _new_figure(style)
        _draw_run_chart(fig, series, style)
        image = _save(fig, fmt, style)
    chart_cache.put(key, image)
    return image


def empty_chart(message: str, fmt: Fmt = "png", size: Size = "phone") -> bytes:
    """A placeholder image carrying the caller's (localised) message, e.g. "No data yet"."""
    style = _style(size)
    _check_fmt(fmt)
    key = ("empty", fmt, size, message)
    cached = chart_cache.get(key)
    if cached is not None:
        return cached
    image = _draw_empty(message, fmt, style)
    chart_cache.put(key, image)
    return image


def _draw_empty(message: str, fmt: str, style: _Style) -> bytes:
    with _RENDER_LOCK:
        fig = _new_figure(style)
        fig.text(
            0.5,
            0.5,
            textwrap.fill(message, style.wrap),
            ha="center",
            va="center",
            fontsize=style.title,
            fontfamily=_FONT,
            color=_C_CENTRE,
            wrap=True,
        )
        return _save(fig, fmt, style)


# --------------------------------------------------------------------------- internals


def _style(size: str) -> _Style:
    """The style for a size name; unknown names are a programming error."""
    try:
        return _STYLES[size]
    except KeyError:
        raise ValueError(f"size must be 'phone' or 'page', not {size!r}") from None


def _check_fmt(fmt: str) -> None:
    """Only PNG and SVG are produced."""
    if fmt not in ("png", "svg"):
        raise ValueError(f"fmt must be 'png' or 'svg', not {fmt!r}")


@cache
def _load_matplotlib() -> None:
    """Import matplotlib and fix its process-wide settings, once, before the first drawing."""
    import matplotlib
    import matplotlib.backends.backend_agg
    import matplotlib.figure
    import matplotlib.lines
    import matplotlib.ticker
    import matplotlib.transforms  # noqa: F401

    # SVG ids from a constant salt (deterministic output) and text kept as <text> elements
    # (searchable, escaped, no embedded glyph outlines). Nothing else is global.
    matplotlib.rcParams["svg.hashsalt"] = "improvement-dash"
    matplotlib.rcParams["svg.fonttype"] = "none"


def _new_figure(style: _Style) -> Figure:
    """A detached figure with its own Agg canvas (no pyplot, no global figure list)."""
    _load_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(
        figsize=(style.width_in, style.height_in),
        dpi=style.dpi,
        facecolor="white",
    )
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, fmt: str, style: _Style) -> bytes:
    """Serialise without timestamps or version strings, so equal input gives equal bytes."""
    buf = io.BytesIO()
    if fmt == "png":
        fig.savefig(buf, format="png", dpi=style.dpi, metadata={"Software": None})
    else:
        fig.savefig(
            buf,
            format="svg",
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )
        # The DOCTYPE only names an external DTD; drop it so the file refers to nothing outside.
        return _DOCTYPE.sub(b"", buf.getvalue(), count=1)
    return buf.getvalue()


def _fmt_value(value: float, percent: bool) -> str:
    """A line label: whole percent, or a count with at most one decimal."""
    if percent:
        return f"{value:.0f}%"
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"


def _draw_run_chart(fig: Figure, s: RunChartData, style: _Style) -> None:
    """Lay out the title, the data line, centre and goal lines, signals and notes."""
    from matplotlib.transforms import blended_transform_factory

    scale = 100.0 if s.percent else 1.0
    xs = [d.toordinal() for d in s.dates]
    ys = [v * scale if v is not None and math.isfinite(v) else math.nan for v in s.values]
    ax = fig.add_subplot(1, 1, 1)
    ax.set_gid("run-chart")
    for spine in ("top", "right"):
        ax.spines[spine].set_visible(False)
    ax.tick_params(labelsize=style.font, length=4)
    title = textwrap.fill(s.title, style.wrap) if s.title else ""
    y_label = textwrap.fill(s.y_label, style.wrap - 6) if s.y_label else ""
    if title:
        fig.suptitle(
            title,
            fontsize=style.title,
            fontfamily=_FONT,
            fontweight="bold",
            x=0.02,
            ha="left",
        )
    if y_label:
        ax.set_ylabel(y_label, fontsize=style.font, fontfamily=_FONT)

    # Data: a line broken at missing days, points on every reported day.
    (data_line,) = ax.plot(
        xs,
        ys,
        color=_C_DATA,
        linewidth=style.line,
        marker="o",
        markersize=style.marker,
        zorder=3,
    )
    data_line.set_gid("data")

    hi = [i for i in s.highlight if 0 <= i < len(ys) and not math.isnan(ys[i])]
    if hi:
        (sig,) = ax.plot(
            [xs[i] for i in hi],
            [ys[i] for i in hi],
            linestyle="none",
            marker="o",
            markersize=style.marker * 1.6,
            markerfacecolor=_C_SIGNAL,
            markeredgecolor=_C_SIGNAL,
            zorder=4,
        )
        sig.set_gid("signal-points")

    label_x = blended_transform_factory(ax.transAxes, ax.transData)
    if xs and s.centre is not None and math.isfinite(s.centre):
        _draw_centre(ax, s, xs, scale, style, label_x)
    if s.goal is not None and math.isfinite(s.goal):
        g = s.goal * scale
        goal_line = ax.axhline(g, color=_C_GOAL, linewidth=style.line * 0.8, linestyle=(0, (6, 3)))
        goal_line.set_gid("goal")
        _line_label(ax, label_x, g, s.goal_label, _fmt_value(g, s.percent), _C_GOAL, style)

    _x_axis(ax, s, xs, style)
    _y_axis(ax, s, ys, style)
    _annotations(ax, s, style)
    right_chars = max(
        [len(line) for t in (s.centre_label, s.goal_label) for line in _wrap2(t).split("\n")]
        + [5 if not s.percent else 4]
    )
    _layout(fig, style, title, y_label, s.better is not None, right_chars, ax)
    if s.better in ("higher", "lower"):
        arrow = "\u2191" if s.better == "higher" else "\u2193"
        text = f"{arrow} {s.better_label}".strip()
        better = ax.text(
            0.0,
            1.02,
            text,
            transform=ax.transAxes,
            fontsize=style.font,
            fontfamily=_FONT,
            color=_C_GOAL,
            ha="left",
            va="bottom",
        )
        better.set_gid("better")


def _draw_centre(ax, s: RunChartData, xs: list[int], scale: float, style: _Style, label_x) -> None:
    """Median line: solid over a frozen baseline and dashed beyond it, red on a runs signal."""
    from matplotlib.lines import Line2D

    c = s.centre * scale
    colour = _C_CENTRE_SIGNAL if s.runs_signal else _C_CENTRE
    lw = style.line * 0.8
    n = len(xs)
    k = s.freeze if s.freeze is not None and 0 < s.freeze < n else None
    pad = 0.5
    if k is None:
        line = Line2D([xs[0] - pad, xs[-1] + pad], [c, c], color=colour, linewidth=lw)
        line.set_linestyle((0, (8, 4)) if s.runs_signal else "-")
        line.set_gid("centre")
        ax.add_line(line)
    else:
        base = Line2D([xs[0] - pad, xs[k - 1] + pad], [c, c], color=colour, linewidth=lw * 1.3)
        base.set_gid("centre-baseline")
        ext = Line2D(
            [xs[k - 1] + pad, xs[-1] + pad],
            [c, c],
            color=colour,
            linewidth=lw,
            linestyle=(0, (2, 3)),
        )
        ext.set_gid("centre-extended")
        ax.add_line(base)
        ax.add_line(ext)
    _line_label(ax, label_x, c, s.centre_label, _fmt_value(c, s.percent), colour, style)


def _line_label(ax, transform, y: float, label: str, value: str, colour: str, style: _Style):
    """The value (and the caller's short label) at the right end of a horizontal line."""
    text = f"{_wrap2(label)}\n{value}" if label else value
    ax.text(
        1.01,
        y,
        text,
        transform=transform,
        fontsize=style.font * 0.85,
        fontfamily=_FONT,
        color=colour,
        ha="left",
        va="center",
        clip_on=False,
    )


def _layout(
    fig: Figure, style: _Style, title: str, y_label: str, better: bool, right_chars: int, ax
) -> None:
    """Fixed margins from the text actually drawn, so nothing is cut at the image edge.

    (Constrained layout was tried: it let right-hand line labels run off the edge.)
    """
    pt = 1 / 72  # inches per point
    em = style.font * pt
    top = 0.12 + (title.count("\n") + 1) * style.title * 1.3 * pt if title else 0.15
    top += em * 1.6 if better else em * 0.6
    tick_chars = max((len(t.get_text()) for t in ax.get_yticklabels()), default=4)
    left = 0.15 + tick_chars * 0.62 * em + 0.1
    if y_label:
        left += (y_label.count("\n") + 1) * em * 1.3
    right = 0.2 + right_chars * 0.62 * em * 0.85
    bottom = 0.2 + em * 1.8
    w, h = style.width_in, style.height_in
    fig.subplots_adjust(left=left / w, right=1 - right / w, top=1 - top / h, bottom=bottom / h)


def _wrap2(label: str) -> str:
    """A right-hand line label on at most two short lines ("Baseline / median")."""
    lines = textwrap.wrap(label, _LABEL_CHARS) or [""]
    if len(lines) > 2:
        lines = [lines[0], _short(" ".join(lines[1:]), _LABEL_CHARS)]
    return "\n".join(_short(line, _LABEL_CHARS) for line in lines)


def _short(text: str, width: int) -> str:
    """One line of at most ``width`` characters, cut with an ellipsis (phones are narrow)."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "\u2026"


def _x_axis(ax, s: RunChartData, xs: list[int], style: _Style) -> None:
    """A handful of date ticks labelled "Mon 3", evenly spread over the series."""
    if not xs:
        ax.set_xticks([])
        return
    n = len(xs)
    step = max(1, math.ceil(n / style.max_xticks))
    picks = list(range(n - 1, -1, -step))[::-1]  # always label the latest day
    ticks = [xs[i] for i in picks]
    labels = [f"{s.weekday_names[s.dates[i].weekday()]} {s.dates[i].day}" for i in picks]
    ax.set_xticks(ticks, labels, fontfamily=_FONT)
    ax.set_xlim(xs[0] - 0.7, xs[-1] + 0.7 if n > 1 else xs[0] + 0.7)


def _y_axis(ax, s: RunChartData, ys: list[float], style: _Style) -> None:
    """Percentages on a fixed 0-100 scale (no exaggerated wiggles); counts from zero."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    if s.percent:
        ax.set_ylim(-3, 103)
        ax.set_yticks([0, 25, 50, 75, 100])
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:.0f}%"))
    else:
        finite = [y for y in ys if not math.isnan(y)]
        extra = [v for v in (s.centre, s.goal) if v is not None and math.isfinite(v)]
        top = max(finite + extra, default=1.0)
        bottom = min(finite + extra, default=0.0)
        lo = 0.0 if bottom >= 0 else bottom * 1.1
        ax.set_ylim(lo, top * 1.15 if top > 0 else 1.0)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    for label in ax.get_yticklabels():
        label.set_fontfamily(_FONT)
    ax.grid(axis="y", color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)


def _annotations(ax, s: RunChartData, style: _Style) -> None:
    """Dotted verticals at annotated dates, labels staggered near the top to avoid overlap."""
    from matplotlib.transforms import blended_transform_factory

    if not s.dates:
        return
    first, last = s.dates[0].toordinal(), s.dates[-1].toordinal()
    span = max(last - first, 1)
    top = blended_transform_factory(ax.transData, ax.transAxes)
    notes = sorted(
        (a for a in s.annotations if first <= a.day.toordinal() <= last),
        key=lambda a: a.day,
    )
    width = 22 if style is _STYLES["phone"] else 30
    for n, note in enumerate(notes):
        x = note.day.toordinal()
        vline = ax.axvline(x, color=_C_NOTE, linewidth=1.2, linestyle=(0, (1, 2)), zorder=1)
        vline.set_gid(f"annotation-line-{n}")
        label = _short(note.label, width)
        right_half = (x - first) / span > 0.6
        text = ax.text(
            x,
            0.97 - 0.09 * (n % 3),
            label,
            transform=top,
            fontsize=style.font * 0.8,
            fontfamily=_FONT,
            color=_C_NOTE,
            ha="right" if right_half else "left",
            va="top",
            bbox={
                "boxstyle": "round,pad=0.2",
                "facecolor": "white",
                "edgecolor": "none",
                "alpha": 0.85,
            },
            zorder=5,
        )
        text.set_gid(f"annotation-{n}")
