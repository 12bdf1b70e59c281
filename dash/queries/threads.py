"""Team threads as recorded: the language a team reads, and what still waits for a coach."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from dash.models import Message, Person, Team


def team_language(session: Session, team: Team) -> str:
    """The language a team's shared messages are written in: its key contact's."""
    contact = session.get(Person, team.key_contact_id) if team.key_contact_id else None
    return contact.language if contact is not None else "en"


def waiting_messages(session: Session, team: Team) -> list[Message]:
    """The team's inbound messages still waiting for a coach, oldest first."""
    return list(
        session.execute(
            select(Message)
            .where(Message.team_id == team.id, Message.needs_reply.is_(True))
            .order_by(Message.created_at, Message.id)
        ).scalars()
    )
