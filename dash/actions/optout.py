"""Opting out and back in. An opted-out person gets nothing (queue_message drops it) until
they send START; the delivery worker also opts people out when a provider says they refused
us (Telegram "blocked", Twilio 21610)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from dash.actions.people import clear_pending
from dash.models import Person
from dash.timeutil import utcnow


def mark_opted_out(session: Session, person: Person, reason: str) -> None:
    """Stop every message to `person`; `reason` says how we learnt it (kept for the record)."""
    if person.opted_out_at is None:
        person.opted_out_at = utcnow()
    person.opted_out_reason = reason[:200]
    clear_pending(session, person)


def opt_in(session: Session, person: Person) -> bool:
    """`person` sent START: messages flow again. True when they had opted out."""
    was_out = person.opted_out_at is not None
    person.opted_out_at = None
    person.opted_out_reason = None
    return was_out
