"""Queueing outbound messages: a Message in the thread plus an outbox row to deliver it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dash.models import (
    Channel,
    Message,
    MessageStatus,
    OutboxItem,
    OutboxState,
    Person,
    Priority,
    Team,
)
from dash.settings import get_settings
from dash.timeutil import utcnow


def address_for(person: Person, channel: str | None = None) -> tuple[str, str] | None:
    """(channel, address) to reach `person`: the channel asked for, else the one they use."""
    options: dict[str, str | None] = {
        Channel.TELEGRAM.value: str(person.telegram_chat_id) if person.telegram_chat_id else None,
        Channel.WHATSAPP.value: person.whatsapp_e164,
        Channel.SMS.value: person.phone_e164,
        Channel.CONSOLE.value: person.console_address,
    }
    order = [channel] if channel else []
    order += [person.preferred_channel] if person.preferred_channel else []
    order += [Channel.TELEGRAM.value, Channel.WHATSAPP.value, Channel.SMS.value, "console"]
    for ch in order:
        if ch and options.get(ch):
            return ch, str(options[ch])
    return None


def queue_message(
    session: Session,
    *,
    channel: str,
    address: str,
    text: str,
    person: Person | None = None,
    team: Team | int | None = None,
    priority: int = Priority.REPLY,
    kind: str = "reply",
    author_id: int | None = None,
    dedupe_key: str | None = None,
    payload: dict[str, Any] | None = None,
    even_if_opted_out: bool = False,
) -> Message | None:
    """Add an outbound message to the team's thread and the outbox, in the caller's transaction.

    Returns None (and queues nothing) when the person opted out or when the same
    dedupe key was already queued. Identical text to the same address more often
    than the configured cap per hour is kept but held, so two bots cannot loop.
    """
    if person is not None and person.opted_out and not even_if_opted_out:
        return None
    if dedupe_key is not None:
        exists = session.execute(
            select(OutboxItem.id).where(OutboxItem.dedupe_key == dedupe_key)
        ).first()
        if exists:
            return None
    team_id = team.id if isinstance(team, Team) else team
    settings = get_settings()
    now = utcnow()
    recent_same = session.execute(
        select(func.count(Message.id)).where(
            Message.direction == "out",
            Message.channel == channel,
            Message.address == address,
            Message.text == text,
            Message.created_at >= now - timedelta(hours=1),
        )
    ).scalar_one()
    held = recent_same >= settings.identical_outbound_cap
    message = Message(
        team_id=team_id,
        person_id=person.id if person else None,
        direction="out",
        channel=channel,
        address=address,
        text=text,
        kind=kind,
        status=MessageStatus.HELD.value if held else MessageStatus.QUEUED.value,
        author_id=author_id,
        media=(payload or {}).get("media"),
        created_at=now,
    )
    session.add(message)
    session.flush()
    session.add(
        OutboxItem(
            message_id=message.id,
            channel=channel,
            address=address,
            person_id=person.id if person else None,
            team_id=team_id,
            priority=priority,
            state=OutboxState.HELD.value if held else OutboxState.QUEUED.value,
            dedupe_key=dedupe_key,
            payload=payload or {},
            next_attempt_at=now,
            last_error="identical message cap reached" if held else None,
        )
    )
    return message


def queue_to_person(
    session: Session,
    person: Person,
    text: str,
    *,
    channel: str | None = None,
    **kwargs: Any,
) -> Message | None:
    """Queue `text` to `person` on their channel (or `channel`); None if unreachable."""
    target = address_for(person, channel)
    if target is None:
        return None
    ch, address = target
    return queue_message(session, channel=ch, address=address, text=text, person=person, **kwargs)


def team_people(session: Session, team: Team, roles: tuple[str, ...] | None = None) -> list[Person]:
    """People of `team` holding any of `roles` (all members when None), each once, not opted out."""
    from dash.models import Membership

    query = (
        select(Person)
        .join(Membership, Membership.person_id == Person.id)
        .where(Membership.team_id == team.id, Person.opted_out_at.is_(None))
        .order_by(Person.id)
    )
    if roles:
        query = query.where(Membership.role.in_(roles))
    return list(dict.fromkeys(session.execute(query).scalars()))


def queue_to_team(
    session: Session,
    team: Team,
    text: str,
    *,
    roles: tuple[str, ...] | None = None,
    **kwargs: Any,
) -> list[Message]:
    """Queue `text` to a team: once to its linked Telegram group, and to each person
    (in `roles`) who is not reached through that group. `dedupe_key`, when given, is
    suffixed per recipient so each recipient gets it at most once."""
    base_key = kwargs.pop("dedupe_key", None)
    sent: list[Message] = []
    if team.telegram_group_chat_id is not None:
        msg = queue_message(
            session,
            channel=Channel.TELEGRAM.value,
            address=str(team.telegram_group_chat_id),
            text=text,
            team=team,
            dedupe_key=f"{base_key}:group" if base_key else None,
            **kwargs,
        )
        if msg is not None:
            sent.append(msg)
    for person in team_people(session, team, roles):
        target = address_for(person)
        if target is None:
            continue
        if target[0] == Channel.TELEGRAM.value and team.telegram_group_chat_id is not None:
            continue  # they read the group
        msg = queue_message(
            session,
            channel=target[0],
            address=target[1],
            text=text,
            person=person,
            team=team,
            dedupe_key=f"{base_key}:p{person.id}" if base_key else None,
            **kwargs,
        )
        if msg is not None:
            sent.append(msg)
    return sent
