"""What an inbound free-text message costs the database stays small and flat.

Every inbound message goes through the same path (store, claim, who sent it, what the bot
waits for, which team, the reply): its statements are counted from the real code path, as the
board and Today tests count theirs. The count must not grow with the thread's history, and the
processing writes its changes in one flush (bench/bench_inbound.py measures the time; this
guards the shape that time depends on).
"""

from __future__ import annotations

from itertools import count

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from bench import population
from dash.context import AppContext
from dash.db import Database
from dash.dbplans import StatementCounter
from dash.engine import handle_inbound, handle_inbound_many
from dash.inbound import InboundMessage
from dash.models import Message, OutboxItem
from dash.timeutil import utcnow

#: Store (1) + claim, sender, pending question, teams (4) + one flush (the message's team and
#: flag, the last contact on the sender's address, the reply and its outbox row: 4), plus
#: SQLite's two BEGIN IMMEDIATE. (Replies are never capped, so no identical-text count.)
MOST_STATEMENTS = 11
#: A batch (handle_inbound_many): store, claim, senders, questions, teams, two updates (the
#: messages, their senders' addresses), the replies and their outbox rows. SQLite adds
#: four: two BEGIN IMMEDIATE, and the last message id read before each multi-row INSERT.
MOST_BATCH_STATEMENTS = 9

_ids = count(1)


@pytest.fixture
def chat(db: Database) -> str:
    pop = population.build(db, 3, compile_agendas=False)
    return str(pop.reporter_chat_ids[1])


def free_text(chat: str) -> InboundMessage:
    n = next(_ids)
    return InboundMessage(
        channel="telegram",
        provider_id=f"update-{n}",
        address=chat,
        sender=chat,
        text=f"We tried the checklist on nights ({n})",
        received_at=utcnow(),
        raw={"message": {"chat": {"id": int(chat), "type": "private"}, "text": "…"}},
    )


def cost(ctx: AppContext, chat: str) -> tuple[int, int, int | None]:
    """(statements, flushes, stored message id) of one free-text message from `chat`."""
    flushes = 0

    def flushed(*_: object) -> None:
        nonlocal flushes
        flushes += 1

    event.listen(Session, "after_flush", flushed)
    try:
        with StatementCounter(ctx.db.engine) as counter:
            result = handle_inbound(ctx, free_text(chat))
    finally:
        event.remove(Session, "after_flush", flushed)
    return counter.count, flushes, result.message_id


def test_a_free_text_message_costs_a_dozen_statements_whatever_the_history(
    ctx: AppContext, db: Database, chat: str
) -> None:
    early = [cost(ctx, chat) for _ in range(3)]
    for _ in range(40):
        handle_inbound(ctx, free_text(chat))
    late = cost(ctx, chat)

    statements, flushes, message_id = late
    assert statements == early[-1][0], f"grew with the thread: {early} then {late}"
    assert statements <= MOST_STATEMENTS, f"{statements} statements for one message"
    assert flushes == 1, f"{flushes} flushes: the message's changes went out separately"
    # And it did what a sender and a coach notice: kept, flagged for the coach, answered.
    with db.transaction() as s:
        message = s.get(Message, message_id)
        assert message is not None and message.needs_reply and message.team_id is not None
        replies = s.execute(
            select(Message.text)
            .join(OutboxItem, OutboxItem.message_id == Message.id)
            .where(Message.address == chat, Message.direction == "out")
        ).scalars()
        assert len(list(replies)) == 44


def test_a_batch_costs_a_dozen_statements_whatever_its_size(ctx: AppContext, db: Database) -> None:
    """Messages that arrive together (bots/intake.py) share their statements: the store, the
    claim, the senders with their questions and teams, one update per table and the replies'
    inserts, however many messages the batch holds."""
    chats = [str(c) for c in population.build(db, 25, compile_agendas=False).reporter_chat_ids]
    handle_inbound_many(ctx, [free_text(chat) for chat in chats])  # every team flagged once

    def statements(size: int) -> int:
        with StatementCounter(ctx.db.engine) as counter:
            results = handle_inbound_many(ctx, [free_text(chat) for chat in chats[:size]])
        assert all(r.message_id is not None and not r.duplicate for r in results)
        return counter.count

    small, large = statements(5), statements(25)

    assert small <= MOST_BATCH_STATEMENTS + (4 if db.is_sqlite else 0), small
    assert large == small, f"{small} for 5, {large} for 25"
    with db.transaction() as s:
        answered = s.execute(
            select(Message.address).where(Message.direction == "out", Message.address.in_(chats))
        ).scalars()
        assert sorted(set(answered)) == sorted(chats)
