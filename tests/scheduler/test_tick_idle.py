"""The idle tick at scale: a tick with nothing changed and nothing due does the same work for
2 cohorts as for 10, yet a change to a cohort (coaches, sessions, time zone) or a team
(enrolled, left) is compiled on the next tick."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from dash.actions.assignments import assign_coach, unassign_coach
from dash.actions.cohorts import postpone_session, update_cohort
from dash.dbplans import StatementCounter, captured, explain, plan_nodes
from dash.models import AgendaItem, Cohort, PdsaCycle, Person, Team, TeamState
from scheduler.tick import dispatch
from tests.support.teams import add_person, make_cohort, make_team, rows_of

#: Before the cohorts of make_cohort start (7 December 2026): nothing is due yet.
QUIET = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def _add_cohorts(ctx, count: int, teams: int = 2) -> list[int]:
    ids = []
    with ctx.db.transaction() as s:
        for n in range(count):
            cohort = make_cohort(s)
            coach = add_person(s, None, None, name=f"Coach {n}")
            coach.is_coach = True
            assign_coach(s, cohort=cohort, coach=coach)
            for _ in range(teams):
                make_team(s, cohort)
            ids.append(cohort.id)
    return ids


def _idle_statements(ctx, at: datetime) -> int:
    with StatementCounter(ctx.db.engine) as counter:
        report = dispatch(ctx, at)
    assert report.compiled == 0 and report.claimed == 0 and report.rows_added == 0
    return counter.count


def _digests(s, cohort_id: int, kind: str = "coach_digest") -> list[AgendaItem]:
    return list(
        s.execute(
            select(AgendaItem).where(
                AgendaItem.cohort_id == cohort_id,
                AgendaItem.team_id.is_(None),
                AgendaItem.kind == kind,
            )
        ).scalars()
    )


def test_an_idle_tick_costs_the_same_for_2_and_10_cohorts(ctx) -> None:
    _add_cohorts(ctx, 2)
    first = dispatch(ctx, QUIET)
    assert first.compiled == 4 and first.rows_added > 0
    two = _idle_statements(ctx, QUIET + timedelta(minutes=1))

    _add_cohorts(ctx, 8)
    assert dispatch(ctx, QUIET + timedelta(minutes=2)).compiled == 16
    ten = _idle_statements(ctx, QUIET + timedelta(minutes=3))
    assert ten == two


def test_changing_a_cohorts_coaches_resyncs_only_its_digests(ctx) -> None:
    changed_id, other_id = _add_cohorts(ctx, 2)
    dispatch(ctx, QUIET)
    with ctx.db.transaction() as s:
        before_other = {r.step_key: (r.due_at, r.version) for r in _digests(s, other_id)}
        cohort = s.get(Cohort, changed_id)
        (old_coach,) = cohort.coaches
        new_coach = add_person(s, None, None, name="Coach Noor")
        new_coach.is_coach = True
        assign_coach(s, cohort=cohort, coach=new_coach)
        new_id = new_coach.id
    report = dispatch(ctx, QUIET + timedelta(minutes=1))
    assert report.compiled == 0  # the teams' agendas do not depend on the coaches
    assert report.rows_added == 15  # each day of the Dash and the morning after
    with ctx.db.transaction() as s:
        rows = _digests(s, changed_id)
        assert {r.coach_id for r in rows if r.state == "pending"} == {old_coach.id, new_id}
        other = {r.step_key: (r.due_at, r.version) for r in _digests(s, other_id)}
        assert other == before_other
        unassign_coach(s, cohort=s.get(Cohort, changed_id), coach=s.get(Person, old_coach.id))
    report = dispatch(ctx, QUIET + timedelta(minutes=2))
    assert report.rows_cancelled == 15
    with ctx.db.transaction() as s:
        pending = [r for r in _digests(s, changed_id) if r.state == "pending"]
        assert {r.coach_id for r in pending} == {new_id}
    assert _idle_statements(ctx, QUIET + timedelta(minutes=3)) > 0


def test_postponing_a_session_or_moving_the_time_zone_moves_the_digests(ctx) -> None:
    (cohort_id,) = _add_cohorts(ctx, 1)
    dispatch(ctx, QUIET)
    with ctx.db.transaction() as s:
        story = {r.step_key: r for r in _digests(s, cohort_id, "story_digest")}
        assert story["stories:2026-12-07"].local_day == date(2026, 12, 11)  # session 3, Friday
        postpone_session(s, cohort=s.get(Cohort, cohort_id), number=3, new_day=date(2026, 12, 12))
    report = dispatch(ctx, QUIET + timedelta(minutes=1))
    assert report.compiled == 2  # both teams' reminders and summaries follow
    with ctx.db.transaction() as s:
        story = {r.step_key: r for r in _digests(s, cohort_id, "story_digest")}
        assert story["stories:2026-12-07"].local_day == date(2026, 12, 12)
        digest = {r.step_key: r for r in _digests(s, cohort_id)}
        (key,) = [k for k in digest if k.endswith(":2026-12-07")]
        new_york = digest[key].due_at
        update_cohort(s, s.get(Cohort, cohort_id), timezone="America/Los_Angeles")
    dispatch(ctx, QUIET + timedelta(minutes=2))
    with ctx.db.transaction() as s:
        digest = {r.step_key: r for r in _digests(s, cohort_id)}
        assert digest[key].due_at - new_york == timedelta(hours=3)
        assert digest[key].state == "pending"


def test_a_first_team_enrolling_late_brings_the_cohorts_digests(ctx) -> None:
    with ctx.db.transaction() as s:
        cohort = make_cohort(s)
        coach = add_person(s, None, None, name="Coach Ana")
        coach.is_coach = True
        assign_coach(s, cohort=cohort, coach=coach)
        team = make_team(s, cohort)
        team.state = TeamState.AWAITING_SIGNOFF.value
        cohort_id, team_id = cohort.id, team.id
    dispatch(ctx, QUIET)
    with ctx.db.transaction() as s:
        assert _digests(s, cohort_id) == []  # no enrolled team: no digests yet
        s.get(Team, team_id).state = TeamState.ENROLLED.value
    report = dispatch(ctx, QUIET + timedelta(minutes=1))
    assert report.compiled == 1
    with ctx.db.transaction() as s:
        assert len(_digests(s, cohort_id)) == 15
        assert len(_digests(s, cohort_id, "story_digest")) == 2


def test_a_team_that_leaves_and_comes_back_gets_its_agenda_again(ctx) -> None:
    (cohort_id,) = _add_cohorts(ctx, 1, teams=1)
    dispatch(ctx, QUIET)
    with ctx.db.transaction() as s:
        (team,) = s.execute(select(Team).where(Team.cohort_id == cohort_id)).scalars()
        team.state = TeamState.WITHDRAWN.value
        team_id = team.id
    assert dispatch(ctx, QUIET + timedelta(minutes=1)).rows_cancelled > 0
    with ctx.db.transaction() as s:
        assert "pending" not in {r.state for r in rows_of(s, s.get(Team, team_id)).values()}
        s.get(Team, team_id).state = TeamState.ENROLLED.value
    dispatch(ctx, QUIET + timedelta(minutes=2))
    with ctx.db.transaction() as s:
        states = {r.state for r in rows_of(s, s.get(Team, team_id)).values()}
        assert states == {"pending"}


def _plan_cycles(ctx, cohort_ids: list[int], test_date: date = date(2026, 12, 9)) -> list[int]:
    """A planned PDSA cycle with a test date for every team of `cohort_ids`."""
    ids = []
    with ctx.db.transaction() as s:
        teams = s.execute(select(Team).where(Team.cohort_id.in_(cohort_ids))).scalars()
        for team in teams:
            cycle = PdsaCycle(
                team_id=team.id,
                number=1,
                state="planned",
                change_text="Huddle at 07:00",
                test_date=test_date,
            )
            s.add(cycle)
            s.flush()
            ids.append(cycle.id)
    return ids


def test_planned_pdsa_cycles_do_not_make_the_idle_tick_grow(ctx) -> None:
    _plan_cycles(ctx, _add_cohorts(ctx, 2))
    assert dispatch(ctx, QUIET).rows_added > 0
    two = _idle_statements(ctx, QUIET + timedelta(minutes=1))
    _plan_cycles(ctx, _add_cohorts(ctx, 8))
    dispatch(ctx, QUIET + timedelta(minutes=2))
    assert _idle_statements(ctx, QUIET + timedelta(minutes=3)) == two


def test_a_moved_test_date_moves_the_follow_up_and_keeps_the_cycles_updated_at(ctx) -> None:
    (cycle_id,) = _plan_cycles(ctx, _add_cohorts(ctx, 1, teams=1))
    dispatch(ctx, QUIET)
    with ctx.db.transaction() as s:
        cycle = s.get(PdsaCycle, cycle_id)
        assert rows_of(s, s.get(Team, cycle.team_id))["pdsa:1:followup"].local_day == date(
            2026, 12, 10
        )
        cycle.test_date = date(2026, 12, 14)
        s.flush()
        updated_at = cycle.updated_at
    report = dispatch(ctx, QUIET + timedelta(minutes=1))
    assert report.rows_updated == 1
    with ctx.db.transaction() as s:
        cycle = s.get(PdsaCycle, cycle_id)
        followup = rows_of(s, s.get(Team, cycle.team_id))["pdsa:1:followup"]
        assert followup.local_day == date(2026, 12, 15)
        assert followup.payload["test_date"] == "2026-12-14"
        assert cycle.updated_at == updated_at  # the team's last activity is not the tick's


@pytest.mark.postgres_only(reason="EXPLAIN plans are PostgreSQL's")
def test_an_idle_tick_finds_what_changed_through_the_partial_indexes(ctx) -> None:
    """The only reads of cohorts and teams an idle tick makes can be answered from the
    partial indexes of what is due (which hold nothing when nothing changed)."""
    _plan_cycles(ctx, _add_cohorts(ctx, 2))
    dispatch(ctx, QUIET)
    with captured(ctx.db) as seen:
        dispatch(ctx, QUIET + timedelta(minutes=1))
    wanted = {  # table: (the index, a phrase of its predicate in the query)
        "cohorts": ("ix_cohorts_sync_due", "synced_version <> sync_version"),
        "teams": ("ix_teams_agenda_due", "agenda_version IS NULL"),
        "pdsa_cycles": ("ix_pdsa_cycles_followup_due", "followup_for IS NULL"),
    }
    found = set()
    for statement, params in seen:
        for table, (index, phrase) in wanted.items():
            if f"FROM {table}" not in statement or phrase not in statement:
                continue
            nodes = list(plan_nodes(explain(ctx.db, statement, params, seqscan=False)["Plan"]))
            scans = {(n["Node Type"], n.get("Relation Name"), n.get("Index Name")) for n in nodes}
            assert ("Seq Scan", table, None) not in scans, statement
            assert index in {n.get("Index Name") for n in nodes}, scans
            found.add(table)
    assert found == set(wanted)
