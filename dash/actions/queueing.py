"""Queueing outbound messages: a Message in the thread plus an outbox row to deliver it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    String,
    Text,
    bindparam,
    column,
    func,
    insert,
    select,
    values,
)
from sqlalchemy.orm import Session

from dash.models import (
    Message,
    MessageStatus,
    OutboxItem,
    OutboxState,
    Person,
    Priority,
    Team,
)
from dash.queries.recipients import address_for, group_language, team_people, team_recipients
from dash.settings import get_settings
from dash.timeutil import utcnow

#: queue_message's reads, built once: every reply and prompt runs them, and building them
#: cost as much CPU as running them.
_DEDUPED = select(OutboxItem.id).where(OutboxItem.dedupe_key == bindparam("dedupe_key"))
_RECENT_SAME = select(func.count(Message.id)).where(
    Message.direction == "out",
    Message.channel == bindparam("channel"),
    Message.address == bindparam("address"),
    Message.text == bindparam("text"),
    Message.created_at >= bindparam("since"),
)


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

    Inside `queued_together(session)` the message is only collected, and written with the
    others (queue_many's rules, set-wise) when the block ends: the Message returned then is
    not in the session and has no id yet.
    """
    if person is not None and person.opted_out and not even_if_opted_out:
        return None
    if dedupe_key is not None:
        exists = session.execute(_DEDUPED, {"dedupe_key": dedupe_key}).first()
        if exists:
            return None
    team_id = team.id if isinstance(team, Team) else team
    message = Message(
        team_id=team_id,
        person_id=person.id if person else None,
        direction="out",
        channel=channel,
        address=address,
        text=text,
        kind=kind,
        author_id=author_id,
        media=(payload or {}).get("media"),
    )
    together: list[Draft] | None = session.info.get(_TOGETHER)
    if together is not None:
        if dedupe_key is not None and any(d.dedupe_key == dedupe_key for d in together):
            return None
        together.append(
            Draft(
                channel=channel,
                address=address,
                text=text,
                person=person,
                team_id=team_id,
                priority=priority,
                kind=kind,
                dedupe_key=dedupe_key,
                payload=payload or {},
                author_id=author_id,
                even_if_opted_out=True,  # decided above, when it was asked for
            )
        )
        return message  # not in the session: queue_many writes its row when the block ends
    settings = get_settings()
    now = utcnow()
    # On the session's connection, without the ORM's autoflush: messages queued here are
    # flushed as they are queued, so the count is complete, and the caller's pending
    # changes go out with this message's own flush instead of one of their own.
    recent_same = (
        session.connection()
        .execute(
            _RECENT_SAME,
            {
                "channel": channel,
                "address": address,
                "text": text,
                "since": now - timedelta(hours=1),
            },
        )
        .scalar_one()
    )
    held = recent_same >= settings.identical_outbound_cap
    message.status = MessageStatus.HELD.value if held else MessageStatus.QUEUED.value
    message.created_at = now
    session.add(message)
    session.add(  # one flush below writes both, the message first
        OutboxItem(
            message=message,
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
    session.flush()  # callers read message.id
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


def queue_to_team(
    session: Session,
    team: Team,
    text: str | Callable[[Person | None, str], str],
    *,
    roles: tuple[str, ...] | None = None,
    **kwargs: Any,
) -> list[Message]:
    """Queue a message to a team: once to its linked Telegram group, and to each person
    (in `roles`) who is not reached through that group.

    `text` is the same text for everyone, or a function of (person, language) rendering it
    per reader (person None for the group, which reads its members' majority language).
    `dedupe_key`, when given, is suffixed per recipient so each gets it at most once."""
    base_key = kwargs.pop("dedupe_key", None)
    sent: list[Message] = []
    recipients = team_recipients(
        team,
        team_people(session, team, roles),
        group_lang=lambda: group_language(session, team),
    )
    for recipient in recipients:
        person = recipient.person
        suffix = "group" if person is None else f"p{person.id}"
        msg = queue_message(
            session,
            channel=recipient.channel,
            address=recipient.address,
            text=text if isinstance(text, str) else text(person, recipient.lang),
            person=person,
            team=team,
            dedupe_key=f"{base_key}:{suffix}" if base_key else None,
            **kwargs,
        )
        if msg is not None:
            sent.append(msg)
    return sent


def insert_messages(db: Session | Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert message rows in one statement; their ids in the same order.

    On a session (queue_many) or a plain connection (the engine's store of a batch of inbound
    messages). SQLite cannot promise the order of a multi-row RETURNING, so SQLAlchemy would
    send one INSERT per row; there the transaction holds the only write lock (BEGIN
    IMMEDIATE, see dash.db), so the next ids are known and given explicitly."""
    dialect = (db.get_bind() if isinstance(db, Session) else db).dialect
    if dialect.name == "sqlite":
        last = db.execute(_LAST_MESSAGE_ID).scalar_one()
        ids = list(range(int(last) + 1, int(last) + 1 + len(rows)))
        db.execute(_INSERT_MESSAGES, [{**r, "id": i} for r, i in zip(rows, ids, strict=True)])
        return ids
    return [int(i) for i in db.execute(_INSERT_MESSAGES_RETURNING, rows).scalars()]


_messages = Message.__table__
_LAST_MESSAGE_ID = select(func.coalesce(func.max(_messages.c.id), 0))
_INSERT_MESSAGES = insert(_messages)
_INSERT_MESSAGES_RETURNING = insert(_messages).returning(
    _messages.c.id, sort_by_parameter_order=True
)


@dataclass
class Draft:
    """One outbound message to queue with `queue_many` (the fields of `queue_message`)."""

    channel: str
    address: str
    text: str
    person: Person | None = None
    team_id: int | None = None
    priority: int = Priority.REPLY
    kind: str = "reply"
    dedupe_key: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    author_id: int | None = None
    even_if_opted_out: bool = False


#: session.info key of the drafts collected by `queued_together`.
_TOGETHER = "dash.outbound.queued_together"


@contextmanager
def queued_together(session: Session) -> Iterator[None]:
    """Messages queued inside the block are written together when it ends, by queue_many.

    Why: the engine processes a burst of inbound messages in one transaction, and writing
    each reply as it is queued cost a flush of two INSERTs (and the cap and dedupe reads) per
    message. Nothing the engine reads while processing looks for the replies it queued, except
    the identical-text cap and dedupe keys, which queue_many counts across the drafts.
    """
    drafts: list[Draft] = []
    session.info[_TOGETHER] = drafts
    try:
        yield
    finally:
        session.info.pop(_TOGETHER, None)
    if drafts:
        queue_many(session, drafts)


def queue_many(session: Session, drafts: list[Draft]) -> list[bool]:
    """Queue many messages with a fixed number of statements, in the caller's transaction.

    Same rules as `queue_message`, applied set-wise (why: a tick queues thousands of prompts
    at one instant and one round trip per check per message dominated): opted-out people and
    dedupe keys already queued (or repeated within `drafts`) are left out; identical text to
    one address past the hourly cap is kept but held, counting the drafts queued before it.
    Returns, per draft, whether it was queued.
    """
    keys = [d.dedupe_key for d in drafts if d.dedupe_key is not None]
    taken: set[str] = set()
    if keys:
        taken = set(
            session.execute(
                select(OutboxItem.dedupe_key).where(OutboxItem.dedupe_key.in_(keys))
            ).scalars()
        )
    chosen: list[Draft] = []
    result: list[bool] = []
    for draft in drafts:
        ok = draft.even_if_opted_out or not (draft.person is not None and draft.person.opted_out)
        if ok and draft.dedupe_key is not None:
            ok = draft.dedupe_key not in taken
            taken.add(draft.dedupe_key)
        result.append(ok)
        if ok:
            chosen.append(draft)
    if not chosen:
        return result
    settings = get_settings()
    now = utcnow()
    recent = _sent_within_the_hour(session, {(d.channel, d.address, d.text) for d in chosen}, now)
    held: list[bool] = []
    for draft in chosen:
        same = (draft.channel, draft.address, draft.text)
        held.append(recent.get(same, 0) >= settings.identical_outbound_cap)
        recent[same] = recent.get(same, 0) + 1
    messages = [
        {
            "team_id": d.team_id,
            "person_id": d.person.id if d.person else None,
            "direction": "out",
            "channel": d.channel,
            "address": d.address,
            "text": d.text,
            "kind": d.kind,
            "status": MessageStatus.HELD.value if h else MessageStatus.QUEUED.value,
            "author_id": d.author_id,
            "media": d.payload.get("media"),
            "created_at": now,
            "updated_at": now,
        }
        for d, h in zip(chosen, held, strict=True)
    ]
    message_ids = insert_messages(session, messages)
    session.execute(
        insert(OutboxItem),
        [
            {
                "message_id": message_id,
                "channel": d.channel,
                "address": d.address,
                "person_id": d.person.id if d.person else None,
                "team_id": d.team_id,
                "priority": d.priority,
                "state": OutboxState.HELD.value if h else OutboxState.QUEUED.value,
                "dedupe_key": d.dedupe_key,
                "payload": d.payload,
                "next_attempt_at": now,
                "last_error": "identical message cap reached" if h else None,
            }
            for message_id, d, h in zip(message_ids, chosen, held, strict=True)
        ],
    )
    return result


def _sent_within_the_hour(
    session: Session, drafts: set[tuple[str, str, str]], now: datetime
) -> dict[tuple[str, str, str], int]:
    """How often each (channel, address, text) went out in the last hour, for the cap.

    Counted per draft by a scalar subquery, which both planners run as one probe of
    ix_messages_address_created with channel and address bound. One IN list of addresses
    left PostgreSQL free to read every recent message of the channel instead when its
    statistics predated a fan-out: 36 ms per 250 drafts by the end of 10,000. In chunks,
    so a large fan-out stays within SQLite's limit of bound parameters (32,766).
    """
    found: dict[tuple[str, str, str], int] = {}
    ordered = sorted(drafts)
    for start in range(0, len(ordered), _CAP_CHUNK):
        wanted = values(
            column("channel", String), column("address", String), column("text", Text), name="d"
        ).data(ordered[start : start + _CAP_CHUNK])
        chunk = wanted.cte("drafts")
        count = (
            select(func.count(Message.id))
            .where(
                Message.direction == "out",
                Message.channel == chunk.c.channel,
                Message.address == chunk.c.address,
                Message.text == chunk.c.text,
                Message.created_at >= now - timedelta(hours=1),
            )
            .scalar_subquery()
        )
        query = select(chunk.c.channel, chunk.c.address, chunk.c.text, count)
        found.update(
            ((channel, address, text), int(n))
            for channel, address, text, n in session.execute(query)
            if n
        )
    return found


#: Drafts counted per statement by `_sent_within_the_hour` (three parameters each).
_CAP_CHUNK = 2000
