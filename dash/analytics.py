"""Run-chart and control-chart arithmetic for the teams' daily measures.

Why this module exists: a team in a two-week Dash needs to know, from a dozen or so daily
points, whether a change it tested moved its measure (non-random variation) or whether it is
looking at noise. Everything here is pure arithmetic on plain sequences, so the bot, the web
dashboard, the report and the charts all judge a series the same way.

Sources (cite these when changing a rule):

* Anhøj J, Olesen AV. Run charts revisited. PLoS ONE 2014;9(11):e113825, as implemented by
  the R package qicharts2 (``runs.analysis`` in ``R/helper.functions.R``): longest run limit
  ``round(log2(n)) + 3``, crossings limit ``qbinom(0.05, n - 1, 0.5)``, where n is the number
  of useful points (not on the centre line).
* Perla RJ, Provost LP, Murray SK. The run chart. BMJ Qual Saf 2011;20:46-51: the IHI shift
  (6+ points on one side of the median) and trend (5+ points all going up or down; like
  values count once) rules.
* Montgomery DC, Introduction to Statistical Quality Control, and the NIST/SEMATECH
  e-Handbook section 6.3: p, u, c and individuals (XmR) control limits.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

__all__ = [
    "MIN_USEFUL_POINTS",
    "SHIFT_MIN_POINTS",
    "TREND_MIN_POINTS",
    "ControlLimits",
    "RunsAnalysis",
    "Segment",
    "SignalSummary",
    "control_limits",
    "crossings_limit",
    "describe_signal",
    "longest_run_limit",
    "runs_analysis",
]

#: IHI shift rule: this many consecutive useful points on one side of the centre (Perla 2011).
SHIFT_MIN_POINTS = 6
#: IHI trend rule: this many consecutive points all going up or all going down (Perla 2011).
TREND_MIN_POINTS = 5
#: Below this many useful points a "no signal" verdict means little: the Anhøj rules are
#: tabulated from n = 10 (Anhøj & Olesen 2014; qicharts2 vignette, Appendix 2).
MIN_USEFUL_POINTS = 10

#: I chart constant 3/d2 with d2 = 1.128 for moving ranges of two, as tabulated (E2 = 2.66).
_E2 = 2.66
#: Upper limit of the moving-range chart, D4 for n = 2.
_D4 = 3.267

Number = float | int
Direction = Literal["up", "down"]


# --------------------------------------------------------------------------- runs analysis


@dataclass(frozen=True, slots=True)
class Segment:
    """One stretch of points that fires an IHI rule, located so a chart can highlight it.

    ``start``/``end`` are inclusive positions in the caller's input sequence; ``indices`` are
    the positions of the points that belong to the signal (for a shift only the useful
    points: a point on the centre line is not part of the run; for a trend every point,
    including repeated equal values that counted once). ``length`` is the number the rule
    counted: useful points for a shift, distinct steps' points for a trend.
    """

    kind: Literal["shift", "trend"]
    direction: Direction
    start: int
    end: int
    length: int
    indices: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class RunsAnalysis:
    """Result of :func:`runs_analysis`; field names follow qicharts2 where it has one.

    ``longest_run``, ``longest_run_max``, ``n_crossings`` and ``n_crossings_min`` are None
    when there is no useful point, as qicharts2 returns NA. ``n_obs`` counts the non-missing
    points (qicharts2's ``n.obs`` also counts missing ones; ours is what a team has reported).
    """

    centre: float | None
    n_obs: int
    n_useful: int
    longest_run: int | None
    longest_run_max: int | None
    n_crossings: int | None
    n_crossings_min: int | None
    runs_signal: bool
    shift: bool
    trend: bool
    shifts: tuple[Segment, ...] = ()
    trends: tuple[Segment, ...] = ()
    shift_indices: tuple[int, ...] = ()
    trend_indices: tuple[int, ...] = ()
    freeze: int | None = None


def longest_run_limit(n_useful: int) -> int:
    """Anhøj upper limit for the longest run: ``round(log2(n)) + 3`` (Schilling 2012).

    Python's round and R's round agree here: log2 of an integer is never exactly x.5.
    """
    if n_useful < 1:
        raise ValueError("n_useful must be at least 1")
    return round(math.log2(n_useful)) + 3


@lru_cache(maxsize=4096)
def crossings_limit(n_useful: int) -> int:
    """Anhøj lower limit for crossings: 5th percentile of Binomial(n - 1, 0.5) (Chen 2010).

    Same as qicharts2's ``qbinom(0.05, max(n - 1, 0), 0.5)``; cached because a dashboard asks
    for the same few n over and over.
    """
    if n_useful < 1:
        raise ValueError("n_useful must be at least 1")
    # The smallest k with P(X <= k) >= 0.05, summed in exact integers (no float at a
    # boundary; 5% of 2**m is never a whole number, so there is no tie), so no process that
    # draws a chart has to import a statistics library.
    m = n_useful - 1
    whole = 1 << m
    term = total = 1  # C(m, 0)
    k = 0
    while 20 * total < whole:
        term = term * (m - k) // (k + 1)
        k += 1
        total += term
    return k


def _as_floats(values: Sequence[Number | None] | np.ndarray) -> np.ndarray:
    """Values as a float array with NaN for None; non-finite values count as missing."""
    arr = np.array(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError("values must be a flat sequence")
    return arr


def _median_centre(arr: np.ndarray, freeze: int | None) -> float | None:
    """Median of the non-missing values, over the first ``freeze`` positions if given."""
    base = arr if freeze is None else arr[:freeze]
    base = base[np.isfinite(base)]
    if base.size == 0:
        return None
    k = base.size // 2
    part = np.partition(base, [k - 1, k] if base.size % 2 == 0 else [k])
    if base.size % 2:
        return float(part[k])
    lo, hi = float(part[k - 1]), float(part[k])
    mid = (lo + hi) / 2  # as R's median; halve first only where the sum overflows
    return mid if math.isfinite(mid) else lo / 2 + hi / 2


def runs_analysis(
    values: Sequence[Number | None] | np.ndarray,
    centre: float | None = None,
    *,
    freeze: int | None = None,
) -> RunsAnalysis:
    """Anhøj runs analysis plus the IHI shift and trend rules for one series.

    ``values`` holds one value per period; None (or NaN/inf) is a missing or excluded day and
    is skipped: it neither breaks nor extends a run or a trend. With ``centre`` None the
    centre is the median of the non-missing values, or of the first ``freeze`` positions
    (missing ones included in the count, as qicharts2's ``freeze``) when a baseline is frozen.
    Points exactly on the centre are not useful: they neither make nor break a run.
    """
    if centre is not None and freeze is not None:
        raise ValueError("give either centre or freeze, not both")
    if freeze is not None and freeze < 1:
        raise ValueError("freeze must be a positive number of points")
    if centre is not None and not math.isfinite(centre):
        raise ValueError("centre must be a finite number")

    arr = _as_floats(values)
    finite = np.isfinite(arr)
    idx = np.flatnonzero(finite)
    xs = arr[finite]
    n_obs = int(xs.size)
    cl = float(centre) if centre is not None else _median_centre(arr, freeze)

    if cl is None or n_obs == 0:
        return RunsAnalysis(
            centre=cl,
            n_obs=n_obs,
            n_useful=0,
            longest_run=None,
            longest_run_max=None,
            n_crossings=None,
            n_crossings_min=None,
            runs_signal=False,
            shift=False,
            trend=False,
            freeze=freeze,
        )

    # --- Anhøj: runs of useful points on each side of the centre.
    side = (xs > cl).astype(np.int8) - (xs < cl).astype(np.int8)
    useful = side != 0
    s = side[useful]
    s_idx = idx[useful]
    n_useful = int(s.size)
    shifts: list[Segment] = []
    if n_useful:
        change = np.flatnonzero(s[1:] != s[:-1])
        starts = np.concatenate(([0], change + 1))
        ends = np.concatenate((change, [n_useful - 1]))
        lengths = ends - starts + 1
        longest_run: int | None = int(lengths.max())
        n_crossings: int | None = int(change.size)
        longest_run_max: int | None = longest_run_limit(n_useful)
        n_crossings_min: int | None = crossings_limit(n_useful)
        runs_signal = longest_run > longest_run_max or n_crossings < n_crossings_min
        long_runs = np.flatnonzero(lengths >= SHIFT_MIN_POINTS)
        if long_runs.size:
            # Plain lists from here: per-segment numpy indexing dominates on long series.
            pos, sides = s_idx.tolist(), s.tolist()
            for a, b in zip(starts[long_runs].tolist(), ends[long_runs].tolist(), strict=True):
                members = tuple(pos[a : b + 1])
                shifts.append(
                    Segment(
                        "shift",
                        "up" if sides[a] > 0 else "down",
                        members[0],
                        members[-1],
                        len(members),
                        members,
                    )
                )
    else:
        longest_run = longest_run_max = n_crossings = n_crossings_min = None
        runs_signal = False

    trends = _trends(xs, idx)
    return RunsAnalysis(
        centre=cl,
        n_obs=n_obs,
        n_useful=n_useful,
        longest_run=longest_run,
        longest_run_max=longest_run_max,
        n_crossings=n_crossings,
        n_crossings_min=n_crossings_min,
        runs_signal=bool(runs_signal),
        shift=bool(shifts),
        trend=bool(trends),
        shifts=tuple(shifts),
        trends=tuple(trends),
        shift_indices=_union(shifts),
        trend_indices=_union(trends),
        freeze=freeze,
    )


def _trends(xs: np.ndarray, idx: np.ndarray) -> list[Segment]:
    """IHI trends over the non-missing values; equal neighbours collapse to one point."""
    n = xs.size
    if n < TREND_MIN_POINTS:
        return []
    # First position of each plateau of equal neighbouring values.
    first = np.flatnonzero(np.concatenate(([True], xs[1:] != xs[:-1])))
    if first.size < TREND_MIN_POINTS:
        return []
    cx = xs[first]
    step = np.where(cx[1:] > cx[:-1], 1, -1)  # never equal after collapsing
    change = np.flatnonzero(step[1:] != step[:-1])
    starts = np.concatenate(([0], change + 1))
    ends = np.concatenate((change, [step.size - 1]))
    out: list[Segment] = []
    # A run of m equal steps covers m + 1 distinct values.
    long_runs = np.flatnonzero(ends - starts + 2 >= TREND_MIN_POINTS)
    if not long_runs.size:
        return out
    pos, firsts, steps = idx.tolist(), first.tolist(), step.tolist()
    for a, e in zip(starts[long_runs].tolist(), ends[long_runs].tolist(), strict=True):
        b = e + 1  # plateau numbers of the first and the last point are a and b
        lo = firsts[a]
        hi = firsts[b + 1] - 1 if b + 1 < len(firsts) else n - 1
        members = tuple(pos[lo : hi + 1])
        out.append(
            Segment(
                "trend",
                "up" if steps[a] > 0 else "down",
                members[0],
                members[-1],
                b - a + 1,
                members,
            )
        )
    return out


def _union(segments: Sequence[Segment]) -> tuple[int, ...]:
    """Sorted positions covered by any of the segments (a chart highlights each once)."""
    # Segments come in order of position and can only share their edge points (a trend's
    # turning point), so a merge that skips what is already taken is enough.
    out: list[int] = []
    for seg in segments:
        out.extend(seg.indices[bisect_right(seg.indices, out[-1]) :] if out else seg.indices)
    return tuple(out)


# --------------------------------------------------------------------------- team summary


@dataclass(frozen=True, slots=True)
class SignalSummary:
    """Structured facts for the team message; templates turn ``code`` into words.

    ``code`` is one of ``"too_few_points"``, ``"none"``, ``"non_random"`` (Anhøj signal
    without an IHI shift or trend) or ``"{shift|trend}_{up|down}_{better|worse}"``.
    ``points_needed`` is how many more useful points reach :data:`MIN_USEFUL_POINTS`.
    """

    code: str
    kind: Literal["shift", "trend", "runs"] | None
    direction: Direction | None
    length: int | None
    better: bool | None
    start: int | None
    end: int | None
    n_useful: int
    points_needed: int
    runs_signal: bool


def describe_signal(
    result: RunsAnalysis, better: Literal["higher", "lower"] = "higher"
) -> SignalSummary:
    """Pick the one signal worth telling the team about, and whether it is good news.

    The most recent shift or trend wins (it says most about the current process; a shift
    before a trend when they end together, since shifts are the more reliable rule, Anhøj &
    Olesen 2014). With no shift or trend, an Anhøj runs signal is reported as
    ``non_random``; otherwise ``none``, or ``too_few_points`` below ten useful points, where
    absence of a signal is not yet evidence of anything.
    """
    if better not in ("higher", "lower"):
        raise ValueError('better must be "higher" or "lower"')
    needed = max(0, MIN_USEFUL_POINTS - result.n_useful)
    segments = [*result.shifts, *result.trends]
    if segments:
        seg = max(segments, key=lambda s: (s.end, s.kind == "shift"))
        good = (seg.direction == "up") == (better == "higher")
        return SignalSummary(
            code=f"{seg.kind}_{seg.direction}_{'better' if good else 'worse'}",
            kind=seg.kind,
            direction=seg.direction,
            length=seg.length,
            better=good,
            start=seg.start,
            end=seg.end,
            n_useful=result.n_useful,
            points_needed=needed,
            runs_signal=result.runs_signal,
        )
    if result.runs_signal:
        code, kind = "non_random", "runs"
    elif needed:
        code, kind = "too_few_points", None
    else:
        code, kind = "none", None
    return SignalSummary(
        code=code,
        kind=kind,
        direction=None,
        length=None,
        better=None,
        start=None,
        end=None,
        n_useful=result.n_useful,
        points_needed=needed,
        runs_signal=result.runs_signal,
    )


# --------------------------------------------------------------------------- control limits


@dataclass(frozen=True, slots=True)
class ControlLimits:
    """Centre line and per-point 3-sigma limits; None where a point has no data.

    ``values`` are the plotted statistics (proportion, rate, count or individual value),
    ``outside`` the positions beyond a limit, ``mr_bar``/``mr_ucl`` the moving-range figures
    of an I chart.
    """

    kind: Literal["p", "u", "c", "i"]
    cl: float | None
    ucl: list[float | None]
    lcl: list[float | None]
    values: list[float | None]
    outside: tuple[int, ...] = ()
    mr_bar: float | None = None
    mr_ucl: float | None = None
    freeze: int | None = None


def _listed(arr: np.ndarray) -> list[float | None]:
    """A float array as a list with None where it holds NaN (missing)."""
    return [None if x != x else x for x in arr.tolist()]


def control_limits(
    kind: Literal["p", "u", "c", "i"],
    numerators: Sequence[Number | None],
    denominators: Sequence[Number | None] | None = None,
    *,
    freeze: int | None = None,
) -> ControlLimits:
    """Shewhart limits for p, u, c and I (XmR) charts (formulas in QI-REFERENCE.md).

    p: p̄ ± 3√(p̄(1-p̄)/nᵢ), clamped to [0, 1]; u: ū ± 3√(ū/nᵢ), lcl ≥ 0; c: c̄ ± 3√c̄,
    lcl ≥ 0 (denominators ignored); i: x̄ ± 2.66·MR̄ on numerator/denominator when
    denominators are given, else on the numerators, with moving ranges between consecutive
    non-missing values. A None entry or a zero denominator is a missing point: its value and
    limits are None and it does not count toward the centre. ``freeze`` computes the centre
    (and MR̄) from the first k positions only.
    """
    if kind not in ("p", "u", "c", "i"):
        raise ValueError(f"unknown chart kind {kind!r}; expected p, u, c or i")
    if freeze is not None and freeze < 1:
        raise ValueError("freeze must be a positive number of points")
    n = len(numerators)
    if kind in ("p", "u") and denominators is None:
        raise ValueError(f"a {kind} chart needs denominators")
    if denominators is not None and len(denominators) != n:
        raise ValueError("numerators and denominators differ in length")
    base_end = n if freeze is None else min(freeze, n)

    num = _as_floats(numerators) if n else np.empty(0)
    num[~np.isfinite(num)] = np.nan
    if denominators is not None and n:
        den = _as_floats(denominators)
        den[~np.isfinite(den)] = np.nan
    else:
        den = np.full(n, np.nan)
    if kind in ("p", "u", "c"):
        bad = np.flatnonzero(num < 0)
        if bad.size:
            raise ValueError(f"negative count at position {int(bad[0])}")
        if kind == "p":
            bad = np.flatnonzero((den > 0) & (num > den))
            if bad.size:
                raise ValueError(f"numerator above denominator at position {int(bad[0])}")

    nan = np.full(n, np.nan)
    ucl, lcl = nan.copy(), nan.copy()
    cl: float | None = None
    mr_bar = mr_ucl = None

    if kind in ("p", "u"):
        ok = np.isfinite(num) & (den > 0)
        values = np.divide(num, den, out=nan.copy(), where=ok)
        tot_n = float(den[:base_end][ok[:base_end]].sum())
        if tot_n > 0:
            cl = float(num[:base_end][ok[:base_end]].sum()) / tot_n
            var = cl * (1.0 - cl) if kind == "p" else cl
            sd = np.sqrt(np.divide(max(var, 0.0), den, out=nan.copy(), where=ok))
            ucl = cl + 3.0 * sd
            lcl = np.maximum(cl - 3.0 * sd, 0.0)
            if kind == "p":
                ucl = np.minimum(ucl, 1.0)
    elif kind == "c":
        values = num
        base = num[:base_end][np.isfinite(num[:base_end])]
        if base.size:
            cl = float(base.mean())
            sd = math.sqrt(cl)
            present = np.isfinite(num)
            ucl[present] = cl + 3.0 * sd
            lcl[present] = max(cl - 3.0 * sd, 0.0)
    else:  # "i"
        if denominators is None:
            values = num
        else:
            ok = np.isfinite(num) & np.isfinite(den) & (den != 0)
            values = np.divide(num, den, out=nan.copy(), where=ok)
        base = values[:base_end][np.isfinite(values[:base_end])]
        if base.size:
            cl = float(base.mean())
        if base.size >= 2:
            mr_bar = float(np.abs(np.diff(base)).mean())
            mr_ucl = _D4 * mr_bar
            present = np.isfinite(values)
            ucl[present] = cl + _E2 * mr_bar
            lcl[present] = cl - _E2 * mr_bar

    with np.errstate(invalid="ignore"):
        beyond = (values > ucl) | (values < lcl)
    return ControlLimits(
        kind=kind,
        cl=cl,
        ucl=_listed(ucl),
        lcl=_listed(lcl),
        values=_listed(values),
        outside=tuple(np.flatnonzero(beyond).tolist()),
        mr_bar=mr_bar,
        mr_ucl=mr_ucl,
        freeze=freeze,
    )
