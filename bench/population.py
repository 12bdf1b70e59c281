"""A realistic population of enrolled teams, built fast, for benchmarks and scale tests.

Why a bulk builder: the benchmarks need 10 to 10,000 teams, and building each through the
enrolment conversation would measure the conversation, not the part under test. Rows are
inserted with the same models and constraints (Core executemany), then each team's agenda is
compiled by the scheduler's own `sync_team`, exactly as the first tick after sign-off does.

Each team: a key contact, one data reporter, one member and a leader, all on Telegram (chat id
= user id, so per-chat limits apply per person). The cohort is opioid-safety starting Monday
7 December 2026 in New York: daily prompts for its two measures at 18:00 local (23:00 UTC), so
`PROMPT_AT` has two prompts due per team.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from dash.actions.cohorts import create_cohort
from dash.db import Database
from dash.models import (
    Address,
    Measure,
    MeasureValue,
    Membership,
    Message,
    Organisation,
    Person,
    Role,
    Team,
    TeamState,
    Unit,
)

if TYPE_CHECKING:
    from scheduler.agenda import PlannedStep

START = date(2026, 12, 7)
TIMEZONE = "America/New_York"
#: 18:01 New York on the first day: both daily prompts of every team are due.
PROMPT_AT = datetime(2026, 12, 7, 23, 1, tzinfo=UTC)
#: Telegram chat ids of reporters are REPORTER_BASE + team index; other roles follow.
REPORTER_BASE = 700_000_000
ROLES = (
    (Role.KEY_CONTACT.value, 0),
    (Role.DATA_REPORTER.value, 1),
    (Role.MEMBER.value, 2),
    (Role.LEADER.value, 3),
)


@dataclass(frozen=True)
class Population:
    cohort_id: int
    start: date
    team_ids: list[int]
    coach_id: int
    reporter_chat_ids: list[int]


def _ids(session: Session, model: type, rows: list[dict]) -> list[int]:
    """Insert `rows` into `model` in one executemany; their ids in the same order."""
    if not rows:
        return []
    result = session.execute(
        insert(model).returning(model.id, sort_by_parameter_order=True),  # type: ignore[attr-defined]
        rows,
    )
    return [int(r[0]) for r in result]


def build(
    db: Database,
    teams: int,
    *,
    timezone: str = TIMEZONE,
    start: date = START,
    chat_base: int = REPORTER_BASE,
    compile_agendas: bool = True,
    tag: str = "",
) -> Population:
    """`teams` enrolled teams in one new cohort, with a coach; agendas compiled if asked."""
    with db.transaction() as s:
        coach = Person(name=f"Coach {tag}", email=f"coach{tag}@example.org", is_coach=True)
        s.add(coach)
        s.flush()
        cohort = create_cohort(
            s,
            topic="opioid-safety",
            start=start,
            timezone=timezone,
            session_time=time(12, 30),
            join_link="https://meet.example.org/dash",
            coaches=[coach],
        )
        s.flush()
        org_ids = _ids(s, Organisation, [{"name": f"Hospital {tag}{n}"} for n in range(teams)])
        unit_ids = _ids(s, Unit, [{"organisation_id": o, "name": "Ward 4B"} for o in org_ids])
        team_ids = _ids(
            s,
            Team,
            [
                {
                    "cohort_id": cohort.id,
                    "unit_id": u,
                    "name": f"Ward 4B, Hospital {tag}{n}",
                    "state": TeamState.ENROLLED.value,
                    "join_code": f"B{tag}{n:06d}",
                }
                for n, u in enumerate(unit_ids)
            ],
        )
        people: list[dict] = []
        chats: list[str] = []
        for n in range(teams):
            for role, offset in ROLES:
                chats.append(str(chat_base + offset * 10_000_000 + n))
                people.append(
                    {
                        "name": f"{role.replace('_', ' ').title()} {n}",
                        "language": "es" if n % 5 == 0 else "en",
                        "preferred_channel": "telegram",
                    }
                )
        person_ids = _ids(s, Person, people)
        s.execute(
            insert(Address),
            [
                {
                    "person_id": person_id,
                    "channel": "telegram",
                    "address": chat,
                    "chat_id": chat,
                    "verified": True,
                }
                for person_id, chat in zip(person_ids, chats, strict=True)
            ],
        )
        memberships = []
        for n, team_id in enumerate(team_ids):
            for k, (role, _offset) in enumerate(ROLES):
                memberships.append(
                    {"team_id": team_id, "person_id": person_ids[n * 4 + k], "role": role}
                )
        s.execute(insert(Membership), memberships)
        for n, team_id in enumerate(team_ids):
            s.execute(
                update(Team)
                .where(Team.id == team_id)
                .values(key_contact_id=person_ids[n * 4], leader_id=person_ids[n * 4 + 3])
            )
        cohort_id, coach_id = cohort.id, coach.id
    if compile_agendas:
        compile_all(db, team_ids)
    else:  # marked compiled so ticks leave them alone; add rows with add_due_prompts
        with db.transaction() as s:
            s.execute(update(Team).where(Team.cohort_id == cohort_id).values(agenda_version=1))
    return Population(
        cohort_id=cohort_id,
        start=start,
        team_ids=team_ids,
        coach_id=coach_id,
        reporter_chat_ids=[chat_base + 10_000_000 + n for n in range(teams)],
    )


def compile_all(db: Database, team_ids: list[int], chunk: int = 250) -> None:
    """Each team's agenda through the scheduler's `sync_team`, in chunks of transactions."""
    from scheduler.agenda import sync_team

    for start in range(0, len(team_ids), chunk):
        with db.transaction() as s:
            for team in s.execute(
                select(Team).where(Team.id.in_(team_ids[start : start + chunk]))
            ).scalars():
                sync_team(s, team)


def add_history(
    db: Database, pop: Population, days: int = 14, seed: int = 7, threads: int = 6
) -> None:
    """`days` of reported data for both measures and a short thread per team (dashboard load)."""
    rng = random.Random(seed)
    with db.transaction() as s:
        measures = list(
            s.execute(select(Measure).where(Measure.cohort_id == pop.cohort_id)).scalars()
        )
        reporters = dict(
            s.execute(
                select(Membership.team_id, Membership.person_id).where(
                    Membership.team_id.in_(pop.team_ids),
                    Membership.role == Role.DATA_REPORTER.value,
                )
            ).all()
        )
        values: list[dict] = []
        messages: list[dict] = []
        base = datetime.combine(pop.start, time(23, 0), tzinfo=UTC)
        for team_id in pop.team_ids:
            for d in range(days):
                day = pop.start + timedelta(days=d)
                for m in measures:
                    if rng.random() < 0.1:
                        continue  # a missed day
                    den = rng.randint(4, 20)
                    num = sum(rng.random() < (0.5 + 0.02 * d) for _ in range(den))
                    values.append(
                        {
                            "team_id": team_id,
                            "measure_id": m.id,
                            "day": day,
                            "numerator": num,
                            "denominator": den,
                            "reported_by_id": reporters.get(team_id),
                            "reported_at": base + timedelta(days=d, minutes=20),
                            "channel": "telegram",
                        }
                    )
            for k in range(threads):
                messages.append(
                    {
                        "team_id": team_id,
                        "person_id": reporters.get(team_id),
                        "direction": "in" if k % 2 == 0 else "out",
                        "channel": "telegram",
                        "address": str(team_id),
                        "text": f"Message {k}: we tried the new checklist on the night shift.",
                        "status": "processed" if k % 2 == 0 else "sent",
                        "needs_reply": k == threads - 2,
                        "created_at": base + timedelta(hours=k * 7),
                        "updated_at": base + timedelta(hours=k * 7),
                    }
                )
        for start in range(0, len(values), 5000):
            s.execute(insert(MeasureValue), values[start : start + 5000])
        for start in range(0, len(messages), 5000):
            s.execute(insert(Message), messages[start : start + 5000])


def settle_before(db: Database, instant: datetime) -> int:
    """Mark agenda rows due before `instant` done, as if earlier ticks had run them."""
    from dash.models import AgendaItem

    with db.transaction() as s:
        result = s.execute(
            update(AgendaItem)
            .where(AgendaItem.due_at < instant, AgendaItem.state == "pending")
            .values(state="done", finished_at=instant, note="settled by bench.population")
        )
        return int(result.rowcount or 0)


def add_planned_steps(
    db: Database,
    pop: Population,
    wanted: Callable[[PlannedStep], bool],
    *,
    due_at: datetime | None = None,
    done_before: datetime | None = None,
) -> int:
    """Agenda rows, for every team, of the steps of the scheduler's own plan (`plan_team`)
    that `wanted` keeps, written in executemany chunks; how many.

    One home for the agendas the benchmarks write without `sync_team` (one team at a time
    would dominate a 10,000-team build): `due_at` moves every row to that instant; rows due
    before `done_before` are left done, as the ticks before it would have left them.
    """
    from dash.curriculum import load_curriculum
    from dash.models import AgendaItem, Cohort
    from scheduler.agenda import plan_team

    with db.transaction() as s:
        cohort = s.get(Cohort, pop.cohort_id)
        assert cohort is not None
        planned = []
        for step in plan_team(cohort, load_curriculum(cohort.topic)):
            if wanted(step):
                due = due_at or step.due_at
                planned.append((step, due, done_before is not None and due < done_before))
        rows = [
            {
                "cohort_id": cohort.id,
                "team_id": team_id,
                "step_key": step.step_key,
                "kind": step.kind,
                "due_at": due,
                "local_day": step.local_day,
                "grace_minutes": step.grace_minutes,
                "payload": step.payload,
                "version": cohort.schedule_version,
                "state": "done" if done else "pending",
                "finished_at": due if done else None,
            }
            for team_id in pop.team_ids
            for step, due, done in planned
        ]
        for start in range(0, len(rows), 5000):
            s.execute(insert(AgendaItem), rows[start : start + 5000])
        return len(rows)


def add_due_prompts(db: Database, pop: Population, at: datetime) -> int:
    """Agenda rows for the first day's daily prompts of every team, due at `at`, for
    populations built without compiled agendas: a run at real time then has exactly these
    to send."""
    return add_planned_steps(
        db,
        pop,
        lambda step: step.kind == "daily_prompt" and step.local_day == pop.start,
        due_at=at,
    )


def midday_zone(now: datetime) -> str:
    """An IANA zone (Etc/GMT±N) where `now` is around midday, far from any quiet hours."""
    shift = 12 - now.astimezone(UTC).hour  # hours east of UTC
    shift = max(-11, min(12, shift))
    return f"Etc/GMT{-shift:+d}"
