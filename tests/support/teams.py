"""Cohorts and enrolled teams built directly with the models, independent of the enrolment
conversation: people reachable on the console channel (or a phone), each with a role."""

from __future__ import annotations

import itertools
from datetime import date, time

from sqlalchemy import select

from dash.actions.cohorts import create_cohort
from dash.models import (
    AgendaItem,
    Cohort,
    Membership,
    Organisation,
    Person,
    Role,
    Team,
    TeamState,
    Unit,
)
from tests.support.people import reachable

_ids = itertools.count(1)


def add_person(
    session, team: Team | None, role: str | None, *, name: str, language: str = "en", **address
) -> Person:
    """A person (console address unless another address is given) with a role in `team`."""
    n = next(_ids)
    if not address:
        address = {"console": f"console:{name.lower().replace(' ', '-')}-{n}"}
    person = reachable(name=name, language=language, **address)
    session.add(person)
    session.flush()
    if team is not None and role is not None:
        session.add(Membership(team_id=team.id, person_id=person.id, role=role))
        session.flush()
    return person


def make_cohort(
    session,
    *,
    topic: str = "opioid-safety",
    start: date = date(2026, 12, 7),
    tz: str = "America/New_York",
    session_time: time = time(12, 30),
    join_link: str | None = "https://meet.example.org/dash",
) -> Cohort:
    return create_cohort(
        session,
        topic=topic,
        start=start,
        timezone=tz,
        session_time=session_time,
        join_link=join_link,
    )


def make_team(
    session,
    cohort: Cohort,
    *,
    name: str | None = None,
    reporters: int = 1,
    members: int = 1,
    leader: bool = True,
    language: str = "en",
) -> Team:
    """An enrolled team: a key contact, `reporters` data reporters, `members`, a leader."""
    n = next(_ids)
    org = Organisation(name=f"General Hospital {n}")
    session.add(org)
    session.flush()
    unit = Unit(organisation_id=org.id, name=f"Ward {n}")
    session.add(unit)
    session.flush()
    team = Team(
        cohort_id=cohort.id,
        unit_id=unit.id,
        name=name or f"Ward {n}",
        state=TeamState.ENROLLED.value,
        join_code=f"J{n:05d}",
    )
    session.add(team)
    session.flush()
    contact = add_person(session, team, Role.KEY_CONTACT.value, name=f"Kim {n}", language=language)
    team.key_contact_id = contact.id
    for i in range(reporters):
        add_person(session, team, Role.DATA_REPORTER.value, name=f"Rita {n}.{i}", language=language)
    for i in range(members):
        add_person(session, team, Role.MEMBER.value, name=f"Max {n}.{i}", language=language)
    if leader:
        boss = add_person(session, team, Role.LEADER.value, name=f"Lee {n}", language=language)
        team.leader_id = boss.id
    session.flush()
    return team


def rows_of(session, team: Team) -> dict[str, AgendaItem]:
    rows = session.execute(select(AgendaItem).where(AgendaItem.team_id == team.id)).scalars()
    return {row.step_key: row for row in rows}
