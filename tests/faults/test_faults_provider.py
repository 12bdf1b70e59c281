"""The channel APIs misbehave for a while (5xx, timeouts, 429 storms); nothing is lost.

Messages are queued to several chats, then the real delivery worker loop sends them through
the real client libraries to the fake Telegram / Twilio servers while those answer 500s,
hang past the client's read timeout, or answer 429 to everything. Afterwards every message
has arrived, in its chat's order, and any message that arrived twice is one whose attempt
count says a send was in doubt.

"A while" is compressed: the outages last two seconds and the retry backoff is set to match
(DASH_BACKOFF_BASE_SECONDS=0.05, max 0.4 s, 30 attempts). FAULT_OUTAGE_SECONDS=60 runs the full
minute with the production retry settings (2 s doubling, 8 attempts: a message rides out about
four minutes of 5xx before it is marked failed for a person to retry); docs/RELIABILITY.md
has the figures of both.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from dash.actions.queueing import queue_message
from dash.context import AppContext
from dash.db import Database
from dash.models import OutboxItem
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio
from tests.support.delivery import (
    configure,
    run_worker_until,
    telegram_env,
    twilio_env,
    worker_for,
)
from tests.support.figures import record
from tests.support.people import reachable

CHATS = 4
PER_CHAT = 6
OUTAGE_SECONDS = float(os.environ.get("FAULT_OUTAGE_SECONDS", "2"))
#: A long outage is run with the production retry settings, not compressed ones.
PRODUCTION_RETRIES = OUTAGE_SECONDS >= 30


@pytest.fixture
def ctx(
    monkeypatch: pytest.MonkeyPatch,
    db: Database,
    fake_telegram: FakeTelegram,
    fake_twilio: FakeTwilio,
) -> AppContext:
    return configure(
        monkeypatch,
        db,
        **telegram_env(fake_telegram),
        **twilio_env(fake_twilio),
        # Pacing is not under test here (test_delivery_limits); retries are.
        telegram_per_second="200",
        telegram_per_chat_per_second="200",
        twilio_sms_per_second="200",
        delivery_poll_seconds="0.05",
        **(
            {}
            if PRODUCTION_RETRIES
            else {
                "backoff_base_seconds": "0.05",
                "backoff_max_seconds": "0.4",
                "max_attempts": "30",
            }
        ),
    )


@dataclass
class Queued:
    """What was queued, per chat address, in order."""

    by_chat: dict[str, list[str]]

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.by_chat.values())


def queue_traffic(ctx: AppContext, channel: str) -> Queued:
    """PER_CHAT messages to each of CHATS people on `channel`, queued in one transaction."""
    by_chat: dict[str, list[str]] = {}
    with ctx.db.transaction() as s:
        for c in range(CHATS):
            if channel == "telegram":
                person = reachable(name=f"Nurse {c}", telegram=610_000 + c)
                address = str(610_000 + c)
            else:
                person = reachable(name=f"Nurse {c}", sms=f"+1312555{c:04d}")
                address = f"+1312555{c:04d}"
            s.add(person)
            s.flush()
            texts = [f"chat {c}: message {n} of {PER_CHAT}" for n in range(1, PER_CHAT + 1)]
            for text in texts:
                queue_message(s, channel=channel, address=address, text=text, person=person)
            by_chat[address] = texts
    return Queued(by_chat)


def delivered(fake: FakeTelegram | FakeTwilio, channel: str, address: str) -> list[str]:
    """Texts the provider accepted for `address`, in arrival order (repeats included)."""
    if channel == "telegram":
        assert isinstance(fake, FakeTelegram)
        return fake.sent_texts(address)
    assert isinstance(fake, FakeTwilio)
    return fake.sent_bodies(address)


def all_sent(db: Database) -> Callable[[], bool]:
    def check() -> bool:
        with db.transaction() as s:
            states = s.execute(select(OutboxItem.state)).scalars().all()
        return bool(states) and all(state == "sent" for state in states)

    return check


def run_through_outage(
    ctx: AppContext,
    db: Database,
    fake: FakeTelegram | FakeTwilio,
    channel: str,
    start_outage: Callable[[], None],
    end_outage: Callable[[], None],
    *,
    scenario: str,
    timeout: float = 40.0,
) -> dict[str, object]:
    timeout += 3 * OUTAGE_SECONDS if PRODUCTION_RETRIES else 0
    """Queue traffic, break the provider for OUTAGE_SECONDS while the worker runs, check."""
    queued = queue_traffic(ctx, channel)
    ended_at: list[float] = []

    def heal() -> None:
        end_outage()
        ended_at.append(time.monotonic())

    start_outage()
    timer = threading.Timer(OUTAGE_SECONDS, heal)
    timer.start()
    try:
        run_worker_until(worker_for(ctx, channel), all_sent(db), timeout=timeout)
    finally:
        timer.cancel()
    done_at = time.monotonic()
    time.sleep(0.3)  # a send still in flight at the provider would land now

    refused = [c for c in fake.calls if not c.ok and c.method.lower() != "getme"]
    duplicates = 0
    with db.transaction() as s:
        attempts = {
            (row.address, row.message.text): row.attempts
            for row in s.execute(select(OutboxItem)).scalars()
        }
    assert max(attempts.values()) >= 2, "the outage never hit a send: the test proved nothing"
    for address, texts in queued.by_chat.items():
        arrived = delivered(fake, channel, address)
        first_arrivals = list(dict.fromkeys(arrived))
        assert first_arrivals == texts, f"chat {address}: lost or out of order: {arrived}"
        for text, count in Counter(arrived).items():
            assert count <= 2, f"{text!r} arrived {count} times"
            if count == 2:
                duplicates += 1
                assert attempts[(address, text)] >= 2, f"{text!r} doubled without a retry"
    figures = record(
        scenario,
        channel=channel,
        queued=queued.total,
        delivered=sum(len(set(delivered(fake, channel, a))) for a in queued.by_chat),
        lost=0,
        duplicated=duplicates,
        refused_calls=len(refused),
        max_attempts=max(attempts.values()),
        outage_seconds=OUTAGE_SECONDS,
        recovery_seconds=round(done_at - ended_at[0], 2) if ended_at else 0.0,
    )
    return figures


def test_telegram_500s_for_a_while_lose_nothing_and_keep_order(
    ctx: AppContext, db: Database, fake_telegram: FakeTelegram
) -> None:
    figures = run_through_outage(
        ctx,
        db,
        fake_telegram,
        "telegram",
        lambda: fake_telegram.fail_next(10**6, status=500),
        fake_telegram.clear_faults,
        scenario="telegram 500s",
    )
    assert figures["duplicated"] == 0, "a 500 means not delivered: nothing may arrive twice"


def test_telegram_429_storm_lose_nothing_and_keep_order(
    ctx: AppContext, db: Database, fake_telegram: FakeTelegram
) -> None:
    figures = run_through_outage(
        ctx,
        db,
        fake_telegram,
        "telegram",
        lambda: fake_telegram.rate_limit(retry_after=1, times=10**6),
        fake_telegram.clear_faults,
        scenario="telegram 429 storm",
    )
    assert figures["duplicated"] == 0


def test_telegram_timeouts_deliver_everything_and_double_only_sends_in_doubt(
    ctx: AppContext, db: Database, fake_telegram: FakeTelegram
) -> None:
    """The Bot API hangs past the client's 10 s read timeout, then answers late.

    A timed-out send may still have arrived (as here: the fake delivers after its delay),
    so retrying it can double it. The worker retries, never loses, and each doubled message
    has attempts >= 2 on its outbox row.
    """
    run_through_outage(
        ctx,
        db,
        fake_telegram,
        "telegram",
        lambda: fake_telegram.slow(10.5),
        lambda: fake_telegram.slow(0),
        scenario="telegram timeouts",
        timeout=45.0,
    )


def test_twilio_500s_for_a_while_lose_nothing_and_keep_order(
    ctx: AppContext, db: Database, fake_twilio: FakeTwilio
) -> None:
    figures = run_through_outage(
        ctx,
        db,
        fake_twilio,
        "sms",
        lambda: fake_twilio.fail_next(10**6, status=500),
        fake_twilio.clear_faults,
        scenario="twilio 500s",
    )
    assert figures["duplicated"] == 0


def test_twilio_429_storm_lose_nothing_and_keep_order(
    ctx: AppContext, db: Database, fake_twilio: FakeTwilio
) -> None:
    figures = run_through_outage(
        ctx,
        db,
        fake_twilio,
        "sms",
        lambda: fake_twilio.rate_limit(10**6),
        fake_twilio.clear_faults,
        scenario="twilio 429 storm",
    )
    assert figures["duplicated"] == 0
