"""Flood limits, measured by a fake Telegram server that counts every send per second.

The fake answers 429 to any send over Telegram's limits, so a run with no 429 and the
counts below means the worker paced itself; a 429 it provokes is waited out.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text as sql
from sqlalchemy.exc import SQLAlchemyError

from bots.ratelimit import WINDOW_MARGIN_SECONDS, channel_limit
from dash.actions.queueing import queue_message
from dash.context import AppContext
from dash.db import Database
from tests.fakes.telegram_api import FakeTelegram
from tests.support.delivery import (
    configure,
    drain,
    run_worker_until,
    telegram_env,
    worker_for,
)
from tests.support.ratelimit import BOT, limiter

GROUP = -1001234567890


def queue(db: Database, chat: int, text: str) -> None:
    with db.transaction() as s:
        assert queue_message(s, channel="telegram", address=str(chat), text=text) is not None


def test_bot_and_chat_limits_hold(
    monkeypatch: pytest.MonkeyPatch, db: Database, fake_telegram: FakeTelegram
) -> None:
    # The bot-wide limit is lowered (from 30/s) so the test needs only a couple of seconds;
    # the per-chat limit is Telegram's 1/s.
    ctx: AppContext = configure(
        monkeypatch, db, **telegram_env(fake_telegram), telegram_per_second="15"
    )
    fake_telegram.enforce_limits(per_second=15, per_chat_per_second=1, per_group_per_minute=20)
    for chat in range(1001, 1031):
        queue(db, chat, f"Reminder for chat {chat}")
    steps = [f"Step {n} of the plan" for n in range(3)]
    for text in steps:
        queue(db, 2000, text)

    run_worker_until(worker_for(ctx, "telegram"), lambda: len(fake_telegram.sent_messages()) >= 33)

    assert all(c.ok for c in fake_telegram.calls_to("sendMessage")), "a send was refused (429)"
    assert fake_telegram.max_sends_per_second() <= 15
    assert fake_telegram.sent_texts(2000) == steps
    assert fake_telegram.max_sends_per_second(2000) == 1


def test_a_group_gets_at_most_20_messages_a_minute(
    monkeypatch: pytest.MonkeyPatch, db: Database, fake_telegram: FakeTelegram
) -> None:
    # Per-chat pacing raised so 20 group messages take two seconds, not twenty.
    ctx = configure(
        monkeypatch, db, **telegram_env(fake_telegram), telegram_per_chat_per_second="10"
    )
    fake_telegram.enforce_limits(per_second=30, per_chat_per_second=10, per_group_per_minute=20)
    for n in range(23):
        queue(db, GROUP, f"Group message {n}")
    worker = worker_for(ctx, "telegram")

    run_worker_until(worker, lambda: len(fake_telegram.sent_messages(GROUP)) >= 20)
    assert drain(worker) == 0  # the other three wait for the minute to pass

    assert all(c.ok for c in fake_telegram.calls_to("sendMessage")), "a send was refused (429)"
    assert fake_telegram.sent_texts(GROUP) == [f"Group message {n}" for n in range(20)]
    assert fake_telegram.max_sends_per_minute(GROUP) == 20


def test_a_429_is_waited_out_then_delivered(
    monkeypatch: pytest.MonkeyPatch, db: Database, fake_telegram: FakeTelegram
) -> None:
    ctx = configure(monkeypatch, db, **telegram_env(fake_telegram))
    fake_telegram.rate_limit(retry_after=1, times=1)
    queue(db, 3000, "Your team's chart")

    run_worker_until(worker_for(ctx, "telegram"), lambda: fake_telegram.sent_texts(3000))

    refused, accepted = fake_telegram.calls_to("sendMessage")
    assert refused.status == 429 and accepted.ok
    assert accepted.at - refused.at >= 1.0  # Telegram's retry_after, honoured


def test_places_freeing_within_the_look_ahead_are_reserved_one_after_the_other() -> None:
    # A claim under a full window takes the places that free in the next moments, each send
    # waiting for its own, instead of one pass (and one transaction) per freed place.
    rl, clock = limiter()  # BOT: 3 sends a second
    for _ in range(3):
        ticket = rl.try_acquire(BOT)
        assert ticket is not None and ticket.delay() == 0
        ticket.settle()  # landed at 100.0
    clock.now = 100.5
    assert rl.try_acquire(BOT) is None
    assert rl.headroom(BOT[0]) == 0 and rl.headroom(BOT[0], within=0.6) == 3

    reserved = [rl.try_acquire(BOT, within=0.6) for _ in range(3)]
    assert all(t is not None for t in reserved)
    free_at = 100.0 + 1.0 + WINDOW_MARGIN_SECONDS
    assert [t.delay() for t in reserved if t] == pytest.approx([free_at - clock.now] * 3)
    assert rl.try_acquire(BOT, within=0.6) is None, "every place of the window is taken"
    assert rl.headroom(BOT[0], within=0.6) == 0

    # Sent when their places freed and landed then: the next window starts from there.
    clock.now = free_at
    for t in reserved:
        assert t is not None and t.delay() == 0
        t.settle()
    assert rl.headroom(BOT[0], within=0.5) == 0
    assert rl.headroom(BOT[0], within=1.0 + WINDOW_MARGIN_SECONDS) == 3


def test_a_claim_that_fails_gives_its_places_in_the_limits_back(
    monkeypatch: pytest.MonkeyPatch, db: Database, fake_telegram: FakeTelegram
) -> None:
    # Tickets are taken while the claim's transaction is open; if it cannot commit, nothing
    # was leased or sent, and those places must free within a window, not after minutes.
    ctx = configure(monkeypatch, db, **telegram_env(fake_telegram), telegram_per_second="5")
    for chat in range(4001, 4004):
        queue(db, chat, f"Reminder for chat {chat}")
    rl, clock = limiter()
    worker = worker_for(ctx, "telegram", limiter=rl)
    bot = channel_limit(ctx.settings, "telegram")
    assert bot is not None

    with db.engine.begin() as conn:  # the database loses a table mid-claim
        conn.execute(sql("ALTER TABLE messages RENAME TO messages_away"))
    try:
        with pytest.raises(SQLAlchemyError):
            drain(worker)
    finally:
        with db.engine.begin() as conn:
            conn.execute(sql("ALTER TABLE messages_away RENAME TO messages"))

    assert rl.headroom(bot) == 2  # the three taken count for this window ...
    clock.now += bot.window + WINDOW_MARGIN_SECONDS + 0.01
    assert rl.headroom(bot) == 5  # ... and no longer
    assert drain(worker) == 3
    assert sorted(fake_telegram.sent_texts(c)[0] for c in range(4001, 4004)) == [
        f"Reminder for chat {c}" for c in range(4001, 4004)
    ]
