"""A team's figures: completeness, time to answer, PDSA counts, latest value vs goal, signal."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from dash.metrics import cohort_figures, team_figures
from dash.models import Cohort, MeasureValue, PdsaCycle, Team
from tests.test_agenda import make_cohort, make_team

START = date(2026, 12, 7)  # New York, prompts at 18:00 local = 23:00 UTC


def prompt_time(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 23, 0, tzinfo=UTC)


def add_value(s, team: Team, measure, day: date, n: int, d: int, *, minutes_late: int = 30):
    value = MeasureValue(
        team_id=team.id,
        measure_id=measure.id,
        day=day,
        numerator=n,
        denominator=d,
        channel="console",
        reported_at=prompt_time(day) + timedelta(minutes=minutes_late),
    )
    s.add(value)
    s.flush()
    return value


def test_completeness_counts_days_with_every_measure(db) -> None:
    with db.transaction() as s:
        cohort = make_cohort(s)
        team = make_team(s, cohort)
        primary, second = cohort.measures
        # Baseline Dec 4-6 and Dec 7-9 were asked by Thursday 10 December (today not yet).
        for offset in (-3, -2, 0, 1):
            day = START + timedelta(days=offset)
            add_value(s, team, primary, day, 6, 10, minutes_late=10 * (offset + 4))
            add_value(s, team, second, day, 3, 4, minutes_late=60)
        add_value(s, team, primary, START - timedelta(days=1), 5, 10)  # only one measure
        figures = team_figures(s, team, START + timedelta(days=3))
        assert figures.days_asked == 6
        assert figures.days_with_data == 4
        assert figures.completeness == pytest.approx(4 / 6)
        assert figures.missed_days == 1  # Wednesday 9 December
        # Delays: primary 10, 20, 40, 50, 30 min; second 60 x4 -> median 50.
        assert figures.median_minutes_to_answer == pytest.approx(50)


def test_today_counts_once_its_data_is_in(db) -> None:
    with db.transaction() as s:
        cohort = make_cohort(s)
        team = make_team(s, cohort)
        before = team_figures(s, team, START)
        for measure in cohort.measures:
            add_value(s, team, measure, START, 1, 2)
        after = team_figures(s, team, START)
        assert after.days_asked == before.days_asked + 1
        assert after.days_with_data == 1


def test_an_early_answer_counts_as_zero_minutes_and_corrections_do_not_reset_the_clock(db) -> None:
    with db.transaction() as s:
        cohort = make_cohort(s, topic="vte")
        team = make_team(s, cohort)
        measures = cohort.measures
        first = add_value(s, team, measures[0], START, 1, 2, minutes_late=-90)
        first.is_current = False
        first.replaced_at = prompt_time(START) + timedelta(hours=5)
        s.flush()
        add_value(s, team, measures[0], START, 2, 2, minutes_late=300)
        figures = team_figures(s, team, START + timedelta(days=1))
        assert figures.median_minutes_to_answer == 0
        assert figures.primary.latest_value == 1.0


def test_pdsa_counts_latest_value_goal_and_baseline(db) -> None:
    with db.transaction() as s:
        cohort = make_cohort(s)
        team = make_team(s, cohort)
        primary = next(m for m in cohort.measures if m.primary)
        for offset, n in ((-3, 4), (-2, 5), (-1, 6), (0, 8), (1, 9)):
            add_value(s, team, primary, START + timedelta(days=offset), n, 10)
        for number, state in enumerate(("planning", "planned", "done", "acted"), start=1):
            s.add(PdsaCycle(team_id=team.id, number=number, state=state))
        s.flush()
        figures = team_figures(s, team, START + timedelta(days=2))
        assert figures.pdsa_started == 3
        assert figures.pdsa_finished == 1
        assert figures.pdsa_to_review == 3
        assert figures.primary.key == primary.key
        assert figures.latest_value == pytest.approx(0.9)
        assert figures.goal == primary.goal
        assert primary.goal == 0.9 and figures.primary.meets_goal is True
        assert figures.primary.baseline == pytest.approx(15 / 30)
        assert figures.primary.recent == pytest.approx(32 / 50)  # the last 7 days


def test_zero_over_zero_is_a_reported_day_but_no_value(db) -> None:
    with db.transaction() as s:
        cohort = make_cohort(s, topic="sepsis")
        team = make_team(s, cohort)
        for measure in cohort.measures:
            add_value(s, team, measure, START, 0, 0)
        figures = team_figures(s, team, START)
        assert figures.days_with_data == 1
        assert figures.latest_value is None
        assert figures.primary.recent is None


def test_cohort_figures_cover_enrolled_teams_only(db) -> None:
    with db.transaction() as s:
        cohort = make_cohort(s)
        make_team(s, cohort, name="B ward")
        make_team(s, cohort, name="A ward")
        left = make_team(s, cohort, name="C ward")
        left.state = "withdrawn"
        s.flush()
        figures = cohort_figures(s, cohort, START)
        assert [f.team_name for f in figures] == ["A ward", "B ward"]


def test_a_sustained_shift_is_reported_as_a_signal(db) -> None:
    """Same rules as the run chart (dash.chartdata), once the chart modules are installed."""
    pytest.importorskip("dash.charts")
    with db.transaction() as s:
        cohort: Cohort = make_cohort(s)
        team = make_team(s, cohort)
        primary = next(m for m in cohort.measures if m.primary)
        for offset in range(-3, 7):
            n = 3 if offset < 0 else 9
            add_value(s, team, primary, START + timedelta(days=offset), n, 10)
        figures = team_figures(s, team, START + timedelta(days=7))
        assert figures.signal is True
        assert figures.primary.signal_kind == "shift"
        flat = make_team(s, cohort)
        for offset in range(-3, 7):
            add_value(s, flat, primary, START + timedelta(days=offset), 5 + offset % 2, 10)
        assert team_figures(s, flat, START + timedelta(days=7)).signal is False
