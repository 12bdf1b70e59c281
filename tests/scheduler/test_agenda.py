"""Compiling a team's agenda: right local times across DST, postponements, rewrites.

Teams are built with tests.support.teams (directly with the models, enrolled, people reachable
on the console channel), independent of the enrolment conversation.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import select

from dash.actions.cohorts import postpone_session, update_cohort
from dash.errors import UserError
from dash.models import (
    AgendaItem,
    Cohort,
    Team,
    TeamState,
)
from dash.timeutil import to_local
from scheduler.agenda import sync_coach_digests, sync_team
from scheduler.tick import dispatch
from tests.support.teams import add_person, make_cohort, make_team, rows_of


def local(row: AgendaItem, tz: str) -> datetime:
    return to_local(row.due_at, tz)


# ---------------------------------------------------------------------------------------------


def test_agenda_holds_every_step_once(db) -> None:
    with db.transaction() as s:
        cohort = make_cohort(s)
        team = make_team(s, cohort)
        sync_team(s, team)
        rows = rows_of(s, team)
        # 6 sessions x (reminder, follow-up) + (3 baseline + 14 days) x (2 measures + 1 nudge)
        # + mid-point and final summaries.
        assert len(rows) == 12 + 17 * 3 + 2
        assert team.agenda_version == cohort.schedule_version
        assert "daily:2026-12-04:poss-before-dose" in rows  # baseline day before the start
        assert "daily:2026-12-20:reassess-at-peak" in rows  # last day of the Dash
        assert "daily:2026-12-21:poss-before-dose" not in rows
        # Compiling again changes nothing.
        assert sync_team(s, team).added == 0
        assert len(rows_of(s, team)) == len(rows)


def test_new_york_cohort_keeps_local_times_across_the_end_of_dst(db) -> None:
    """DST ends on Sunday 1 November 2026: sessions stay at 12:30 local, UTC moves an hour."""
    tz = "America/New_York"
    with db.transaction() as s:
        cohort = make_cohort(s, start=date(2026, 10, 26), tz=tz)
        team = make_team(s, cohort)
        sync_team(s, team)
        rows = rows_of(s, team)
        days = [local(rows[f"session:{n}:reminder"], tz).date() for n in range(1, 7)]
        assert days == [
            date(2026, 10, 26),
            date(2026, 10, 28),
            date(2026, 10, 30),
            date(2026, 11, 2),
            date(2026, 11, 4),
            date(2026, 11, 6),
        ]
        for n in range(1, 7):
            assert local(rows[f"session:{n}:reminder"], tz).time() == time(11, 30)
            assert local(rows[f"session:{n}:followup"], tz).time() == time(14, 0)
        assert rows["session:3:reminder"].due_at == datetime(2026, 10, 30, 15, 30, tzinfo=UTC)
        assert rows["session:4:reminder"].due_at == datetime(2026, 11, 2, 16, 30, tzinfo=UTC)
        # The daily prompt on the changeover day itself is at 18:00 EST.
        prompt = rows["daily:2026-11-01:poss-before-dose"]
        assert prompt.due_at == datetime(2026, 11, 1, 23, 0, tzinfo=UTC)
        assert prompt.local_day == date(2026, 11, 1)


def test_auckland_cohort_lands_on_local_days_across_the_end_of_nzdt(db) -> None:
    """NZDT (+13) ends on Sunday 4 April 2027; a 08:00 session is the previous UTC day."""
    tz = "Pacific/Auckland"
    with db.transaction() as s:
        cohort = make_cohort(s, start=date(2027, 3, 29), tz=tz, session_time=time(8, 0))
        team = make_team(s, cohort)
        sync_team(s, team)
        rows = rows_of(s, team)
        first = rows["session:1:followup"]  # 08:00 + 90 min = 09:30 local, Monday 29 March
        assert first.due_at == datetime(2027, 3, 28, 20, 30, tzinfo=UTC)
        assert first.local_day == date(2027, 3, 29)
        fourth = rows["session:4:followup"]  # Monday 5 April, now NZST (+12)
        assert fourth.due_at == datetime(2027, 4, 4, 21, 30, tzinfo=UTC)
        assert fourth.local_day == date(2027, 4, 5)
        for n in range(1, 7):
            assert local(rows[f"session:{n}:reminder"], tz).time() == time(7, 0)
        digest_free = [r for r in rows.values() if r.kind == "daily_prompt"]
        assert all(local(r, tz).time() == time(18, 0) for r in digest_free)
        assert all(local(r, tz).date() == r.local_day for r in digest_free)


def test_spring_forward_gap_moves_a_wall_time_that_does_not_exist(db) -> None:
    """US DST starts Sunday 14 March 2027 at 02:00: a 02:30 step that day goes at 03:30."""
    tz = "America/New_York"
    with db.transaction() as s:
        cohort = make_cohort(s, start=date(2027, 3, 8), tz=tz)
        team = make_team(s, cohort)
        sync_team(s, team)
        rows = rows_of(s, team)
        # 12:30 sessions either side of the change, one hour apart in UTC.
        assert rows["session:3:reminder"].due_at == datetime(2027, 3, 12, 16, 30, tzinfo=UTC)
        assert rows["session:4:reminder"].due_at == datetime(2027, 3, 15, 15, 30, tzinfo=UTC)


def test_mid_point_summary_follows_session_three(db) -> None:
    tz = "America/New_York"
    with db.transaction() as s:
        cohort = make_cohort(s, tz=tz)
        team = make_team(s, cohort)
        sync_team(s, team)
        rows = rows_of(s, team)
        # Session 3 is Friday 11 December 12:30-13:15; summaries go at 12:00, so Saturday.
        assert local(rows["summary:mid"], tz) == _ny(2026, 12, 12, 12, 0)
        # The last day (Sunday 20th) is asked for its counts at 18:00 and nudged at 20:00: "your
        # Dash is complete" waits for the next noon.
        assert local(rows["summary:final"], tz) == _ny(2026, 12, 21, 12, 0)


def test_postponing_a_session_moves_its_reminder_and_follow_up(db) -> None:
    tz = "America/New_York"
    with db.transaction() as s:
        cohort = make_cohort(s, tz=tz)
        team = make_team(s, cohort)
        sync_team(s, team)
        before = {k: r.due_at for k, r in rows_of(s, team).items()}
        version = cohort.schedule_version
        postpone_session(s, cohort=cohort, number=3, new_day=date(2026, 12, 12))
        assert cohort.schedule_version == version + 1
        assert team.agenda_version == version  # stale until the next sync
        result = sync_team(s, team)
        rows = rows_of(s, team)
        # Session 3 moves from Friday 11 to Saturday 12 December, same time.
        assert local(rows["session:3:reminder"], tz) == _ny(2026, 12, 12, 11, 30)
        assert local(rows["session:3:followup"], tz) == _ny(2026, 12, 12, 14, 0)
        assert rows["summary:mid"].local_day == date(2026, 12, 13)
        moved = {k for k, r in rows.items() if r.due_at != before[k]}
        assert moved == {"session:3:reminder", "session:3:followup", "summary:mid"}
        assert result.updated == 3 and result.added == 0 and result.cancelled == 0
        assert team.agenda_version == cohort.schedule_version


def test_postponement_reaches_every_team_on_the_next_tick(ctx) -> None:
    tz = "America/New_York"
    with ctx.db.transaction() as s:
        cohort = make_cohort(s, tz=tz)
        teams = [make_team(s, cohort), make_team(s, cohort)]
        team_ids = [t.id for t in teams]
        cohort_id = cohort.id
    # The first tick (Monday 7 December, 11:45) compiles and sends session 1's reminder.
    first = dispatch(ctx, datetime(2026, 12, 7, 16, 45, tzinfo=UTC))
    assert first.compiled == 2
    with ctx.db.transaction() as s:
        cohort = s.get(Cohort, cohort_id)
        postpone_session(
            s, cohort=cohort, number=3, new_day=date(2026, 12, 12), new_time=time(9, 0)
        )
    report = dispatch(ctx, datetime(2026, 12, 7, 16, 50, tzinfo=UTC))
    assert report.compiled == 2
    with ctx.db.transaction() as s:
        for team_id in team_ids:
            team = s.get(Team, team_id)
            rows = rows_of(s, team)
            assert team.agenda_version == s.get(Cohort, cohort_id).schedule_version
            assert local(rows["session:3:reminder"], tz) == _ny(2026, 12, 12, 8, 0)
            assert local(rows["session:3:followup"], tz) == _ny(2026, 12, 12, 10, 30)
            # Session 2 did not move; session 1's reminder, already sent, is untouched.
            assert local(rows["session:2:reminder"], tz) == _ny(2026, 12, 9, 11, 30)
            assert rows["session:1:reminder"].state == "done"
            assert rows["session:1:reminder"].version == 1
            # The mid-point summary follows session 3 (ends 09:45 Saturday, summary 12:00).
            assert rows["summary:mid"].local_day == date(2026, 12, 12)


def _ny(*args: int) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(*args, tzinfo=ZoneInfo("America/New_York"))


def test_moving_the_session_time_rewrites_only_what_has_not_been_sent(ctx) -> None:
    tz = "America/New_York"
    with ctx.db.transaction() as s:
        cohort = make_cohort(s, tz=tz)
        team = make_team(s, cohort)
        cohort_id, team_id = cohort.id, team.id
    dispatch(ctx, datetime(2026, 12, 7, 16, 45, tzinfo=UTC))  # session 1 reminder sent
    with ctx.db.transaction() as s:
        update_cohort(s, s.get(Cohort, cohort_id), session_time=time(14, 0))
    dispatch(ctx, datetime(2026, 12, 7, 16, 46, tzinfo=UTC))
    with ctx.db.transaction() as s:
        rows = rows_of(s, s.get(Team, team_id))
        assert rows["session:1:reminder"].state == "done"
        assert local(rows["session:1:followup"], tz) == _ny(2026, 12, 7, 15, 30)
        assert local(rows["session:5:reminder"], tz) == _ny(2026, 12, 16, 13, 0)
        assert rows["session:5:reminder"].note.startswith("rescheduled")


def test_postponing_out_of_order_is_refused(db) -> None:
    with db.transaction() as s:
        cohort = make_cohort(s)
        version = cohort.schedule_version
        with pytest.raises(UserError, match="session 4"):
            postpone_session(s, cohort=cohort, number=3, new_day=date(2026, 12, 15))
        with pytest.raises(UserError, match="session 2"):
            postpone_session(s, cohort=cohort, number=3, new_day=date(2026, 12, 8))
        with pytest.raises(UserError, match="numbered 1 to 6"):
            postpone_session(s, cohort=cohort, number=7, new_day=date(2026, 12, 8))
        with pytest.raises(UserError, match="changeable"):
            update_cohort(s, cohort, topic="vte")
        assert cohort.schedule_version == version


def test_a_team_that_withdraws_has_its_pending_steps_cancelled(ctx) -> None:
    with ctx.db.transaction() as s:
        cohort = make_cohort(s)
        team = make_team(s, cohort)
        team_id = team.id
    dispatch(ctx, datetime(2026, 12, 7, 16, 45, tzinfo=UTC))
    with ctx.db.transaction() as s:
        s.get(Team, team_id).state = TeamState.WITHDRAWN.value
    dispatch(ctx, datetime(2026, 12, 7, 16, 46, tzinfo=UTC))
    with ctx.db.transaction() as s:
        states = {r.state for r in rows_of(s, s.get(Team, team_id)).values()}
        assert "pending" not in states
        assert {"done", "cancelled"} <= states


def test_coach_digests_are_rows_per_coach_without_a_team(db) -> None:
    with db.transaction() as s:
        cohort = make_cohort(s)
        make_team(s, cohort)
        first = add_person(s, None, None, name="Coach Ana")
        second = add_person(s, None, None, name="Coach Ben")
        cohort.coaches.extend([first, second])
        s.flush()
        result = sync_coach_digests(s, cohort)
        assert result.added == 2 * 15  # each day of the Dash and the morning after
        rows = list(
            s.execute(select(AgendaItem).where(AgendaItem.cohort_id == cohort.id)).scalars()
        )
        assert all(r.team_id is None for r in rows)
        assert {r.coach_id for r in rows} == {first.id, second.id}
        assert len({(r.coach_id, r.step_key) for r in rows}) == len(rows)
        assert f"digest:{first.id}:2026-12-07" in {r.step_key for r in rows}
        # A coach leaving the cohort: their future digests are cancelled.
        cohort.coaches.remove(second)
        s.flush()
        assert sync_coach_digests(s, cohort).cancelled == 15
        assert sync_coach_digests(s, cohort).added == 0


def test_curriculum_timing_rules_come_from_the_file(db) -> None:
    """Another topic, other times: the agenda follows the curriculum, not constants."""
    from dash.curriculum import load_curriculum

    tz = "Europe/Madrid"
    with db.transaction() as s:
        cohort = make_cohort(s, topic="sepsis", tz=tz)
        team = make_team(s, cohort)
        sync_team(s, team)
        rows = rows_of(s, team)
        sched = load_curriculum("sepsis").schedule
        prompts = [r for r in rows.values() if r.kind == "daily_prompt"]
        assert {local(r, tz).time() for r in prompts} == {sched.daily_prompt_time}
        start = cohort.start_date - timedelta(days=sched.baseline_days)
        assert min(r.local_day for r in prompts) == start
        nudge = rows[f"nudge:{start.isoformat()}"]
        assert nudge.due_at - prompts[0].due_at == timedelta(minutes=sched.nudge_after_minutes)
