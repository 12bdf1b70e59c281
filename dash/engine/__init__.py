"""The conversation engine: every channel's inbound message goes through handle_inbound.

1. The raw message is stored in its own committed transaction, unique on (channel,
   provider id): a repeated delivery finds the row and changes nothing.
2. It is then processed in a second transaction: the actions it causes and every reply
   (queued to the outbox) commit together, or not at all.

handle_inbound_many does the same for messages that arrived together (a busy webhook), and
handle_inbound is it for one: one INSERT stores them all, and one transaction processes them
in order, so a burst costs one commit per step instead of two per message. If any of them
fails, that transaction is rolled back and each message is processed on its own.

A message whose processing fails for any reason but the database being down is kept, marked,
and shown to the team's coach; the sender is told it was saved. Only a database that cannot
be reached raises, so a webhook answers 5xx and the provider delivers it again. A message its
adapter found unusable (`InboundMessage.rejected`) is stored already marked "rejected", with
the reason, and never processed: its repeats are duplicates like any other.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from dash.actions.queueing import insert_messages, queued_together
from dash.context import AppContext
from dash.inbound import InboundMessage
from dash.models import Message, MessageStatus
from dash.queries.people import remember_people

log = logging.getLogger("dash.engine")

__all__ = ["InboundResult", "handle_inbound", "handle_inbound_many"]


@dataclass(frozen=True)
class InboundResult:
    """What became of an inbound message: its row id, and whether it was a repeat."""

    message_id: int | None
    duplicate: bool


def handle_inbound(ctx: AppContext, inbound: InboundMessage) -> InboundResult:
    """Store `inbound` (once), then process it: `handle_inbound_many` of one."""
    return handle_inbound_many(ctx, [inbound])[0]


def handle_inbound_many(ctx: AppContext, inbounds: list[InboundMessage]) -> list[InboundResult]:
    """Store each of `inbounds` (once), then process them in their order, sharing the commits.

    Also a repeat is processed: if the first delivery was stored but never processed (the
    database went away in between), the provider's retry finishes the job.
    """
    if not inbounds:
        return []
    inbounds = [_storable(inbound) for inbound in inbounds]
    stored = _store_many(ctx, inbounds)
    todo = [
        (mid, inbound)
        for (mid, _), inbound in zip(stored, inbounds, strict=True)
        if mid is not None and not inbound.rejected
    ]
    if todo:
        _process_many(ctx, todo)
    return [InboundResult(message_id=mid, duplicate=duplicate) for mid, duplicate in stored]


#: What PostgreSQL text/JSONB cannot hold: NUL, and lone UTF-16 surrogates (no UTF-8 form).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _storable_value(value: Any) -> Any:
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_storable_value(k): _storable_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable_value(v) for v in value]
    return value


def _storable(inbound: InboundMessage) -> InboundMessage:
    """`inbound` with each NUL character (or lone surrogate) replaced by U+FFFD.

    PostgreSQL text and JSONB cannot hold NUL: such a message would be refused by the
    database on every retry (lost, and retried by the provider forever); everything else
    in it is kept as sent.
    """
    fields = ("provider_id", "address", "sender", "text", "sender_name", "group_title")
    changes: dict[str, Any] = {
        name: _storable_value(getattr(inbound, name))
        for name in fields
        if _UNSTORABLE.search(str(getattr(inbound, name)))
    }
    if inbound.callback_data and _UNSTORABLE.search(inbound.callback_data):
        changes["callback_data"] = _storable_value(inbound.callback_data)
    raw, media = _storable_value(inbound.raw), _storable_value(inbound.media)
    if raw != inbound.raw or media != inbound.media:
        changes.update(raw=raw, media=media)
    return replace(inbound, **changes) if changes else inbound


def _store_many(ctx: AppContext, inbounds: list[InboundMessage]) -> list[tuple[int | None, bool]]:
    """(message id, whether it was a repeat) of each of `inbounds`, stored and committed
    before anything else happens.

    One Core INSERT that commits by itself, without an ORM object, flush or session. A
    repeat among several (a provider's retry, or the same update twice in one burst) fails
    it as a whole: then each is stored alone, and a repeat finds its earlier row."""
    try:
        with ctx.db.single_statement() as conn:
            return [(mid, False) for mid in insert_messages(conn, [_row(i) for i in inbounds])]
    except IntegrityError as exc:
        if len(inbounds) > 1:
            return [_store_many(ctx, [inbound])[0] for inbound in inbounds]
        refused = exc
    (inbound,) = inbounds
    with ctx.db.transaction() as session:
        existing = session.execute(
            select(Message.id).where(
                Message.channel == inbound.channel,
                Message.provider_id == inbound.provider_id,
            )
        ).scalar_one_or_none()
    if existing is None:  # not a duplicate after all: a genuine constraint problem
        raise refused
    return [(existing, True)]


def _row(inbound: InboundMessage) -> dict[str, Any]:
    return {
        "direction": "in",
        "channel": inbound.channel,
        "address": inbound.address[:64],
        "provider_id": inbound.provider_id[:80] if inbound.provider_id else None,
        "text": inbound.text or "",
        "kind": _kind_of(inbound),
        "raw": inbound.raw,
        "media": {"items": inbound.media} if inbound.media else None,
        "status": (MessageStatus.PROCESSED if inbound.rejected else MessageStatus.RECEIVED).value,
        "error_code": "rejected" if inbound.rejected else None,
        "error_detail": inbound.rejected[:2000] if inbound.rejected else None,
        "created_at": inbound.received_at,
    }


def _kind_of(inbound: InboundMessage) -> str:
    if inbound.event != "message":
        return inbound.event[:24]
    if inbound.callback_data:
        return "button"
    return "text"


#: Claims and loads stored messages (one, or a batch) in one statement.
_CLAIM = (
    update(Message)
    .where(
        Message.id.in_(bindparam("message_ids", expanding=True)),
        Message.status == MessageStatus.RECEIVED.value,
    )
    .values(status=MessageStatus.PROCESSED.value)
    .returning(Message)
)
_NO_SYNC = {"synchronize_session": False}


def _process_many(ctx: AppContext, todo: list[tuple[int, InboundMessage]]) -> None:
    """Process stored messages in one transaction: the actions they cause and every reply
    commit together, or not at all.

    Claim and load happen in one statement: the row lock makes a concurrent repeat wait, then
    find it no longer "received"; a failure rolls the status back too. If the transaction
    fails, several messages are processed again one at a time, and a single one is kept,
    marked and shown to a coach (`_processing_failed`).
    """
    from dash.engine.router import process

    try:
        with ctx.db.transaction() as session:
            claimed = {
                message.id: message
                for message in session.scalars(
                    _CLAIM,
                    {"message_ids": sorted({mid for mid, _ in todo})},
                    execution_options=_NO_SYNC,
                )
            }
            # The senders, their questions and teams are looked up at once (remember_people),
            # and the replies written together at the end (queued_together), so the messages'
            # own small updates wait for the next query that needs them, often the batch's
            # end: one executemany per table.
            remember_people(session, [(inbound.channel, inbound.sender) for _, inbound in todo])
            with queued_together(session):
                for message_id, inbound in todo:
                    message = claimed.pop(message_id, None)  # a repeat finds it gone
                    if message is not None:
                        process(ctx, session, inbound, message)
        return
    except (OperationalError, DBAPIError) as exc:
        unreachable = isinstance(exc, OperationalError) or exc.connection_invalidated
        # A batch that lost a race (deadlocked with another, their people locked in opposite
        # orders) waits its turn one message at a time; a database gone raises, so the
        # webhook answers 5xx and the provider delivers again.
        if unreachable and (len(todo) == 1 or not _lost_a_race(exc)):
            raise
        failure: Exception = exc
    except Exception as exc:
        failure = exc
    if len(todo) == 1:
        _processing_failed(ctx, *todo[0], failure)
        return
    # Rolled back as a whole: each message alone now, so one bad message costs only itself.
    log.info("processing %d messages together failed (%s); one by one", len(todo), failure)
    for item in todo:
        _process_many(ctx, [item])


#: PostgreSQL's deadlock_detected and serialization_failure: the transaction was chosen to
#: give way, and the same work succeeds when done again.
_RACE_STATES = frozenset({"40P01", "40001"})


def _lost_a_race(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in _RACE_STATES


def _processing_failed(
    ctx: AppContext, message_id: int, inbound: InboundMessage, exc: Exception
) -> None:
    """Keep the message, show it to a coach, tell the sender it is safe."""
    from dash.engine.router import apologise

    log.exception("processing inbound message %s failed", message_id, exc_info=exc)
    with ctx.db.transaction() as session:
        message = session.get(Message, message_id)
        if message is None or message.status != MessageStatus.RECEIVED.value:
            return
        message.status = MessageStatus.PROCESSED.value
        message.error_code = "processing_failed"
        message.error_detail = f"{type(exc).__name__}: {exc}"[:2000]
        message.needs_reply = True
        try:
            with session.begin_nested():
                apologise(ctx, session, inbound, message)
        except (OperationalError, DBAPIError) as apology_error:
            if isinstance(apology_error, OperationalError) or apology_error.connection_invalidated:
                raise
            # The apology itself cannot be stored (an address the database refuses): keep
            # the message for the coach anyway; answering 5xx would make the provider
            # deliver it again forever.
            log.exception("could not apologise for inbound message %s", message_id)
