"""Queueing outbound messages: a Message in the thread plus an outbox row to deliver it.

Every way of queueing (one message, one person, a team, a batch of drafts) goes through
`_queue`, so the rules are applied in one place: people who opted out are left out, a
dedupe key is queued at most once, a scheduled (bulk) message repeating the same text to
one address past the hourly cap is kept but held, and the team's coach is told, and a
scheduled message past the person's daily budget (settings.daily_message_budget) is kept but
held, in the thread where the coach sees it. A reply to what someone just wrote is never held:
a stuck person retrying must still hear back.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, String, Text, column, func, insert, select, update, values
from sqlalchemy.orm import Session, make_transient_to_detached

from dash.models import Message, MessageStatus, OutboxItem, OutboxState, Person, Priority, Team
from dash.queries.recipients import address_for, group_language, team_people, team_recipients
from dash.reach import ReplyWindow, best_address, closed_window
from dash.settings import get_settings
from dash.timeutil import utcnow

#: Kinds of the scheduled messages a person's daily budget counts (the agenda's team steps).
BUDGET_KINDS: tuple[str, ...] = (
    "session_reminder",
    "session_followup",
    "daily_prompt",
    "nudge_reporter",
    "nudge_key_contact",
    "nudge_leader",
    "pdsa_followup",
    "midpoint_summary",
    "final_summary",
    "story_digest",
)
#: The scheduled message the budget keeps a place for (see `_queue`).
PROMPT_KIND = "daily_prompt"


@dataclass
class Draft:
    """One outbound message to queue (the fields of `queue_message`)."""

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
    #: Set on scheduled messages only (the UTC start of the recipient's local day): such a
    #: draft counts against the person's daily budget, and past it is held. Replies and coach
    #: messages leave it None and are never held for the budget.
    budget_since: datetime | None = None


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

    Returns None (and queues nothing) when the person opted out or when the same dedupe key
    was already queued. Inside `queued_together(session)` the message is only collected and
    written with the others when the block ends: the Message returned then is not in the
    session and has no id yet.
    """
    draft = Draft(
        channel=channel,
        address=address,
        text=text,
        person=person,
        team_id=team.id if isinstance(team, Team) else team,
        priority=priority,
        kind=kind,
        dedupe_key=dedupe_key,
        payload=payload or {},
        author_id=author_id,
        even_if_opted_out=even_if_opted_out,
    )
    return _queue_drafts(session, [draft])[0]


def queue_to_person(
    session: Session,
    person: Person,
    text: str,
    *,
    channel: str | None = None,
    enabled: Collection[str] | None = None,
    windows: Mapping[str, ReplyWindow] | None = None,
    **kwargs: Any,
) -> Message | None:
    """Queue `text` to `person` on their channel (or `channel`) among `enabled` (None: any);
    None if unreachable.

    With `windows` (dash.reach.reply_windows), an address whose channel's reply window is
    closed takes the message only as the payload's approved template; without one it goes on
    the window's fallback channel to the same address, else not at all (None), so the caller
    can tell whoever asked for it instead of letting it fail at the provider.
    """
    if windows:
        templated = bool((kwargs.get("payload") or {}).get("template"))
        target = _within_window(session, person, channel, enabled, windows, templated)
    else:
        target = address_for(person, channel, enabled=enabled)
    if target is None:
        return None
    ch, address = target
    return queue_message(session, channel=ch, address=address, text=text, person=person, **kwargs)


def _within_window(
    session: Session,
    person: Person,
    channel: str | None,
    enabled: Collection[str] | None,
    windows: Mapping[str, ReplyWindow],
    templated: bool,
) -> tuple[str, str] | None:
    """(channel, address) to reach `person` now: their address, unless its channel's reply
    window is closed and the message has no template; then the window's fallback to the same
    address (the person's row there added, so their answer from it is theirs), or None."""
    from dash.models import Address

    row = best_address(person, channel, enabled)
    if row is None:
        return None
    window = closed_window(row, windows, utcnow())
    if window is None or templated:
        return row.channel, str(row.chat_id)
    fallback = window.fallback
    if not fallback or not row.address or (enabled is not None and fallback not in enabled):
        return None
    holder = session.execute(
        select(Address).where(Address.channel == fallback, Address.address == row.address)
    ).scalar_one_or_none()
    if holder is not None and holder.person_id != person.id:
        return None
    if holder is None:
        from dash.actions.people import add_address

        add_address(session, person, fallback, row.address)
    return fallback, row.address


def queue_to_team(
    session: Session,
    team: Team,
    text: str | Callable[[Person | None, str], str],
    *,
    roles: tuple[str, ...] | None = None,
    dedupe_key: str | None = None,
    **kwargs: Any,
) -> list[Message]:
    """Queue a message to a team: once to its linked Telegram group, and to each person
    (in `roles`) who is not reached through that group.

    `text` is the same text for everyone, or a function of (person, language) rendering it
    per reader (person None for the group, which reads its members' majority language).
    `dedupe_key`, when given, is suffixed per recipient so each gets it at most once.
    `kwargs` are the other fields of a Draft (priority, kind, author_id, payload...)."""
    recipients = team_recipients(
        team,
        team_people(session, team, roles),
        group_lang=lambda: group_language(session, team),
    )
    drafts = [
        Draft(
            channel=r.channel,
            address=r.address,
            text=text if isinstance(text, str) else text(r.person, r.lang),
            person=r.person,
            team_id=team.id,
            dedupe_key=(
                f"{dedupe_key}:{'group' if r.person is None else f'p{r.person.id}'}"
                if dedupe_key
                else None
            ),
            **kwargs,
        )
        for r in recipients
    ]
    return [m for m in _queue_drafts(session, drafts) if m is not None]


def queue_many(session: Session, drafts: list[Draft]) -> list[bool]:
    """Queue many messages with a fixed number of statements, in the caller's transaction.

    The rules apply set-wise (a tick queues thousands of prompts at one instant): dedupe keys
    repeated within `drafts` count as taken, and the hourly cap counts the drafts queued
    before each one. Returns, per draft, whether it was queued.
    """
    return [row is not None for row in _queue(session, drafts)]


#: session.info key of the drafts collected by `queued_together`.
_TOGETHER = "dash.outbound.queued_together"


@contextmanager
def queued_together(session: Session) -> Iterator[None]:
    """Messages queued inside the block are written together when it ends, by queue_many.

    Why: the engine processes a burst of inbound messages in one transaction, and writing
    each reply as it is queued would cost its inserts and cap count per message. Nothing the
    engine reads while processing looks for the replies it queued, except the identical-text
    cap and dedupe keys, which queue_many counts across the drafts.
    """
    drafts: list[Draft] = []
    session.info[_TOGETHER] = drafts
    try:
        yield
    finally:
        session.info.pop(_TOGETHER, None)
    if drafts:
        queue_many(session, drafts)


def _queue_drafts(session: Session, drafts: list[Draft]) -> list[Message | None]:
    """Queue `drafts` now, or collect them inside `queued_together`; their Messages, None for
    a draft left out."""
    together: list[Draft] | None = session.info.get(_TOGETHER)
    if together is None:
        return [None if row is None else _attached(session, row) for row in _queue(session, drafts)]
    found: list[Message | None] = []
    for draft, ok in zip(drafts, _admitted(session, drafts, together), strict=True):
        if not ok:
            found.append(None)
            continue
        together.append(replace(draft, even_if_opted_out=True))  # decided here, as asked
        row = _message_row(draft, held=False, now=utcnow())
        del row["status"], row["created_at"], row["updated_at"]
        found.append(Message(**row))  # not in the session: queue_many writes it at the end
    return found


def _admitted(session: Session, drafts: list[Draft], earlier: list[Draft]) -> list[bool]:
    """Per draft, whether it may be queued: not to a person who opted out (unless the draft
    says so), and not under a dedupe key already queued, collected in `earlier`, or repeated
    among `drafts`."""
    keys = [d.dedupe_key for d in drafts if d.dedupe_key is not None]
    taken = {d.dedupe_key for d in earlier if d.dedupe_key is not None}
    if keys:
        taken.update(
            session.execute(
                select(OutboxItem.dedupe_key).where(OutboxItem.dedupe_key.in_(keys))
            ).scalars()
        )
    result: list[bool] = []
    for draft in drafts:
        ok = draft.even_if_opted_out or not (draft.person is not None and draft.person.opted_out)
        if ok and draft.dedupe_key is not None:
            ok = draft.dedupe_key not in taken
            taken.add(draft.dedupe_key)
        result.append(ok)
    return result


def _queue(session: Session, drafts: list[Draft]) -> list[dict[str, Any] | None]:
    """Write the admitted drafts' messages and outbox rows, one INSERT per table; per draft,
    the message row written (with its id), None when it was left out."""
    admitted = _admitted(session, drafts, [])
    chosen = [d for d, ok in zip(drafts, admitted, strict=True) if ok]
    if not chosen:
        return [None] * len(drafts)
    cap = get_settings().identical_outbound_cap
    now = utcnow()
    capped = {(d.channel, d.address, d.text) for d in chosen if d.priority != Priority.REPLY}
    recent = _sent_within_the_hour(session, capped, now) if capped else {}
    held: list[bool] = []
    for draft in chosen:
        same = (draft.channel, draft.address, draft.text)
        held.append(draft.priority != Priority.REPLY and recent.get(same, 0) >= cap)
        recent[same] = recent.get(same, 0) + 1
    errors = ["identical message cap reached" if h else None for h in held]
    budget = get_settings().daily_message_budget
    used, prompted = _scheduled_today(session, chosen)
    for index, draft in enumerate(chosen):
        if draft.budget_since is None or draft.person is None or held[index]:
            continue
        person = draft.person.id
        # The day's count prompt is what the Dash runs on: until it went, the other scheduled
        # messages leave it a place in the budget.
        is_prompt = draft.kind == PROMPT_KIND
        room = budget if is_prompt or person in prompted else budget - 1
        if used.get(person, 0) >= room:
            held[index] = True
            errors[index] = f"daily budget of {budget} scheduled messages reached"
        else:
            used[person] = used.get(person, 0) + 1
            if is_prompt:
                prompted.add(person)
    messages = [_message_row(d, held=h, now=now) for d, h in zip(chosen, held, strict=True)]
    _tell_coaches(session, [d.team_id for d, h in zip(chosen, held, strict=True) if h], now)
    for row, message_id in zip(messages, insert_messages(session, messages), strict=True):
        row["id"] = message_id
    session.execute(
        insert(OutboxItem),
        [
            {
                "message_id": row["id"],
                "channel": d.channel,
                "address": d.address,
                "person_id": row["person_id"],
                "team_id": d.team_id,
                "priority": d.priority,
                "state": OutboxState.HELD.value if h else OutboxState.QUEUED.value,
                "dedupe_key": d.dedupe_key,
                "payload": d.payload,
                "next_attempt_at": now,
                "last_error": e,
            }
            for row, d, h, e in zip(messages, chosen, held, errors, strict=True)
        ],
    )
    written = iter(messages)
    return [next(written) if ok else None for ok in admitted]


def _scheduled_today(session: Session, drafts: list[Draft]) -> tuple[dict[int, int], set[int]]:
    """Per person, the scheduled messages already queued (not held) since the start of their
    local day, and who got the day's prompt among them, for the drafts that count against the
    daily budget: one query for them all."""
    since: dict[int, datetime] = {
        d.person.id: d.budget_since
        for d in drafts
        if d.budget_since is not None and d.person is not None
    }
    if not since:
        return {}, set()
    rows = session.execute(
        select(Message.person_id, Message.created_at, Message.kind).where(
            Message.person_id.in_(since),
            Message.direction == "out",
            Message.kind.in_(BUDGET_KINDS),
            Message.status != MessageStatus.HELD.value,
            Message.created_at >= min(since.values()),
        )
    )
    used: dict[int, int] = {}
    prompted: set[int] = set()
    for person_id, created_at, kind in rows:
        if created_at.tzinfo is None:
            created_at = created_at.replace(tzinfo=since[person_id].tzinfo)
        if created_at >= since[person_id]:
            used[person_id] = used.get(person_id, 0) + 1
            if kind == PROMPT_KIND:
                prompted.add(person_id)
    return used, prompted


def _message_row(draft: Draft, *, held: bool, now: datetime) -> dict[str, Any]:
    """The messages row of `draft`, every column given (so `_attached` needs no reload)."""
    return {
        "team_id": draft.team_id,
        "person_id": draft.person.id if draft.person else None,
        "direction": "out",
        "channel": draft.channel,
        "address": draft.address,
        "provider_id": None,
        "text": draft.text,
        "kind": draft.kind,
        "raw": None,
        "media": draft.payload.get("media"),
        "status": MessageStatus.HELD.value if held else MessageStatus.QUEUED.value,
        "error_code": None,
        "error_detail": None,
        "author_id": draft.author_id,
        # A held message waits in the team's thread on the coach's Today page.
        "needs_reply": held and draft.team_id is not None,
        "replied_at": None,
        "created_at": now,
        "updated_at": now,
    }


def _tell_coaches(session: Session, team_ids: list[int | None], now: datetime) -> None:
    """The teams whose scheduled messages were held wait for their coach (Today page)."""
    ids = sorted({i for i in team_ids if i is not None})
    if not ids:
        return
    session.execute(
        update(Team)
        .where(Team.id.in_(ids), Team.needs_coach_since.is_(None))
        .values(needs_coach_since=now)
        .execution_options(synchronize_session=False)
    )
    for team in session.identity_map.values():
        if isinstance(team, Team) and team.id in ids and team.needs_coach_since is None:
            team.needs_coach_since = now


def _attached(session: Session, row: dict[str, Any]) -> Message:
    """The Message of a row just inserted, in the session as if loaded, without a SELECT."""
    message = Message(**row)
    make_transient_to_detached(message)
    session.add(message)
    return message


def insert_messages(db: Session | Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert message rows in one statement; their ids in the same order.

    On a session (queueing) or a plain connection (the engine's store of a batch of inbound
    messages). SQLite cannot promise the order of a multi-row RETURNING, so SQLAlchemy would
    send one INSERT per row; there the transaction holds the only write lock (BEGIN
    IMMEDIATE, see dash.db), so the next ids are known and given explicitly."""
    dialect = (db.get_bind() if isinstance(db, Session) else db).dialect
    if dialect.name == "sqlite" and len(rows) > 1:
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


def _sent_within_the_hour(
    session: Session, drafts: set[tuple[str, str, str]], now: datetime
) -> dict[tuple[str, str, str], int]:
    """How often each (channel, address, text) went out in the last hour, for the cap.

    Counted per draft by a scalar subquery, which both planners run as one probe of
    ix_messages_address_created with channel and address bound. One IN list of addresses
    left PostgreSQL free to read every recent message of the channel instead when its
    statistics predated a fan-out. In chunks, so a large fan-out stays within SQLite's
    limit of bound parameters (32,766).
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
