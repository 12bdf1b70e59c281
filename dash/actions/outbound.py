"""Queueing outbound messages: a Message in the thread plus an outbox row to deliver it."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Connection,
    String,
    Text,
    and_,
    bindparam,
    case,
    column,
    func,
    insert,
    literal,
    select,
    true,
    values,
)
from sqlalchemy.orm import Session, aliased, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from dash.models import (
    Message,
    MessageStatus,
    OutboxItem,
    OutboxState,
    Person,
    Priority,
    Team,
)
from dash.reach import best_address
from dash.settings import get_settings
from dash.timeutil import utcnow


def address_for(
    person: Person, channel: str | None = None, *, enabled: Collection[str] | None = None
) -> tuple[str, str] | None:
    """(channel, address) to reach `person` on an enabled channel (None: any): the channel
    asked for, else the one they use (dash.reach.best_address)."""
    row = best_address(person, channel, enabled)
    return (row.channel, str(row.chat_id)) if row is not None else None


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
    enabled: Collection[str] | None = None,
    **kwargs: Any,
) -> Message | None:
    """Queue `text` to `person` on their channel (or `channel`) among `enabled` (None: any);
    None if unreachable."""
    target = address_for(person, channel, enabled=enabled)
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
        .options(selectinload(Person.addresses))  # where each is reached, in one query
    )
    if roles:
        query = query.where(Membership.role.in_(roles))
    return list(dict.fromkeys(session.execute(query).scalars()))


def group_language(session: Session, team: Team) -> str:
    """The language a team's group chat reads: the one most of its members use."""
    from dash.models import Membership
    from dash.texts import language_of

    languages = session.execute(
        select(Person.language)
        .join(Membership, Membership.person_id == Person.id)
        .where(Membership.team_id == team.id)
    ).scalars()
    counts: dict[str, int] = {}
    for lang in languages:
        key = language_of(lang)
        counts[key] = counts.get(key, 0) + 1
    return max(sorted(counts), key=lambda k: counts[k]) if counts else "en"


@dataclass(frozen=True)
class Recipient:
    """One reader of a team message: a person, or the team's Telegram group (person None)."""

    person: Person | None
    channel: str
    address: str
    lang: str
    name: str


def team_recipients(
    team: Team,
    people: list[Person],
    *,
    group_lang: str | Callable[[], str],
    members: set[int] | None = None,
    group: bool = True,
    enabled: Collection[str] | None = None,
) -> list[Recipient]:
    """The team's group chat (when it has one and `group`) and each of `people` who is not
    reached through it, each once; opted-out and unreachable people are left out.

    Shared by `queue_to_team` and the scheduler's steps so both pick recipients the same way.
    A person reads the group instead when their channel is the group's and they are a member
    (`members`: the team's person ids; None means everyone in `people` is one).
    `group_lang` is the group's language, or a function computing it only when needed.
    `enabled`: the channels the deployment sends on (None: any).
    """
    from dash.texts import language_of

    found: list[Recipient] = []
    has_group = (
        group
        and team.group_address is not None
        and (enabled is None or team.group_channel in enabled)
    )
    if has_group:
        lang = group_lang if isinstance(group_lang, str) else group_lang()
        found.append(Recipient(None, str(team.group_channel), str(team.group_address), lang, team.name))
    seen: set[int] = set()
    for person in people:
        if person.id in seen or person.opted_out:
            continue
        seen.add(person.id)
        target = address_for(person, enabled=enabled)
        if target is None:
            continue
        is_member = members is None or person.id in members
        if has_group and target[0] == team.group_channel and is_member:
            continue  # they read the group
        found.append(
            Recipient(
                person, target[0], target[1], language_of(person.language), person.name or team.name
            )
        )
    return found


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


# ---------------------------------------------------------------------------------------------
# Delivery: the worker in bots.delivery claims, sends and records through these; the web
# app's "retry" button and Twilio status callbacks use them too.

#: Outbound statuses in the order they happen; a status may only move to a later one.
STATUS_RANK = {
    MessageStatus.HELD.value: 0,
    MessageStatus.QUEUED.value: 1,
    MessageStatus.SENDING.value: 2,
    MessageStatus.SENT.value: 3,
    MessageStatus.DELIVERED.value: 4,
    MessageStatus.READ.value: 5,
}
#: Nothing moves a message out of these (except a person pressing retry).
TERMINAL_STATUSES = frozenset(
    {MessageStatus.FAILED.value, MessageStatus.UNDELIVERED.value, MessageStatus.SKIPPED.value}
)
#: Outbox rows that are still on their way; they keep later rows to the same chat waiting.
LIVE_STATES = (OutboxState.QUEUED.value, OutboxState.SENDING.value)


def advance_status(message: Message, status: str) -> bool:
    """Move `message` to `status` only if that is a step forward; True when it moved.

    Providers report out of order (a "sent" after a "delivered"), so a status never goes
    back; "failed"/"undelivered" end the story unless it was already delivered or read.
    """
    current = message.status
    if current in TERMINAL_STATUSES or current == status:
        return False
    if status in TERMINAL_STATUSES:
        if STATUS_RANK.get(current, 0) >= STATUS_RANK[MessageStatus.DELIVERED.value]:
            return False
        message.status = status
        return True
    if status not in STATUS_RANK or STATUS_RANK[status] <= STATUS_RANK.get(current, -1):
        return False
    message.status = status
    return True


def due_outbox(
    session: Session,
    *,
    channels: list[str],
    now: datetime,
    limit: int = 100,
    passing_over: Collection[int] = (),
) -> list[OutboxItem]:
    """Outbox rows that may be sent now, best first, locked for this transaction.

    Due means queued with `next_attempt_at <= now`, or "sending" under a lease that expired
    (the process sending it died) and not in `passing_over` (the caller's own sends still
    out, whose lease may have run out while they waited). Only the oldest live row of each
    chat is due, so a chat never gets message n+1 while message n waits for a retry.
    Replies sort ahead of bulk.
    On PostgreSQL the rows are locked FOR UPDATE SKIP LOCKED so workers never share one;
    SQLite has one writer at a time (BEGIN IMMEDIATE).

    Why one query per channel plus one for expired leases, not one query with an OR: each
    is an index-ordered walk (ix_outbox_queued_order, ix_outbox_lease) that stops at `limit`,
    probing the chat of each row through ix_outbox_live_chat, so a claim costs the same with
    100 or 10,000 rows waiting. An OR of the two states, or several channels in one query,
    makes both planners read and sort every due row first.
    """
    if not channels:
        return []
    lock = session.get_bind().dialect.name == "postgresql"
    queries = _claim_queries(tuple(channels), limit, lock, bool(passing_over))
    params: dict[str, Any] = {"now": now}
    if passing_over:
        params["passing_over"] = list(passing_over)
    found = [row for query in queries for row in session.execute(query, params).scalars()]
    found.sort(key=lambda row: (row.priority, row.next_attempt_at, row.id))
    return found[:limit]


@lru_cache(maxsize=64)
def _claim_queries(
    channels: tuple[str, ...], limit: int, lock: bool, passing_over: bool
) -> tuple[Any, ...]:
    """`due_outbox`'s statements, built once per shape with `now` (and the ids passed over) as
    parameters: building them (an alias, a correlated subquery) and their cache keys cost
    several times what SQLite takes to run them, and a worker claims again after every batch."""
    now = bindparam("now", type_=OutboxItem.__table__.c.next_attempt_at.type)
    queries = [
        _claim_query(
            and_(
                OutboxItem.channel == channel,
                OutboxItem.state == _state(OutboxState.QUEUED),
                OutboxItem.next_attempt_at <= now,
            ),
            limit,
            lock,
        )
        for channel in channels
    ]
    queries.append(
        _claim_query(
            and_(
                OutboxItem.state == _state(OutboxState.SENDING),
                OutboxItem.claimed_until < now,
                OutboxItem.channel.in_(channels),
                OutboxItem.id.not_in(bindparam("passing_over", expanding=True))
                if passing_over
                else true(),
            ),
            limit,
            lock,
        )
    )
    return tuple(queries)


def _state(state: OutboxState) -> Any:
    """`state` written into the SQL as a literal, as the partial indexes' predicates are
    (a bound parameter would keep a planner from proving that the index applies)."""
    return literal(state.value, literal_execute=True)


def _claim_query(due: Any, limit: int, lock: bool) -> Any:
    """Rows matching `due` that are their chat's oldest live row, in send order, at most `limit`."""
    earlier = aliased(OutboxItem)
    # The chat's first live row, a scalar subquery: both planners run it once per row as an
    # index probe (ix_outbox_live_chat, channel and address bound). A NOT EXISTS anti-join
    # left PostgreSQL free to scan the chat index by channel alone when its statistics
    # predated a fan-out (78 ms instead of 0.3 for a claim of 100 from 4,000 fresh rows).
    first_live = (
        select(func.min(earlier.id))
        .where(
            earlier.channel == OutboxItem.channel,
            earlier.address == OutboxItem.address,
            earlier.state.in_([_state(OutboxState.QUEUED), _state(OutboxState.SENDING)]),
        )
        .scalar_subquery()
    )
    query = (
        select(OutboxItem)
        .where(due, OutboxItem.id == first_live)
        .order_by(OutboxItem.priority, OutboxItem.next_attempt_at, OutboxItem.id)
        .limit(limit)
    )
    if lock:
        query = query.with_for_update(skip_locked=True, of=OutboxItem)
    return query


def lease_outbox(
    session: Session, item: OutboxItem, *, worker_id: str, now: datetime, lease_seconds: float
) -> None:
    """Claim `item` for one send attempt by `worker_id` until the lease runs out.

    The attempt is counted before sending, so a process killed mid-send leaves a visible
    trace; whoever reclaims the expired lease notes that the first attempt may have landed.
    """
    if item.state == OutboxState.SENDING.value:
        item.last_error = (
            f"lease of {item.claimed_by} expired mid-send; the earlier attempt may have arrived"
        )
    item.state = OutboxState.SENDING.value
    item.claimed_by = worker_id
    item.claimed_until = now + timedelta(seconds=lease_seconds)
    item.attempts += 1
    advance_status(item.message, MessageStatus.SENDING.value)


def lease_many(
    session: Session,
    items: list[OutboxItem],
    *,
    worker_id: str,
    now: datetime,
    lease_seconds: float,
) -> None:
    """`lease_outbox` for every row of one claim: two UPDATEs for all of them, no ORM flush.

    The rows' loaded attributes are brought in line with what was written (not marked
    dirty), so callers read the lease and the attempt count as usual. A row taken over from
    an expired lease goes through `lease_outbox`, which notes it.
    """
    fresh: list[OutboxItem] = []
    for item in items:
        if item.state == OutboxState.SENDING.value:
            lease_outbox(session, item, worker_id=worker_id, now=now, lease_seconds=lease_seconds)
        else:
            fresh.append(item)
    if not fresh:
        return
    until = now + timedelta(seconds=lease_seconds)
    session.execute(
        _LEASE_OUTBOX,
        {"b_outbox_ids": [item.id for item in fresh], "b_worker": worker_id, "b_until": until},
    )
    session.execute(
        _MARK_MESSAGE_SENDING,
        {"b_message_ids": [item.message_id for item in fresh], "b_now": utcnow()},
    )
    for item in fresh:
        set_committed_value(item, "state", OutboxState.SENDING.value)
        set_committed_value(item, "claimed_by", worker_id)
        set_committed_value(item, "claimed_until", until)
        set_committed_value(item, "attempts", item.attempts + 1)


@dataclass(frozen=True)
class SentResult:
    """One accepted send for `record_sent_many`: its outbox row, its message, the provider's id."""

    outbox_id: int
    message_id: int
    provider_id: str


def record_sent_many(session: Session, results: list[SentResult], now: datetime) -> None:
    """The provider accepted these messages: each outbox row is sent, each message keeps the
    provider's id (so status callbacks find it). One UPDATE of the outbox rows and one
    executemany of the messages (each has its own id), no ORM objects loaded.

    The delivery worker records every accepted send; loading each row and its message to
    set five columns cost more CPU than the send itself. The message's status moves to
    "sent" only from the statuses `advance_status` would move it from.
    """
    if not results:
        return
    session.execute(
        _MARK_OUTBOX_SENT, {"b_outbox_ids": [r.outbox_id for r in results], "b_now": now}
    )
    session.execute(
        _MARK_MESSAGE_SENT,
        [
            {"b_message_id": r.message_id, "b_provider_id": r.provider_id, "b_now": now}
            for r in results
        ],
    )


def _statuses_before(status: str) -> list[Any]:
    """The statuses `advance_status` moves forward to `status`, as plain bound values (an
    expanding IN cannot go in an executemany)."""
    return [
        literal(before)
        for before, rank in STATUS_RANK.items()
        if rank < STATUS_RANK[status] and before not in TERMINAL_STATUSES
    ]


def _advance_messages(status: str, which: Any, **values: Any) -> Any:
    """An UPDATE of the messages `which` selects that moves their status forward to
    `status` as `advance_status` does (never back, never out of a final status), stamps
    `b_now` and sets `values` too."""
    messages = Message.__table__
    return (
        messages.update()
        .where(which)
        .values(
            status=case(
                (messages.c.status.in_(_statuses_before(status)), status),
                else_=messages.c.status,
            ),
            updated_at=bindparam("b_now"),
            **values,
        )
    )


# The bulk statements of lease_many and record_sent_many, built once (building them cost as
# much CPU as running them).
_outbox = OutboxItem.__table__
_LEASE_OUTBOX = (
    _outbox.update()
    .where(_outbox.c.id.in_(bindparam("b_outbox_ids", expanding=True)))
    .values(
        state=OutboxState.SENDING.value,
        claimed_by=bindparam("b_worker"),
        claimed_until=bindparam("b_until"),
        attempts=_outbox.c.attempts + 1,
    )
)
_MARK_MESSAGE_SENDING = _advance_messages(
    MessageStatus.SENDING.value,
    Message.__table__.c.id.in_(bindparam("b_message_ids", expanding=True)),
)
_MARK_OUTBOX_SENT = (
    _outbox.update()
    .where(_outbox.c.id.in_(bindparam("b_outbox_ids", expanding=True)))
    .values(
        state=OutboxState.SENT.value,
        sent_at=bindparam("b_now"),
        claimed_by=None,
        claimed_until=None,
    )
)
_MARK_MESSAGE_SENT = _advance_messages(
    MessageStatus.SENT.value,
    Message.__table__.c.id == bindparam("b_message_id"),
    provider_id=bindparam("b_provider_id"),
    error_code=None,
    error_detail=None,
)


def record_retry(
    session: Session,
    outbox_id: int,
    *,
    retry_at: datetime,
    code: str | None,
    detail: str,
    new_address: str | None = None,
) -> OutboxItem | None:
    """A send failed in a way worth trying again at `retry_at`; the error stays visible."""
    item = session.get(OutboxItem, outbox_id)
    if item is None:
        return None
    item.state = OutboxState.QUEUED.value
    item.next_attempt_at = retry_at
    item.claimed_by = None
    item.claimed_until = None
    item.last_error = f"{code}: {detail}" if code else detail
    message = item.message
    message.status = MessageStatus.QUEUED.value
    message.error_code = code
    message.error_detail = detail
    if new_address is not None:
        _move_chat(session, item, new_address)
    return item


def _move_chat(session: Session, item: OutboxItem, new_address: str) -> None:
    """A Telegram group became a supergroup: follow it to its new chat id everywhere."""
    old = item.address
    for row in session.execute(
        select(OutboxItem).where(
            OutboxItem.channel == item.channel,
            OutboxItem.address == old,
            OutboxItem.state.in_(LIVE_STATES),
        )
    ).scalars():
        row.address = new_address
        row.message.address = new_address
    item.address = new_address
    item.message.address = new_address
    from dash.actions.people import group_moved

    group_moved(session, item.channel, old, new_address)


def record_failure(
    session: Session,
    outbox_id: int,
    *,
    code: str | None,
    detail: str,
    state: str = OutboxState.FAILED.value,
) -> OutboxItem | None:
    """A send that will not be tried again by itself: kept visible for a person to retry."""
    item = session.get(OutboxItem, outbox_id)
    if item is None:
        return None
    item.state = state
    item.claimed_by = None
    item.claimed_until = None
    item.last_error = f"{code}: {detail}" if code else detail
    message = item.message
    message.status = (
        MessageStatus.SKIPPED.value
        if state == OutboxState.CANCELLED.value
        else MessageStatus.FAILED.value
    )
    message.error_code = code
    message.error_detail = detail
    return item


def retry_outbox(session: Session, outbox_id: int) -> OutboxItem:
    """Send a failed, held or undelivered message again (a person asked for it).

    Raises UserError when there is nothing to retry or the person has opted out
    (they must send START first; sending anyway would ignore their choice).
    """
    from dash.errors import UserError

    item = session.get(OutboxItem, outbox_id)
    if item is None:
        raise UserError(f"there is no outbound message {outbox_id}")
    message = item.message
    retryable = item.state in (OutboxState.FAILED.value, OutboxState.HELD.value) or (
        item.state == OutboxState.SENT.value
        and message.status in (MessageStatus.FAILED.value, MessageStatus.UNDELIVERED.value)
    )
    if not retryable:
        raise UserError(f"message {outbox_id} is {message.status}; only failed ones can be retried")
    person = session.get(Person, item.person_id) if item.person_id else None
    if person is not None and person.opted_out:
        raise UserError(f"{person.name or 'this person'} opted out; they must send START first")
    now = utcnow()
    item.state = OutboxState.QUEUED.value
    item.next_attempt_at = now
    item.claimed_by = None
    item.claimed_until = None
    item.last_error = None
    item.sent_at = None
    message.status = MessageStatus.QUEUED.value
    message.error_code = None
    message.error_detail = None
    message.provider_id = None
    return item


def record_delivery_status(
    session: Session,
    *,
    channels: tuple[str, ...],
    provider_id: str,
    status: str,
    error_code: str | None = None,
    error_detail: str | None = None,
) -> Message | None:
    """A provider's status report for an outbound message; only ever moves it forward.

    Returns the message (None when the id is unknown). The error code is kept even when
    the status itself did not move, so a late "failed" report still explains itself.
    """
    message = session.execute(
        select(Message).where(
            Message.channel.in_(channels),
            Message.provider_id == provider_id,
            Message.direction == "out",
        )
    ).scalar_one_or_none()
    if message is None:
        return None
    moved = advance_status(message, status)
    if error_code and (moved or message.error_code is None):
        message.error_code = error_code
        message.error_detail = error_detail or message.error_detail
    return message
