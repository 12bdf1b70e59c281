"""PDSA cycles as recorded: a team's open cycle and who answers its follow-up."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from dash.models import PdsaCycle, PdsaState, Person, Team

#: The states of a cycle still under way.
OPEN_STATES = (PdsaState.PLANNED.value, PdsaState.DONE.value, PdsaState.STUDIED.value)


def open_cycle(session: Session, team: Team) -> PdsaCycle | None:
    """The team's most recent cycle that is planned but not yet acted on."""
    return session.execute(
        select(PdsaCycle)
        .where(PdsaCycle.team_id == team.id, PdsaCycle.state.in_(OPEN_STATES))
        .order_by(PdsaCycle.number.desc())
        .limit(1)
    ).scalar_one_or_none()


def followup_person(session: Session, cycle: PdsaCycle) -> Person | None:
    """Who is asked how the test went: whoever planned it, else the key contact."""
    if cycle.created_by_id is not None:
        person = session.get(Person, cycle.created_by_id)
        if person is not None and not person.opted_out:
            return person
    team = session.get(Team, cycle.team_id)
    if team is not None and team.key_contact_id is not None:
        return session.get(Person, team.key_contact_id)
    return None
