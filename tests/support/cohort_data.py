"""A cohort of named teams with what they reported: measure values day by day and PDSA cycles
(the shared-learning and report tests build their cohorts with these)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select

from dash.actions.cohorts import create_cohort
from dash.models import (
    Measure,
    MeasureValue,
    Membership,
    Organisation,
    PdsaCycle,
    Role,
    Team,
    TeamState,
    Unit,
)
from dash.timeutil import local_date, utcnow
from tests.support.people import reachable

TZ = "America/New_York"


def today_local() -> date:
    return local_date(utcnow(), TZ)


def make_cohort(session, *, start: date | None = None, topic: str = "opioid-safety"):
    """A cohort that started nine days ago (so the board's 'today' is mid-Dash)."""
    return create_cohort(
        session,
        topic=topic,
        start=start or today_local() - timedelta(days=9),
        timezone=TZ,
        name="Opioid safety – winter",
    )


def make_team(
    session,
    cohort,
    name: str,
    *,
    people: list[dict] | None = None,
    state: str = TeamState.ENROLLED.value,
    group_chat: int | None = None,
) -> Team:
    """An enrolled team with its unit, organisation and members (each with one address)."""
    org = Organisation(name=f"{name} Hospital")
    session.add(org)
    session.flush()
    unit = Unit(organisation_id=org.id, name=name)
    session.add(unit)
    session.flush()
    team = Team(
        cohort_id=cohort.id,
        unit_id=unit.id,
        name=name,
        state=state,
        group_channel="telegram" if group_chat is not None else None,
        group_address=str(group_chat) if group_chat is not None else None,
    )
    session.add(team)
    session.flush()
    for i, spec in enumerate(people or []):
        person = reachable(name=spec.get("name", f"{name} nurse {i}"), **spec.get("fields", {}))
        person.language = spec.get("language", "en")
        session.add(person)
        session.flush()
        session.add(
            Membership(team_id=team.id, person_id=person.id, role=spec.get("role", "member"))
        )
        if spec.get("role") == Role.KEY_CONTACT.value:
            team.key_contact_id = person.id
    session.flush()
    return team


def primary(session, cohort) -> Measure:
    return session.execute(
        select(Measure).where(Measure.cohort_id == cohort.id, Measure.primary.is_(True))
    ).scalar_one()


def add_values(session, team, measure, first_day: date, pairs: list[tuple[int, int] | None]):
    """One current value per day from `first_day`; None leaves the day missing."""
    for offset, pair in enumerate(pairs):
        if pair is None:
            continue
        session.add(
            MeasureValue(
                team_id=team.id,
                measure_id=measure.id,
                day=first_day + timedelta(days=offset),
                numerator=pair[0],
                denominator=pair[1],
                channel="console",
            )
        )
    session.flush()


def add_cycle(
    session,
    team,
    number: int,
    change: str,
    *,
    act: str | None = None,
    story: str | None = None,
    test_date: date | None = None,
    story_shared_at: datetime | None = None,
    **texts: str,
) -> PdsaCycle:
    cycle = PdsaCycle(
        team_id=team.id,
        number=number,
        state="acted" if act else "planned",
        change_text=change,
        act=act,
        story=story,
        test_date=test_date,
        story_shared_at=story_shared_at,
        **texts,
    )
    session.add(cycle)
    session.flush()
    return cycle
