"""Compiling a team's two-week agenda from its cohort and curriculum into AgendaItem rows.

Every timed step is a row, unique on (team, step key), due at a UTC instant computed from the
unit's wall-clock time (dash.timeutil.local_to_utc, so a DST change between two sessions still
lands at 12:30 local). Compiling is idempotent: `sync_team` turns the rows into what the plan
says now, rewriting only what has not happened yet (pending rows are updated, added or
cancelled; done, skipped and claimed rows are left alone) and records the cohort's schedule
version on the team, so editing a cohort (postpone a session, move the time) reaches every team
on the next tick.

Step keys (stable across versions, so a rewrite updates rather than duplicates):
  session:<n>:reminder, session:<n>:followup     one per session
  daily:<YYYY-MM-DD>:<measure key>               one per measure per asked day (baseline too)
  nudge:<YYYY-MM-DD>                             evaluated when due; silent if data arrived
  summary:mid, summary:final                     to the team and its leader, with the chart
  pdsa:<cycle number>:followup                   added lazily when a cycle is planned with a date
  digest:<coach id>:<YYYY-MM-DD>                 coach rows (team NULL, coach set)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dash.curriculum import Curriculum, load_curriculum
from dash.models import AgendaItem, AgendaState, Cohort, PdsaCycle, PdsaState, Team, TeamState
from dash.schedule import asked_days, dash_days, last_day, session_slots
from dash.timeutil import local_to_utc, to_local

#: Team states whose agenda is live; any other state has its pending rows cancelled.
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
    final_after = max(slot.ends_at for slot in slots)
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
    """Compile (or re-compile) `team`'s agenda for its cohort's current schedule version."""
    cohort = team.cohort
    curriculum = load_curriculum(cohort.topic)
    existing = _team_rows(session, team.id)
    if team.state not in LIVE_TEAM_STATES:
        result = _apply(session, existing, [], cohort=cohort, team_id=team.id)
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


def teams_needing_sync(session: Session) -> list[Team]:
    """Enrolled teams whose agenda is not compiled for their cohort's schedule version, and
    teams that left with rows still pending (locked, skipping rows another ticker holds)."""
    stale_version = (Team.agenda_version.is_(None)) | (
        Team.agenda_version != Cohort.schedule_version
    )
    live = (
        select(Team)
        .join(Cohort, Cohort.id == Team.cohort_id)
        .where(Team.state.in_(LIVE_TEAM_STATES), stale_version)
    )
    left = select(Team).where(
        Team.state.not_in(LIVE_TEAM_STATES),
        select(AgendaItem.id)
        .where(AgendaItem.team_id == Team.id, AgendaItem.state == AgendaState.PENDING.value)
        .exists(),
    )
    teams: list[Team] = []
    for query in (live, left):
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=Team)
        teams.extend(session.execute(query.order_by(Team.id)).scalars())
    return teams


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


def cohorts_for_digests(session: Session, today_utc: datetime) -> list[Cohort]:
    """Cohorts with an enrolled team that have not long ended (locked on PostgreSQL)."""
    query = (
        select(Cohort)
        .where(
            select(Team.id)
            .where(Team.cohort_id == Cohort.id, Team.state.in_(LIVE_TEAM_STATES))
            .exists()
        )
        .order_by(Cohort.id)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Cohort)
    cohorts = []
    for cohort in session.execute(query).scalars():
        curriculum = load_curriculum(cohort.topic)
        end = local_to_utc(last_day(cohort, curriculum), time(0), cohort.timezone)
        if today_utc <= end + DIGEST_SYNC_MARGIN:
            cohorts.append(cohort)
    return cohorts


def sync_pdsa_followups(session: Session) -> SyncResult:
    """A follow-up row for every planned cycle with a test date, of every enrolled team.

    Scanned each tick rather than hooked into the PDSA conversation, so the engine need not
    know the scheduler exists: a plan completed at 15:02 gets its row on the next tick. A
    changed test date moves a row that has not gone out; a cycle already reported is silent
    when its row comes due (see scheduler.steps).
    """
    result = SyncResult()
    cycles = session.execute(
        select(PdsaCycle, Team)
        .join(Team, Team.id == PdsaCycle.team_id)
        .where(
            PdsaCycle.state == PdsaState.PLANNED.value,
            PdsaCycle.test_date.is_not(None),
            Team.state.in_(LIVE_TEAM_STATES),
        )
        .order_by(PdsaCycle.id)
    ).all()
    for cycle, team in cycles:
        cohort = team.cohort
        step = pdsa_followup_step(cohort, load_curriculum(cohort.topic), cycle)
        if step is None:
            continue
        row = session.execute(
            select(AgendaItem).where(
                AgendaItem.team_id == team.id, AgendaItem.step_key == step.step_key
            )
        ).scalar_one_or_none()
        result += _apply(
            session,
            {step.step_key: row} if row is not None else {},
            [step],
            cohort=cohort,
            team_id=team.id,
            cancel_missing=False,
        )
    session.flush()
    return result
