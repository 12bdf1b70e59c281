"""A team's figures: completeness, time to answer, PDSA counts, latest value vs goal, signal."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from dash.metrics import cohort_figures, team_figures, teams_figures
from dash.models import Aim, Cohort, MeasureValue, Message, PdsaCycle, Team
from tests.support.teams import make_cohort, make_team

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


def _charts_installed() -> bool:
    try:
        import dash.chartdata  # noqa: F401
    except ImportError:
        return False
    return True


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
    """Same rules as the run chart (dash.chartdata)."""
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


def test_cohort_figures_equal_team_figures_team_by_team(db) -> None:
    """The board's one-query-per-table figures are the per-team figures, whatever the data."""
    with db.transaction() as s:
        cohort = make_cohort(s)
        other = make_cohort(s, topic="vte")  # its rows must not leak into the cohort's teams
        primary, second = sorted(cohort.measures, key=lambda m: not m.primary)
        shifted, trending, patchy, corrected, quiet, busy = (
            make_team(s, cohort, name=name)
            for name in ("Shift", "Trend", "Patchy", "Corrected", "Quiet", "Busy")
        )
        outsider = make_team(s, other, name="Outsider")
        for offset in range(-3, 9):
            day = START + timedelta(days=offset)
            add_value(s, shifted, primary, day, 3 if offset < 0 else 9, 10, minutes_late=offset)
            add_value(s, shifted, second, day, 1, 2, minutes_late=-5)
            add_value(s, trending, primary, day, offset + 4, 20, minutes_late=15 * offset)
            if offset % 3:
                add_value(s, patchy, primary, day, offset % 2, 1 + offset % 2)
            if offset % 4 == 0:
                add_value(s, patchy, second, day, 0, 0)
        add_value(s, patchy, primary, START - timedelta(days=6), 2, 4)  # before the baseline
        add_value(s, patchy, primary, START + timedelta(days=20), 1, 4)  # after the Dash
        old = add_value(s, corrected, primary, START, 1, 2, minutes_late=-90)
        old.is_current = False
        old.replaced_at = prompt_time(START) + timedelta(hours=2)
        s.flush()
        add_value(s, corrected, primary, START, 2, 2, minutes_late=200)
        add_value(s, corrected, second, START, 1, 1, minutes_late=45)
        for measure in other.measures:
            add_value(s, outsider, measure, START, 1, 1)
        for number, (state, reviewed) in enumerate(
            (("planning", None), ("planned", None), ("done", prompt_time(START)), ("acted", None)),
            start=1,
        ):
            s.add(PdsaCycle(team_id=busy.id, number=number, state=state, reviewed_at=reviewed))
        s.add(PdsaCycle(team_id=shifted.id, number=1, state="studied", test_date=START))
        s.add(PdsaCycle(team_id=outsider.id, number=1, state="acted"))
        for created, goal in ((prompt_time(START), 0.7), (prompt_time(START) + timedelta(1), 0.8)):
            s.add(
                Aim(
                    team_id=busy.id,
                    measure_id=primary.id,
                    text="Raise it",
                    goal=goal,
                    target_date=START + timedelta(days=13),
                    created_at=created,
                )
            )
        for team, direction, needs_reply in (
            (busy, "in", True),
            (busy, "in", True),
            (busy, "in", False),
            (busy, "out", True),
            (quiet, "in", True),
            (outsider, "in", True),
        ):
            s.add(
                Message(
                    team_id=team.id,
                    direction=direction,
                    channel="console",
                    status="received" if direction == "in" else "queued",
                    needs_reply=needs_reply,
                )
            )
        corrected.state = "completed"
        s.flush()

        for today in (
            START - timedelta(days=4),
            START,
            START + timedelta(days=7),
            START + timedelta(days=30),
        ):
            board = cohort_figures(s, cohort, today)
            assert [f.team_name for f in board] == [
                "Busy",
                "Corrected",
                "Patchy",
                "Quiet",
                "Shift",
                "Trend",
            ]
            light = teams_figures(
                s, cohort, [s.get(Team, f.team_id) for f in board], today, primary_signal_only=True
            )
            for figures in board:
                team = s.get(Team, figures.team_id)
                assert figures == team_figures(s, team, today), (team.name, today)
                # The board's variant: the same, but only the primary measure's signal is known.
                first, *others = figures.measures
                unknown = [replace(m, signal=None, signal_kind=None) for m in others]
                assert light[team.id] == replace(figures, measures=[first, *unknown])
        seen = {f.team_name: f for f in cohort_figures(s, cohort, START + timedelta(days=7))}
        # The comparison covers what differs between the teams, not only empty figures.
        assert seen["Busy"].waiting_messages == 2 and seen["Busy"].goal == 0.8
        assert seen["Busy"].pdsa_to_review == 2 and seen["Quiet"].waiting_messages == 1
        assert seen["Corrected"].median_minutes_to_answer == 22.5  # 0 (early) and 45
        assert seen["Patchy"].missed_days > 0 and seen["Shift"].completeness == 1
        if _charts_installed():
            assert seen["Shift"].primary.signal_kind == "shift"
            assert seen["Trend"].primary.signal_kind is not None
            assert seen["Quiet"].signal is False


def test_board_rows_show_last_contact_waiting_and_latest_rating_per_team(db) -> None:
    """The board loads contact, waiting replies and ratings for all teams at once."""
    from dash.models import AssessmentRating
    from dash.web.cohorts import build_rows, dash_dates, sort_rows

    with db.transaction() as s:
        cohort = make_cohort(s)
        early, late, silent = (make_team(s, cohort, name=n) for n in ("Early", "Late", "Silent"))
        for team, hour, direction, needs_reply in (
            (early, 9, "in", False),
            (late, 11, "in", True),
            (late, 12, "in", True),
            (late, 13, "out", False),  # a reply sent is not contact from the team
        ):
            s.add(
                Message(
                    team_id=team.id,
                    direction=direction,
                    channel="console",
                    status="received",
                    needs_reply=needs_reply,
                    created_at=datetime(2026, 12, 8, hour, tzinfo=UTC),
                )
            )
        for team, half_points, hour in ((early, 4, 10), (early, 7, 11), (late, 9, 9)):
            s.add(
                AssessmentRating(
                    team_id=team.id,
                    half_points=half_points,
                    rated_at=datetime(2026, 12, 8, hour, tzinfo=UTC),
                )
            )
        for measure in cohort.measures:
            add_value(s, early, measure, START, 1, 2)
        s.flush()
        rows = build_rows(s, cohort, [early, late, silent], dash_dates(cohort), START)
        by_name = {row.team.name: row for row in rows}
        assert by_name["Early"].last_contact == datetime(2026, 12, 8, 9, tzinfo=UTC)
        assert by_name["Late"].last_contact == datetime(2026, 12, 8, 12, tzinfo=UTC)
        assert by_name["Silent"].last_contact is None
        assert [by_name[n].waiting for n in ("Early", "Late", "Silent")] == [0, 2, 0]
        assert [by_name[n].score for n in ("Early", "Late", "Silent")] == [3.5, 4.5, None]
        assert by_name["Early"].cells[0].status == "full"
        assert by_name["Late"].cells[0].status == "none"
        assert [r.team.name for r in sort_rows(rows, "contact")] == ["Late", "Early", "Silent"]
        assert [r.team.name for r in sort_rows(rows, "score")] == ["Late", "Early", "Silent"]
