"""The delivery state machine: leasing outbox rows, recording sends, failures and retries.

The worker in bots.delivery claims (dash.queries.outbox), sends and records through these;
the web app's retry button and Twilio's status callbacks use them too."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from dash.models import Message, MessageStatus, OutboxItem, OutboxState, Person
from dash.timeutil import utcnow

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
