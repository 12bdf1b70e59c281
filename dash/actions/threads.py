"""Team threads: what a team wrote that a coach should see, and the coach's reply to it.

Every message in or out carries its team (Message.team_id), so a team's thread is simply its
messages in order. An inbound message that needs a person gets `needs_reply`; the team gets
`needs_coach_since` (the coach's "Today" page sorts by it) until a coach answers.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from dash.actions.queueing import queue_to_team
from dash.models import Message, Person, Team
from dash.queries.threads import team_language
from dash.texts import render
from dash.timeutil import utcnow


def flag_for_coach(session: Session, team: Team | None, message: Message) -> None:
    """Show `message` to the team's coach as waiting for an answer."""
    message.needs_reply = True
    if team is not None:
        message.team_id = team.id
        if team.needs_coach_since is None:
            team.needs_coach_since = message.created_at or utcnow()


def file_failed(session: Session, message: Message, team: Team | None) -> None:
    """A message the engine failed to process joins `team`'s thread (when known) and the
    team's coach is alerted."""
    message.team_id = team.id if team is not None else None
    if team is not None and team.needs_coach_since is None:
        team.needs_coach_since = utcnow()


def mark_answered(session: Session, team: Team) -> int:
    """Clear the team's waiting messages; returns how many were waiting."""
    now = utcnow()
    result = session.execute(
        update(Message)
        .where(Message.team_id == team.id, Message.needs_reply.is_(True))
        .values(needs_reply=False, replied_at=now)
        .execution_options(synchronize_session=False)
    )
    team.needs_coach_since = None
    for message in session.identity_map.values():
        if isinstance(message, Message) and message.team_id == team.id and message.needs_reply:
            message.needs_reply = False
            message.replied_at = now
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def coach_reply(session: Session, *, coach: Person, team: Team, text: str) -> list[Message]:
    """Relay a coach's reply to the team's chat(s), signed with the coach's name."""
    body = (text or "").strip()
    if not body:
        from dash.errors import UserError

        raise UserError("the reply is empty")
    rendered = render(
        "coach_reply", team_language(session, team), coach_name=coach.name or "Coach", text=body
    )
    sent = queue_to_team(session, team, rendered, kind="coach", author_id=coach.id)
    mark_answered(session, team)
    return sent


