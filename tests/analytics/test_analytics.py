"""Tests for dash.analytics against published tables and worked examples.

Sources used below:
- [QIC2] qicharts2 vignette, "Appendix 2: Critical values for longest run and number of
  crossings" (n = 10..100), the same limits as Anhøj & Olesen, PLoS ONE 2014;9(11):e113825.
- [PERLA] Perla RJ, Provost LP, Murray SK. The run chart. BMJ Qual Saf 2011;20:46-51
  (shift = 6+ points on one side of the median; trend = 5+ points all up or all down, like
  values counted once; points on the median neither make nor break a run).
- [MONT-P] Montgomery, Introduction to Statistical Quality Control, orange-juice can example
  (30 samples of n = 50; also NIST/SEMATECH e-Handbook 6.3.3.2, wafer example):
  p̄ = 0.2313, UCL = 0.4102, LCL = 0.0524; samples 15 and 23 above the UCL.
- [MONT-C] Montgomery, printed circuit boards example (26 samples): c̄ = 19.85,
  UCL = 33.22, LCL = 6.48; samples 6 and 20 outside the limits.
- [NIST-I] NIST/SEMATECH e-Handbook 6.3.2.2, individuals chart example: x̄ = 50.81,
  MR̄ = 1.8778, UCL = 55.8041, LCL = 45.8159 (NIST uses 3/1.128 = 2.6596 where we use the
  tabulated 2.66; the difference is below 0.001).
"""

from __future__ import annotations

import math
from math import comb

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dash.analytics import (
    MIN_USEFUL_POINTS,
    control_limits,
    crossings_limit,
    describe_signal,
    longest_run_limit,
    runs_analysis,
)

# [QIC2] Appendix 2, n = 10..100: upper limit for longest run, lower limit for crossings.
QIC2_LONGEST = [6, 6] + [7] * 11 + [8] * 23 + [9] * 45 + [10] * 10
QIC2_CROSSINGS = [
    2, 2, 3, 3, 4, 4, 4, 5, 5, 6, 6, 6, 7, 7, 8, 8, 8, 9, 9, 10, 10, 11, 11, 11, 12, 12, 13,
    13, 14, 14, 14, 15, 15, 16, 16, 17, 17, 17, 18, 18, 19, 19, 20, 20, 21, 21, 21, 22, 22,
    23, 23, 24, 24, 25, 25, 25, 26, 26, 27, 27, 28, 28, 29, 29, 29, 30, 30, 31, 31, 32, 32,
    33, 33, 34, 34, 34, 35, 35, 36, 36, 37, 37, 38, 38, 39, 39, 39, 40, 40, 41, 41,
]  # fmt: skip


def test_published_table_has_91_rows() -> None:
    assert len(QIC2_LONGEST) == len(QIC2_CROSSINGS) == 91
    # Spot checks against rows of the table as printed: n=23 -> 8, n=46 -> 9, n=91 -> 10.
    assert QIC2_LONGEST[23 - 10] == 8 and QIC2_LONGEST[46 - 10] == 9
    assert QIC2_LONGEST[91 - 10] == 10 and QIC2_CROSSINGS[50 - 10] == 19


@pytest.mark.parametrize("n", range(10, 101))
def test_limits_match_anhoej_table(n: int) -> None:
    assert longest_run_limit(n) == QIC2_LONGEST[n - 10]
    assert crossings_limit(n) == QIC2_CROSSINGS[n - 10]


def _exact_crossings_limit(n: int) -> int:
    """Smallest k with P(Binomial(n-1, 1/2) <= k) >= 0.05, in exact integer arithmetic."""
    m, cum = n - 1, 0
    for k in range(m + 1):
        cum += comb(m, k)
        if 20 * cum >= 2**m:
            return k
    return m


def test_crossings_limit_equals_exact_binomial_quantile() -> None:
    # qbinom(0.05, n - 1, 0.5) is the exact quantile; checked well past n = 100.
    for n in [*range(1, 400), 1000, 2500]:
        assert crossings_limit(n) == _exact_crossings_limit(n), n


def test_limits_for_tiny_n_follow_qicharts2() -> None:
    # qicharts2 has no minimum n: it computes limits from one useful point upward.
    assert longest_run_limit(1) == 3 and crossings_limit(1) == 0
    assert longest_run_limit(2) == 4 and crossings_limit(2) == 0
    with pytest.raises(ValueError):
        longest_run_limit(0)
    with pytest.raises(ValueError):
        crossings_limit(0)


def _signs_to_values(signs: str) -> list[float]:
    """'+' -> 2, '-' -> 0, 'o' -> 1; analysed against centre 1."""
    return [{"+": 2.0, "-": 0.0, "o": 1.0}[c] for c in signs]


def test_vignette_24_points() -> None:
    # [QIC2] text: with 24 useful points a run of more than 8 or fewer than 8 crossings
    # signals. A run of 8 with enough crossings is therefore no signal; a run of 9 is.
    eight = "++++++++" + "-+" * 8
    r = runs_analysis(_signs_to_values(eight), centre=1)
    assert (r.n_useful, r.longest_run, r.longest_run_max) == (24, 8, 8)
    assert r.n_crossings == 16 and r.n_crossings_min == 8 and not r.runs_signal
    nine = "+++++++++" + "-+" * 7 + "-"
    r = runs_analysis(_signs_to_values(nine), centre=1)
    assert (r.n_useful, r.longest_run) == (24, 9) and r.runs_signal


def test_too_few_crossings_alone_signals() -> None:
    # 24 points, longest run 6 (≤ 8) but only 3 crossings (< 8): an Anhøj signal.
    r = runs_analysis(_signs_to_values("++++++------++++++------"), centre=1)
    assert r.longest_run == 6 and r.n_crossings == 3 and r.runs_signal


def test_hand_counted_runs_and_crossings() -> None:
    # 13 points: crossings between 3|4, 6|7, 7|8, 9|10 and 10|11; longest run 3.
    r = runs_analysis(_signs_to_values("+++---+--+---"), centre=1)
    assert (r.n_useful, r.n_crossings, r.longest_run) == (13, 5, 3)
    assert (r.longest_run_max, r.n_crossings_min) == (7, 3)  # [QIC2] row n = 13
    assert not r.runs_signal and not r.shift


def test_points_on_centre_neither_make_nor_break_a_shift() -> None:
    # [PERLA]: skip points on the median. Five above, one on, one above = a shift of 6.
    r = runs_analysis(_signs_to_values("-+++++o+-"), centre=1)
    assert r.n_useful == 8 and r.longest_run == 6 and r.shift
    (seg,) = r.shifts
    assert (seg.direction, seg.length, seg.start, seg.end) == ("up", 6, 1, 7)
    assert seg.indices == (1, 2, 3, 4, 5, 7)  # the point on the centre is not highlighted
    assert r.shift_indices == seg.indices
    # ... and five useful points plus one on the centre are not a shift.
    r = runs_analysis(_signs_to_values("-+++o++-"), centre=1)
    assert r.longest_run == 5 and not r.shift


def test_shift_against_median_of_data() -> None:
    # Median of these 12 values is (5 + 6) / 2 = 5.5: the first six are all below it and the
    # last six all above: two IHI shifts; 1 crossing < 3 (the [QIC2] limit for n = 12) is an
    # Anhøj signal too.
    r = runs_analysis([5, 4, 5, 3, 5, 4, 6, 7, 6, 8, 7, 6])
    assert r.centre == 5.5
    assert [(s.direction, s.indices) for s in r.shifts] == [
        ("down", (0, 1, 2, 3, 4, 5)),
        ("up", (6, 7, 8, 9, 10, 11)),
    ]
    assert (r.n_crossings, r.n_crossings_min, r.longest_run_max) == (1, 3, 7)
    assert r.runs_signal


def test_trend_equal_neighbours_count_once() -> None:
    # [PERLA]: like values are counted once: 1,2,2,3,4 is four points going up, not five.
    r = runs_analysis([1, 2, 2, 3, 4])
    assert not r.trend
    r = runs_analysis([1, 2, 2, 3, 4, 5])
    (seg,) = r.trends
    assert (seg.direction, seg.length, seg.start, seg.end) == ("up", 5, 0, 5)
    assert seg.indices == (0, 1, 2, 3, 4, 5)
    r = runs_analysis([9, 5, 4, 4, 4, 3, 2, 8])
    (seg,) = r.trends
    assert (seg.direction, seg.length, seg.start, seg.end) == ("down", 5, 0, 6)


def test_trend_broken_by_reversal_and_shared_turning_point() -> None:
    r = runs_analysis([1, 2, 3, 4, 3, 4, 5, 6])
    assert not r.trend  # 4 up, 1 down, 4 up
    r = runs_analysis([1, 2, 3, 4, 5, 4, 3, 2, 1])
    assert [(s.direction, s.start, s.end) for s in r.trends] == [("up", 0, 4), ("down", 4, 8)]
    assert r.trend_indices == tuple(range(9))


def test_missing_days_are_skipped() -> None:
    # A None (no report that day) neither breaks nor extends a shift or a trend.
    r = runs_analysis([1, 2, None, 3, 4, None, 5])
    assert r.n_obs == 5 and r.trend and r.trends[0].indices == (0, 1, 3, 4, 6)
    r = runs_analysis([2, 2, None, 2, 2, float("nan"), 2, 2, 0], centre=1)
    assert r.n_obs == 7 and r.shift and r.shifts[0].indices == (0, 1, 3, 4, 6, 7)
    # The contract's example.
    r = runs_analysis([0.5, 0.6, None, 0.7], centre=None)
    assert r.centre == 0.6 and r.n_useful == 2 and r.n_crossings == 1


def test_all_equal_series() -> None:
    r = runs_analysis([0.9] * 14)
    assert r.centre == 0.9 and r.n_obs == 14 and r.n_useful == 0
    assert r.longest_run is None and r.n_crossings is None and not r.runs_signal
    assert not r.shift and not r.trend
    assert describe_signal(r).code == "too_few_points"


@pytest.mark.parametrize(
    ("values", "n_useful", "longest", "crossings"),
    [([], 0, None, None), ([None, None], 0, None, None), ([3], 0, None, None),
     ([1, 2], 2, 1, 1), ([2, 2], 0, None, None)],
)  # fmt: skip
def test_tiny_series(values, n_useful, longest, crossings) -> None:
    r = runs_analysis(values)
    assert (r.n_useful, r.longest_run, r.n_crossings) == (n_useful, longest, crossings)
    assert not r.runs_signal and not r.shift and not r.trend


def test_one_useful_point_against_given_centre() -> None:
    r = runs_analysis([5], centre=1)
    assert (r.n_useful, r.longest_run, r.longest_run_max) == (1, 1, 3)
    assert (r.n_crossings, r.n_crossings_min, r.runs_signal) == (0, 0, False)


def test_frozen_baseline() -> None:
    # Baseline median over the first 6 positions (one missing): median(40,50,45,35,42) = 42;
    # the next six are all above it: a shift against the frozen baseline.
    values = [40, 50, None, 45, 35, 42, 60, 65, 62, 70, 68, 66]
    r = runs_analysis(values, freeze=6)
    assert r.centre == 42 and r.freeze == 6 and r.shift
    assert r.shifts[0].indices == (6, 7, 8, 9, 10, 11)
    assert r.n_useful == 10  # the 42 is on the centre
    # Against the median of all data (60) the same points show no shift.
    whole = runs_analysis(values)
    assert whole.centre == 60 and not whole.shift
    # An explicit centre gives the same result as the frozen one.
    assert runs_analysis(values, centre=42).shifts == r.shifts
    with pytest.raises(ValueError):
        runs_analysis(values, centre=42, freeze=6)
    with pytest.raises(ValueError):
        runs_analysis(values, freeze=0)
    assert runs_analysis([None, None, 1, 2], freeze=2).centre is None


def test_describe_signal_codes() -> None:
    up_shift = runs_analysis(_signs_to_values("-+-+-+++++++"), centre=1)
    assert describe_signal(up_shift, "higher").code == "shift_up_better"
    s = describe_signal(up_shift, "lower")
    assert (s.code, s.kind, s.direction, s.length, s.better) == (
        "shift_up_worse",
        "shift",
        "up",
        7,
        False,
    )
    assert (s.start, s.end, s.points_needed) == (5, 11, 0)
    down_trend = runs_analysis([5, 6, 5, 6, 5, 6, 9, 8, 7, 6, 5, 6])
    assert not down_trend.shift
    assert describe_signal(down_trend, "lower").code == "trend_down_better"
    assert describe_signal(down_trend, "higher").code == "trend_down_worse"
    few_crossings = runs_analysis(_signs_to_values("+++++-----+++++-----+"), centre=1)
    assert not few_crossings.shift and few_crossings.runs_signal
    assert describe_signal(few_crossings).code == "non_random"
    noise = runs_analysis(_signs_to_values("+-+-++-+--+-"), centre=1)
    assert describe_signal(noise).code == "none"
    short = runs_analysis([1, 2, 1, 2])
    s = describe_signal(short)
    assert s.code == "too_few_points" and s.points_needed == MIN_USEFUL_POINTS - 4
    with pytest.raises(ValueError):
        describe_signal(short, "up")  # type: ignore[arg-type]


def test_describe_signal_prefers_the_most_recent() -> None:
    # An early downward shift, then a late upward one: the team hears about the later.
    r = runs_analysis(_signs_to_values("------+-+-++++++"), centre=1)
    assert len(r.shifts) == 2
    assert describe_signal(r).code == "shift_up_better"


# --------------------------------------------------------------------------- control limits

MONT_P = [12, 15, 8, 10, 4, 7, 16, 9, 14, 10, 5, 6, 17, 12, 22,
          8, 10, 5, 13, 11, 20, 18, 24, 15, 9, 12, 7, 13, 9, 6]  # fmt: skip
MONT_C = [21, 24, 16, 12, 15, 5, 28, 20, 31, 25, 20, 24, 16,
          19, 10, 17, 13, 22, 18, 39, 30, 24, 16, 19, 17, 15]  # fmt: skip
NIST_I = [49.6, 47.6, 49.9, 51.3, 47.8, 51.2, 52.6, 52.4, 53.6, 52.1]


def test_p_chart_montgomery_nist() -> None:
    c = control_limits("p", MONT_P, [50] * 30)
    assert round(c.cl, 4) == 0.2313
    assert all(round(u, 4) == 0.4102 for u in c.ucl)
    assert all(round(x, 4) == 0.0524 for x in c.lcl)
    assert c.outside == (14, 22)  # samples 15 and 23
    assert c.values[0] == pytest.approx(0.24)


def test_c_chart_montgomery() -> None:
    c = control_limits("c", MONT_C)
    assert round(c.cl, 2) == 19.85
    # Montgomery rounds c̄ to 19.85 before adding 3·√c̄, hence the 0.01 tolerance.
    assert c.ucl[0] == pytest.approx(33.22, abs=0.01) and round(c.lcl[0], 2) == 6.48
    assert c.outside == (5, 19)  # samples 6 and 20


def test_i_chart_nist() -> None:
    c = control_limits("i", NIST_I)
    assert c.cl == pytest.approx(50.81)
    assert c.mr_bar == pytest.approx(1.8778, abs=1e-4)
    assert c.ucl[0] == pytest.approx(55.8041, abs=1e-3)
    assert c.lcl[0] == pytest.approx(45.8159, abs=1e-3)
    assert c.mr_ucl == pytest.approx(3.267 * 1.8778, abs=1e-3)
    assert c.outside == ()


def test_u_chart_by_hand() -> None:
    # ū = 6 / 400 = 0.015; UCL₀ = 0.015 + 3·√(0.015/100) = 0.0517423; LCL clamps to 0.
    c = control_limits("u", [2, 3, 1], [100, 200, 100])
    assert c.cl == pytest.approx(0.015)
    assert c.ucl[0] == pytest.approx(0.015 + 3 * math.sqrt(0.015 / 100))
    assert c.ucl[1] == pytest.approx(0.015 + 3 * math.sqrt(0.015 / 200))
    assert c.lcl == [0.0, 0.0, 0.0]


def test_missing_and_zero_denominators() -> None:
    c = control_limits("p", [5, None, 3, 0, 4], [10, 10, 0, 8, None])
    assert c.values == [0.5, None, None, 0.0, None]
    assert c.cl == pytest.approx(5 / 18)
    assert c.ucl[1] is None and c.lcl[2] is None and c.ucl[4] is None
    assert c.ucl[0] is not None and c.lcl[3] is not None
    empty = control_limits("p", [None, 1], [None, 0])
    assert empty.cl is None and empty.ucl == [None, None] and empty.lcl == [None, None]


def test_p_limits_clamped_to_unit_interval() -> None:
    c = control_limits("p", [1, 0, 1, 0], [1, 1, 1, 2])
    assert c.cl == pytest.approx(0.4)
    assert c.ucl[0] == 1.0 and c.lcl[0] == 0.0


def test_i_chart_on_ratios_and_small_series() -> None:
    c = control_limits("i", [1, 2, None, 3], [2, 4, 5, 0])
    assert c.values == [0.5, 0.5, None, None] and c.mr_bar == 0.0
    assert c.ucl[0] == c.lcl[0] == 0.5
    one = control_limits("i", [7])
    assert one.cl == 7 and one.ucl == [None] and one.mr_bar is None
    # I charts may go negative: no clamping.
    c = control_limits("i", [0, 10, 0, 10])
    assert c.lcl[0] is not None and c.lcl[0] < 0


def test_control_limits_freeze() -> None:
    c = control_limits("c", [10, 10, 10, 30], freeze=3)
    assert c.cl == 10 and c.outside == (3,)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [(("x", [1]), {}), (("p", [1]), {}), (("u", [1], [1, 2]), {}),
     (("p", [-1], [2]), {}), (("p", [3], [2]), {}), (("c", [1]), {"freeze": 0})],
)  # fmt: skip
def test_control_limits_rejects_bad_input(args, kwargs) -> None:
    with pytest.raises(ValueError):
        control_limits(*args, **kwargs)


# --------------------------------------------------------------------------- properties

_value = st.one_of(
    st.none(),
    st.integers(-3, 3).map(float),  # many ties with the median and between neighbours
    st.floats(allow_nan=True, allow_infinity=True),
)


def _oracle(values, centre):
    """Straightforward loop version of the runs counts, to cross-check the numpy code."""
    sides = []
    for v in values:
        if v is None or not math.isfinite(v) or v == centre:
            continue
        sides.append(1 if v > centre else -1)
    if not sides:
        return 0, None, None, []
    runs = [1]
    for a, b in zip(sides, sides[1:]):
        runs[-1:] = [runs[-1] + 1] if a == b else [runs[-1], 1]
    return len(sides), max(runs), len(runs) - 1, [n for n in runs if n >= 6]


@pytest.mark.filterwarnings("error")  # no overflow or invalid-value warnings either
@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(_value, max_size=60),
    centre=st.none() | st.integers(-2, 2) | st.floats(allow_nan=False, allow_infinity=False),
)
def test_runs_properties(values, centre) -> None:
    r = runs_analysis(values, centre=centre)
    n_obs = sum(v is not None and math.isfinite(v) for v in values)
    assert r.n_obs == n_obs and 0 <= r.n_useful <= n_obs
    if r.n_useful:
        assert 0 <= r.n_crossings <= r.n_useful - 1
        assert 1 <= r.longest_run <= r.n_useful
        assert r.runs_signal == (
            r.longest_run > r.longest_run_max or r.n_crossings < r.n_crossings_min
        )
        n_useful, longest, crossings, shift_lengths = _oracle(values, r.centre)
        assert (r.n_useful, r.longest_run, r.n_crossings) == (n_useful, longest, crossings)
        assert [s.length for s in r.shifts] == shift_lengths
    else:
        assert r.longest_run is None and not r.runs_signal and not r.shift
    assert r.shift == bool(r.shifts) and r.trend == bool(r.trends)
    assert r.shift_indices == tuple(sorted({i for s in r.shifts for i in s.indices}))
    assert r.trend_indices == tuple(sorted({i for s in r.trends for i in s.indices}))
    for seg in r.shifts:
        assert seg.length >= 6
        for i in seg.indices:
            assert (values[i] > r.centre) == (seg.direction == "up") and values[i] != r.centre
    for seg in r.trends:
        distinct = []
        for i in seg.indices:
            if not distinct or values[i] != distinct[-1]:
                distinct.append(values[i])
        assert len(distinct) == seg.length >= 5
        steps = [b > a for a, b in zip(distinct, distinct[1:])]
        assert all(steps) if seg.direction == "up" else not any(steps)
    summary = describe_signal(r, "lower")
    assert summary.n_useful == r.n_useful and summary.code


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.none() | st.integers(0, 5).map(float), max_size=40))
def test_reversal_keeps_counts(values) -> None:
    a, b = runs_analysis(values), runs_analysis(values[::-1])
    assert (a.centre, a.n_useful, a.longest_run, a.n_crossings) == (
        b.centre,
        b.n_useful,
        b.longest_run,
        b.n_crossings,
    )
    assert sorted(s.length for s in a.trends) == sorted(s.length for s in b.trends)


@settings(max_examples=200, deadline=None)
@given(
    data=st.lists(
        st.tuples(st.none() | st.integers(0, 50), st.none() | st.integers(0, 50)), max_size=30
    ),
    kind=st.sampled_from(["p", "u", "c", "i"]),
)
def test_control_limits_properties(data, kind) -> None:
    nums = [x if x is None or d is None or x <= d else d for x, d in data]
    dens = [d for _, d in data]
    c = control_limits(kind, nums, dens)
    assert len(c.ucl) == len(c.lcl) == len(c.values) == len(nums)
    for v, u, lo in zip(c.values, c.ucl, c.lcl):
        if v is None:
            assert u is None and lo is None
        if u is not None and lo is not None:
            assert lo <= c.cl + 1e-12 and c.cl <= u + 1e-12
            if kind in ("p", "u", "c"):
                assert lo >= 0
            if kind == "p":
                assert u <= 1
