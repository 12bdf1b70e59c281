"""Flood limits, measured by a fake Telegram server that counts every send per second.

The fake answers 429 to any send over Telegram's limits, so a run with no 429 and the
counts below means the worker paced itself; a 429 it provokes is waited out.
"""

from __future__ import annotations

import pytest

from dash.actions.outbound import queue_message
from dash.context import AppContext
from dash.db import Database
from tests.fakes.telegram_api import FakeTelegram
from tests.test_delivery_kit import (
    configure,
    drain,
    run_worker_until,
    telegram_env,
    worker_for,
)

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
