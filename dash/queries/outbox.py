"""Outbox rows due to be sent, for the delivery worker's claim."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, bindparam, func, literal, select, true
from sqlalchemy.orm import Session, aliased

from dash.models import OutboxItem, OutboxState


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
    probing the chat of each row through ix_outbox_live_chat, so a claim costs the same
    however many rows wait. An OR of the two states, or several channels in one query,
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
    # predated a fan-out.
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
