"""Who wrote: the sender of an inbound message, a newcomer becoming known, and which of their
teams a message is about.

Kept apart from the router so the flows that need these (enrolment, data) import them
directly instead of reaching back into the router.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from dash.actions import people
from dash.engine.standing import explain_waiting
from dash.engine.turn import Turn
from dash.inbound import InboundMessage
from dash.models import Address, Message, Person, Team
from dash.queries import people as people_queries


def identify(session: Session, inbound: InboundMessage) -> Address | None:
    """The address row of the known person who sent `inbound` (its `person` loaded), if any.

    A sender not known by their address may be someone named in advance by a display name on
    that channel (a leader the key contact gave as @username): the address is attached then.
    """
    row = people_queries.address_of(session, inbound.channel, inbound.sender)
    if row is None and inbound.sender:
        username = _display_name(inbound.raw)
        named = people_queries.person_by_display(session, inbound.channel, username) if username else None
        if named is not None:
            row = people.attach_address(named, inbound.channel, inbound.sender, inbound.address)
    return row


def _display_name(raw: dict[str, Any]) -> str:
    """The sender's public username in a provider's payload (Telegram's `from.username`)."""
    for key in ("message", "edited_message", "callback_query", "my_chat_member"):
        part = raw.get(key) if isinstance(raw, dict) else None
        if isinstance(part, dict):
            sender = part.get("from")
            if isinstance(sender, dict) and sender.get("username"):
                return str(sender["username"])
    return ""


def recognise(session: Session, inbound: InboundMessage, message: Message, row: Address) -> None:
    """`message` came from `row`'s person: it is theirs, and they wrote from there."""
    people.note_inbound(row, inbound.address, inbound.received_at, private=not inbound.is_group)
    people.attribute_message(message, row.person)
    if inbound.language and row.person.language == "en" and not row.person.name:
        people.set_language(session, row.person, inbound.language)


def new_person(turn: Turn) -> Person:
    """The sender becomes known (they are joining or enrolling)."""
    person = people.create_person(
        turn.session,
        channel=turn.channel,
        sender=turn.inbound.sender,
        address=turn.inbound.address,
        name=turn.inbound.sender_name,
        language=turn.inbound.language,
    )
    turn.person = person
    inbound = turn.inbound
    row = person.addresses[-1]
    username = _display_name(inbound.raw)
    if username and not row.display:
        row.display = username  # a key contact may name them by it later
    people.note_inbound(row, inbound.address, inbound.received_at, private=not inbound.is_group)
    people.attribute_message(turn.message, person)
    return person


def remember_stranger(turn: Turn) -> Person | None:
    """An unknown sender with a public username (a Telegram user pressing /start) becomes
    known by it, so a key contact naming them as leader by @username reaches them at once."""
    inbound = turn.inbound
    if inbound.is_group or not inbound.sender or not _display_name(inbound.raw):
        return None
    return new_person(turn)


def choose_team(turn: Turn) -> Team | None:
    """The team this message is about; asks which one (and returns None) when ambiguous."""
    if turn.team is not None:
        return turn.team
    person = turn.person
    if person is None:
        return None
    teams = people_queries.teams_of(turn.session, person)
    if not teams:
        waiting = people_queries.teams_of(turn.session, person, active_only=False)
        if waiting:
            explain_waiting(turn, waiting[-1])
        else:
            turn.reply("no_team")
        return None
    if len(teams) == 1:
        turn.use_team(teams[0])
        return teams[0]
    remembered = people_queries.remembered_team(turn.session, person, turn.now)
    for team in teams:
        if team.id == remembered:
            turn.use_team(team)
            return team
    turn.ask(
        "choose_team",
        "team",
        data={
            "team_ids": [t.id for t in teams],
            "text": turn.text,
            "callback": turn.callback,
        },
    )
    turn.reply(
        "choose_team",
        teams=[t.name for t in teams],
        payload={
            "buttons": [
                [{"text": str(i + 1), "data": f"choice:{i + 1}"}] for i in range(len(teams))
            ]
        },
    )
    return None
