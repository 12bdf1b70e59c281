"""Where a key contact's unfinished enrolment stands, and asking them what it waits for.

Shared by the enrolment flow (JOIN again, HELP) and by identity's choice of team (a message
from a key contact whose team is not enrolled yet), so neither dead-ends.
"""

from __future__ import annotations

from dash.actions.enrolment import Question, open_question
from dash.engine.turn import Turn
from dash.models import Person, Team
from dash.queries import enrolment as enrolment_queries


def put(turn: Turn, question: Question) -> None:
    """Ask `question` in the sender's language, with its buttons."""
    turn.reply(question.template, payload=question.payload, **question.context)


def resume(turn: Turn, team: Team) -> bool:
    """Ask the key contact again what `team`'s enrolment waits for; False when nothing is
    theirs to answer (the leader's sign-off is awaited)."""
    assert turn.person is not None
    turn.use_team(team)
    question = open_question(turn.session, team, turn.person)
    if question is None:
        return False
    put(turn, question)
    return True


def explain_waiting(turn: Turn, team: Team) -> None:
    """Where `team`'s enrolment stands and what to send next; its key contact is asked again
    the question it waits for, if any."""
    person = turn.person
    key_contact = person is not None and team.key_contact_id == person.id
    stage = enrolment_queries.enrolment_stage(team)
    if stage == enrolment_queries.STAGE_SIGNOFF and team.id in enrolment_queries.self_signoffs(
        turn.session, [team.id]
    ):
        stage = enrolment_queries.STAGE_COACH
    leader = turn.session.get(Person, team.leader_id) if team.leader_id else None
    turn.use_team(team)
    turn.reply(
        "team_not_enrolled",
        team_name=team.name,
        stage=stage,
        leader_name=leader.name if leader else "",
        key_contact=key_contact,
    )
    if key_contact and stage in (enrolment_queries.STAGE_MATRIX, enrolment_queries.STAGE_LEADER):
        resume(turn, team)
