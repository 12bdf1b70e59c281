"""The conversation engine: every channel's inbound message goes through handle_inbound.

1. The raw message is stored in its own committed transaction, unique on (channel,
   provider id): a repeated delivery finds the row and changes nothing.
2. It is then processed in a second transaction: the actions it causes and every reply
   (queued to the outbox) commit together, or not at all.

handle_inbound_many does the same for messages that arrived together (a busy webhook): one
INSERT stores them all, and one transaction processes them in order, so a burst costs one
commit per step instead of two per message. If any of them fails, that transaction is rolled
back and each message is processed on its own, exactly as handle_inbound would.

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

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from dash.actions.people import remember_people
from dash.actions.queueing import insert_messages, queued_together
from dash.context import AppContext
from dash.inbound import InboundMessage
from dash.models import Message, MessageStatus

log = logging.getLogger("dash.engine")

__all__ = ["InboundResult", "handle_inbound", "handle_inbound_many"]


@dataclass(frozen=True)
class InboundResult:
    """What became of an inbound message: its row id, and whether it was a repeat."""

    message_id: int | None
    duplicate: bool


def handle_inbound(ctx: AppContext, inbound: InboundMessage) -> InboundResult:
    """Store `inbound` (once), then process it. See the module docstring."""
    inbound = _storable(inbound)
    message_id, duplicate = _store(ctx, inbound)
    if message_id is not None and not inbound.rejected:
        # Also for a repeat: if the first delivery was stored but never processed (the
        # database went away in between), the provider's retry finishes the job.
        _process(ctx, message_id, inbound)
    return InboundResult(message_id=message_id, duplicate=duplicate)


def handle_inbound_many(ctx: AppContext, inbounds: list[InboundMessage]) -> list[InboundResult]:
    """handle_inbound for each of `inbounds`, in their order, sharing the commits."""
    if len(inbounds) <= 1:
        return [handle_inbound(ctx, inbound) for inbound in inbounds]
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


#: Built once, like _CLAIM: building these statements cost as much CPU as running them.
_STORE = insert(Message.__table__).returning(Message.__table__.c.id)


def _store(ctx: AppContext, inbound: InboundMessage) -> tuple[int | None, bool]:
    # One Core INSERT … RETURNING that commits by itself: the row is written and committed
    # before anything else happens, without an ORM object, flush, session or (on
    # PostgreSQL) BEGIN/COMMIT round trips that nothing here would use.
    try:
        with ctx.db.single_statement() as conn:
            return conn.execute(_STORE, _row(inbound)).scalar_one(), False
    except IntegrityError:
        with ctx.db.transaction() as session:
            existing = session.execute(
                select(Message.id).where(
                    Message.channel == inbound.channel,
                    Message.provider_id == inbound.provider_id,
                )
            ).scalar_one_or_none()
        if existing is None:  # not a duplicate after all: a genuine constraint problem
            raise
        return existing, True


def _store_many(ctx: AppContext, inbounds: list[InboundMessage]) -> list[tuple[int | None, bool]]:
    # One multi-row INSERT, atomic by itself. A repeat among them (a provider's retry, or
    # the same update twice in one burst) fails it as a whole: then each is stored alone.
    try:
        with ctx.db.single_statement() as conn:
            return [(mid, False) for mid in insert_messages(conn, [_row(i) for i in inbounds])]
    except IntegrityError:
        return [_store(ctx, inbound) for inbound in inbounds]


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


def _process(ctx: AppContext, message_id: int, inbound: InboundMessage) -> None:
    from dash.engine.router import process

    try:
        with ctx.db.transaction() as session:
            # Claim and load in one statement: the row lock makes a concurrent repeat wait,
            # then find it no longer "received"; a failure rolls the status back too.
            message = session.scalars(
                _CLAIM, {"message_ids": [message_id]}, execution_options=_NO_SYNC
            ).one_or_none()
            if message is None:
                return
            process(ctx, session, inbound, message)
    except (OperationalError, DBAPIError) as exc:
        if isinstance(exc, OperationalError) or exc.connection_invalidated:
            raise
        _processing_failed(ctx, message_id, inbound, exc)
    except Exception as exc:
        _processing_failed(ctx, message_id, inbound, exc)


def _process_many(ctx: AppContext, todo: list[tuple[int, InboundMessage]]) -> None:
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
        if unreachable and not _lost_a_race(exc):
            raise
        failure: Exception = exc
    except Exception as exc:
        failure = exc
    # Rolled back as a whole: each message alone now, so one bad message costs only itself,
    # and a batch that deadlocked with another (their people locked in opposite orders)
    # waits its turn one message at a time.
    log.info("processing %d messages together failed (%s); one by one", len(todo), failure)
    for message_id, inbound in todo:
        _process(ctx, message_id, inbound)


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
