"""Compiling a team's two-week agenda from its cohort and curriculum into AgendaItem rows.

Every timed step is a row, unique on (team, step key), due at a UTC instant computed from the
unit's wall-clock time (dash.timeutil.local_to_utc, so a DST change between two sessions still
lands at 12:30 local). Compiling is idempotent: `sync_team` turns the rows into what the plan
says now, rewriting only what has not happened yet (pending rows are updated, added or
cancelled; done, skipped and claimed rows are left alone) and records the cohort's schedule
version on the team, so editing a cohort (postpone a session, move the time) reaches every team
on the next tick.

What a tick re-compiles is found by two indexed queries, so a tick with nothing changed costs
the same for 10 teams as for 10,000: cohorts whose `sync_version` (bumped by any change of
their schedule or coaches) is not the `synced_version` compiled last (ix_cohorts_sync_due), and
teams enrolled but never compiled or left with a compiled agenda (ix_teams_agenda_due). Only
those cohorts' teams and digests are re-planned.

Step keys (stable across versions, so a rewrite updates rather than duplicates):
  session:<n>:reminder, session:<n>:followup     one per session
  daily:<YYYY-MM-DD>:<measure key>               one per measure per asked day (baseline too)
  nudge:<YYYY-MM-DD>                             evaluated when due; silent if data arrived
  summary:mid, summary:final                     to the team and its leader, with the chart
  pdsa:<cycle number>:followup                   added lazily when a cycle is planned with a date
  digest:<coach id>:<YYYY-MM-DD>                 coach rows (team NULL, coach set)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, text, update
from sqlalchemy.orm import Session

from dash.curriculum import Curriculum, load_curriculum
from dash.models import AgendaItem, AgendaState, Cohort, PdsaCycle, PdsaState, Team, TeamState
from dash.models.cohorts import COHORT_SYNC_DUE
from dash.models.pdsa import PDSA_FOLLOWUP_DUE
from dash.models.teams import TEAM_AGENDA_DUE
from dash.schedule import asked_days, dash_days, last_day, session_slots
from dash.timeutil import local_to_utc, to_local

#: Team states whose agenda is live; any other state has its pending rows cancelled.
#: (dash.models.teams.TEAM_AGENDA_DUE, an index predicate, spells the same state out.)
LIVE_TEAM_STATES = (TeamState.ENROLLED.value,)
#: Coach digests go out on each day of the Dash and the morning after it ends.
DIGEST_DAYS_AFTER_END = 1
#: A cohort's coach digests stop being re-synced this long after its last day.
DIGEST_SYNC_MARGIN = timedelta(days=3)


@dataclass(frozen=True)
class PlannedStep:
    """One row the plan wants: what, when (UTC and local day), how late it may still go."""

    step_key: str
    kind: str
    due_at: datetime
    local_day: date
    grace_minutes: int
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class SyncResult:
    added: int = 0
    updated: int = 0
    cancelled: int = 0

    def __iadd__(self, other: SyncResult) -> SyncResult:
        self.added += other.added
        self.updated += other.updated
        self.cancelled += other.cancelled
        return self


def _at(day: date, at: time, tz: str) -> datetime:
    return local_to_utc(day, at, tz)


def plan_team(cohort: Cohort, curriculum: Curriculum) -> list[PlannedStep]:
    """Every timed step of one team of `cohort`, PDSA follow-ups aside (they depend on plans)."""
    tz = cohort.timezone
    sched = curriculum.schedule
    grace = sched.grace_minutes
    steps: list[PlannedStep] = []

    slots = session_slots(cohort, curriculum)
    for slot in slots:
        reminder = slot.starts_at - timedelta(minutes=sched.reminder_before_minutes)
        followup = slot.starts_at + timedelta(minutes=sched.followup_after_minutes)
        info = {"session": slot.number, "day": slot.day.isoformat(), "start": f"{slot.start:%H:%M}"}
        steps.append(
            PlannedStep(
                f"session:{slot.number}:reminder",
                "session_reminder",
                reminder,
                to_local(reminder, tz).date(),
                grace["session_reminder"],
                info,
            )
        )
        steps.append(
            PlannedStep(
                f"session:{slot.number}:followup",
                "session_followup",
                followup,
                to_local(followup, tz).date(),
                grace["session_followup"],
                info,
            )
        )

    for day in asked_days(cohort, curriculum):
        prompt_at = _at(day, sched.daily_prompt_time, tz)
        for measure in curriculum.measures:
            steps.append(
                PlannedStep(
                    f"daily:{day.isoformat()}:{measure.key}",
                    "daily_prompt",
                    prompt_at,
                    day,
                    grace["daily_prompt"],
                    {"measure": measure.key, "day": day.isoformat()},
                )
            )
        nudge_at = prompt_at + timedelta(minutes=sched.nudge_after_minutes)
        steps.append(
            PlannedStep(
                f"nudge:{day.isoformat()}",
                "nudge",
                nudge_at,
                day,
                grace["nudge_reporter"],
                {"day": day.isoformat()},
            )
        )

    by_number = {slot.number: slot for slot in slots}
    mid_after = by_number[3].ends_at
    steps.append(
        _summary_step(
            "summary:mid", "midpoint_summary", by_number[3].day, mid_after, cohort, curriculum
        )
    )
    # "Your two-week Dash is complete" comes after the last day's counts were asked for (and
    # nudged), never before them.
    last_asked = _at(last_day(cohort, curriculum), sched.daily_prompt_time, tz)
    final_after = max(
        max(slot.ends_at for slot in slots),
        last_asked + timedelta(minutes=sched.nudge_after_minutes),
    )
    steps.append(
        _summary_step(
            "summary:final",
            "final_summary",
            max(last_day(cohort, curriculum), to_local(final_after, tz).date()),
            final_after,
            cohort,
            curriculum,
        )
    )
    return steps


def _summary_step(
    key: str, kind: str, day: date, not_before: datetime, cohort: Cohort, curriculum: Curriculum
) -> PlannedStep:
    """A summary at `summary_time` on `day`, or the next day if that is before `not_before`."""
    at = curriculum.schedule.summary_time
    due = _at(day, at, cohort.timezone)
    if due < not_before:
        day = day + timedelta(days=1)
        due = _at(day, at, cohort.timezone)
    return PlannedStep(
        key, kind, due, day, curriculum.schedule.grace_minutes[kind], {"day": day.isoformat()}
    )


def plan_digests(cohort: Cohort, curriculum: Curriculum) -> list[tuple[int, PlannedStep]]:
    """(coach id, step) for each coach of the cohort, each morning of the Dash and the day after."""
    sched = curriculum.schedule
    days = dash_days(cohort, curriculum)
    days += [days[-1] + timedelta(days=i + 1) for i in range(DIGEST_DAYS_AFTER_END)]
    planned: list[tuple[int, PlannedStep]] = []
    for coach in sorted(cohort.coaches, key=lambda c: c.id):
        for day in days:
            planned.append(
                (
                    coach.id,
                    PlannedStep(
                        f"digest:{coach.id}:{day.isoformat()}",
                        "coach_digest",
                        _at(day, sched.coach_digest_time, cohort.timezone),
                        day,
                        sched.grace_minutes["coach_digest"],
                        {"day": day.isoformat()},
                    ),
                )
            )
    return planned


def plan_story_digests(cohort: Cohort, curriculum: Curriculum) -> list[PlannedStep]:
    """The weekly "all teach, all learn" digest: after the last session of each week.

    Goes at the curriculum's summary time on the day of session 3 and session 6, with the
    stories of adopted changes shared that week (dash.sharing decides what may be shown).
    """
    slots = {slot.number: slot for slot in session_slots(cohort, curriculum)}
    steps: list[PlannedStep] = []
    for week, number in enumerate((3, 6)):
        day = slots[number].day
        week_start = cohort.start_date + timedelta(days=7 * week)
        steps.append(
            PlannedStep(
                f"stories:{week_start.isoformat()}",
                "story_digest",
                max(
                    _at(day, curriculum.schedule.summary_time, cohort.timezone),
                    slots[number].ends_at,
                ),
                day,
                curriculum.schedule.grace_minutes["final_summary"],
                {"week_start": week_start.isoformat()},
            )
        )
    return steps


def pdsa_followup_step(
    cohort: Cohort, curriculum: Curriculum, cycle: PdsaCycle
) -> PlannedStep | None:
    """The follow-up the day after a planned cycle's test date (None without a date)."""
    if cycle.test_date is None:
        return None
    day = cycle.test_date + timedelta(days=1)
    sched = curriculum.schedule
    return PlannedStep(
        f"pdsa:{cycle.number}:followup",
        "pdsa_followup",
        _at(day, sched.pdsa_followup_time, cohort.timezone),
        day,
        sched.grace_minutes["pdsa_followup"],
        {"cycle_id": cycle.id, "cycle": cycle.number, "test_date": cycle.test_date.isoformat()},
    )


# ---------------------------------------------------------------------------------------------
# Writing the plan into rows


def _apply(
    session: Session,
    existing: dict[str, AgendaItem],
    planned: Iterable[PlannedStep],
    *,
    cohort: Cohort,
    team_id: int | None,
    coach_for: dict[str, int] | None = None,
    cancel_missing: bool = True,
    keep_prefixes: tuple[str, ...] = (),
) -> SyncResult:
    """Make `existing` rows match `planned`: only pending (or cancelled) rows are rewritten."""
    result = SyncResult()
    version = cohort.schedule_version
    wanted: set[str] = set()
    for step in planned:
        wanted.add(step.step_key)
        row = existing.get(step.step_key)
        if row is None:
            session.add(
                AgendaItem(
                    cohort_id=cohort.id,
                    team_id=team_id,
                    coach_id=(coach_for or {}).get(step.step_key),
                    step_key=step.step_key,
                    kind=step.kind,
                    due_at=step.due_at,
                    local_day=step.local_day,
                    grace_minutes=step.grace_minutes,
                    payload=step.payload,
                    version=version,
                    state=AgendaState.PENDING.value,
                )
            )
            result.added += 1
            continue
        if row.state not in (AgendaState.PENDING.value, AgendaState.CANCELLED.value):
            continue  # sent, skipped or being sent: history is not rewritten
        changed = (
            row.state == AgendaState.CANCELLED.value
            or row.kind != step.kind
            or row.due_at != step.due_at
            or row.local_day != step.local_day
            or row.payload != step.payload
        )
        if changed:
            row.kind = step.kind
            row.due_at = step.due_at
            row.local_day = step.local_day
            row.grace_minutes = step.grace_minutes
            row.payload = dict(step.payload)
            row.state = AgendaState.PENDING.value
            row.note = f"rescheduled (schedule version {version})"
            result.updated += 1
        row.version = version
    if cancel_missing:
        for key, row in existing.items():
            if key in wanted or key.startswith(keep_prefixes):
                continue
            if row.state == AgendaState.PENDING.value:
                row.state = AgendaState.CANCELLED.value
                row.note = f"no longer in the schedule (version {version})"
                result.cancelled += 1
    return result


def _team_rows(session: Session, team_id: int) -> dict[str, AgendaItem]:
    rows = session.execute(select(AgendaItem).where(AgendaItem.team_id == team_id)).scalars()
    return {row.step_key: row for row in rows}


def sync_team(session: Session, team: Team) -> SyncResult:
    """Compile (or re-compile) `team`'s agenda for its cohort's current schedule version; a
    team that left has its pending rows cancelled and its agenda_version cleared (so a later
    re-enrolment compiles afresh)."""
    cohort = team.cohort
    curriculum = load_curriculum(cohort.topic)
    existing = _team_rows(session, team.id)
    if team.state not in LIVE_TEAM_STATES:
        result = _apply(session, existing, [], cohort=cohort, team_id=team.id)
        team.agenda_version = None
    else:
        result = _apply(
            session,
            existing,
            plan_team(cohort, curriculum),
            cohort=cohort,
            team_id=team.id,
            keep_prefixes=("pdsa:",),
        )
        team.agenda_version = cohort.schedule_version
    session.flush()
    return result


def _locked(session: Session, query: Any, of: Any) -> Any:
    """FOR UPDATE SKIP LOCKED on PostgreSQL (two tickers never compile the same thing);
    SQLite has a single writer."""
    if session.get_bind().dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True, of=of)
    return query


def cohorts_to_sync(session: Session) -> list[Cohort]:
    """Cohorts changed since the scheduler last compiled them (their schedule or coaches), by
    the partial index ix_cohorts_sync_due: none on an idle tick, however many cohorts run."""
    query = select(Cohort).where(text(COHORT_SYNC_DUE)).order_by(Cohort.id)
    return list(session.execute(_locked(session, query, Cohort)).scalars())


def teams_needing_sync(session: Session, rescheduled: Sequence[Cohort] = ()) -> list[Team]:
    """Teams enrolled but never compiled and teams that left with a compiled agenda (index
    ix_teams_agenda_due), and the enrolled teams of the `rescheduled` cohorts whose agenda is
    for an older schedule version; locked, skipping teams another ticker holds."""
    queries = [select(Team).where(text(TEAM_AGENDA_DUE))]
    if rescheduled:
        queries.append(
            select(Team)
            .join(Cohort, Cohort.id == Team.cohort_id)
            .where(
                Team.cohort_id.in_([c.id for c in rescheduled]),
                Team.state.in_(LIVE_TEAM_STATES),
                Team.agenda_version != Cohort.schedule_version,
            )
        )
    teams: dict[int, Team] = {}
    # Sorted here, not by ORDER BY: for that SQLite walks all teams in id order, no index.
    for query in queries:
        for team in session.execute(_locked(session, query, Team)).scalars():
            teams.setdefault(team.id, team)
    return [teams[team_id] for team_id in sorted(teams)]


def cohorts_behind(session: Session, cohort_ids: Iterable[int]) -> set[int]:
    """Of `cohort_ids`, those with an enrolled team still compiled for an older schedule
    version (one another transaction held during this sync): not yet synced."""
    ids = list(cohort_ids)
    if not ids:
        return set()
    rows = session.execute(
        select(Team.cohort_id)
        .join(Cohort, Cohort.id == Team.cohort_id)
        .where(
            Team.cohort_id.in_(ids),
            Team.state.in_(LIVE_TEAM_STATES),
            Team.agenda_version != Cohort.schedule_version,
        )
        .distinct()
    )
    return set(rows.scalars())


def locked_cohorts(session: Session, cohort_ids: Iterable[int]) -> list[Cohort]:
    """The cohorts of `cohort_ids`, locked like cohorts_to_sync."""
    ids = sorted(set(cohort_ids))
    if not ids:
        return []
    query = select(Cohort).where(Cohort.id.in_(ids)).order_by(Cohort.id)
    return list(session.execute(_locked(session, query, Cohort)).scalars())


def wants_digests(session: Session, cohort: Cohort, now: datetime) -> bool:
    """A cohort has digest rows while it has an enrolled team and has not long ended."""
    if now > _digests_end(cohort) + DIGEST_SYNC_MARGIN:
        return False
    live = session.execute(
        select(Team.id)
        .where(Team.cohort_id == cohort.id, Team.state.in_(LIVE_TEAM_STATES))
        .limit(1)
    ).first()
    return live is not None


def _digests_end(cohort: Cohort) -> datetime:
    curriculum = load_curriculum(cohort.topic)
    return local_to_utc(last_day(cohort, curriculum), time(0), cohort.timezone)


def sync_coach_digests(session: Session, cohort: Cohort) -> SyncResult:
    """The cohort's coach digest rows for its current coaches (a removed coach's are cancelled)."""
    curriculum = load_curriculum(cohort.topic)
    planned = plan_digests(cohort, curriculum)
    rows = session.execute(
        select(AgendaItem).where(
            AgendaItem.cohort_id == cohort.id,
            AgendaItem.team_id.is_(None),
            AgendaItem.kind == "coach_digest",
        )
    ).scalars()
    existing = {row.step_key: row for row in rows}
    return _apply(
        session,
        existing,
        [step for _, step in planned],
        cohort=cohort,
        team_id=None,
        coach_for={step.step_key: coach_id for coach_id, step in planned},
    )


def sync_story_digests(session: Session, cohort: Cohort) -> SyncResult:
    """The cohort's weekly story digest rows (cohort-wide: no team, no coach)."""
    rows = session.execute(
        select(AgendaItem).where(
            AgendaItem.cohort_id == cohort.id,
            AgendaItem.team_id.is_(None),
            AgendaItem.kind == "story_digest",
        )
    ).scalars()
    existing = {row.step_key: row for row in rows}
    planned = plan_story_digests(cohort, load_curriculum(cohort.topic))
    return _apply(session, existing, planned, cohort=cohort, team_id=None)


def sync_pdsa_followups(
    session: Session, teams: Iterable[int] = (), cohorts: Iterable[int] = ()
) -> SyncResult:
    """A follow-up row for each planned cycle with a test date not compiled for that date yet
    (index ix_pdsa_cycles_followup_due), and for every planned cycle of `teams` (just
    (re)compiled) and of `cohorts` (their time zone or schedule changed); enrolled teams only.

    Found each tick rather than hooked into the PDSA conversation, so the engine need not
    know the scheduler exists: a plan completed at 15:02 gets its row on the next tick. A
    changed test date moves a row that has not gone out; a cycle already reported is silent
    when its row comes due (see scheduler.steps).
    """
    result = SyncResult()
    team_ids, cohort_ids = sorted(set(teams)), sorted(set(cohorts))
    wanted = [text(PDSA_FOLLOWUP_DUE)]
    planned = (PdsaCycle.state == PdsaState.PLANNED.value, PdsaCycle.test_date.is_not(None))
    if team_ids:
        wanted.append(and_(PdsaCycle.team_id.in_(team_ids), *planned))
    if cohort_ids:
        in_cohorts = select(Team.id).where(Team.cohort_id.in_(cohort_ids))
        wanted.append(and_(PdsaCycle.team_id.in_(in_cohorts), *planned))
    cycles = list(session.execute(select(PdsaCycle).where(or_(*wanted))).scalars())
    if not cycles:
        return result
    by_team = {
        team.id: team
        for team in session.execute(
            select(Team).where(Team.id.in_({c.team_id for c in cycles}))
        ).scalars()
    }
    live = [c for c in cycles if by_team[c.team_id].state in LIVE_TEAM_STATES]
    existing = (
        {
            (row.team_id, row.step_key): row
            for row in session.execute(
                select(AgendaItem).where(
                    AgendaItem.team_id.in_({c.team_id for c in live}),
                    AgendaItem.step_key.startswith("pdsa:"),
                )
            ).scalars()
        }
        if live
        else {}
    )
    for cycle in sorted(live, key=lambda c: c.id):
        team = by_team[cycle.team_id]
        cohort = team.cohort
        step = pdsa_followup_step(cohort, load_curriculum(cohort.topic), cycle)
        if step is None:
            continue
        row = existing.get((team.id, step.step_key))
        result += _apply(
            session,
            {step.step_key: row} if row is not None else {},
            [step],
            cohort=cohort,
            team_id=team.id,
            cancel_missing=False,
        )
    session.flush()
    # Core, so the cycle's updated_at (what the team last did) is left as it was; a team that
    # is not enrolled is marked too: it comes back through `teams` when it is compiled again.
    table = PdsaCycle.__table__
    session.execute(
        update(table)
        .where(table.c.id == bindparam("cycle_id"))
        .values(followup_for=bindparam("compiled_for"), updated_at=table.c.updated_at),
        [{"cycle_id": c.id, "compiled_for": c.test_date} for c in cycles],
    )
    return result
