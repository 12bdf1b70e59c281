"""The sliding-window limiter on its own, with a hand-moved clock (no sleeping).

What a user would notice: the provider never sees more than the limit in any window (no
429, no lost minutes of backoff), and the worker reuses each slot as soon as it is free.
"""

from __future__ import annotations

import pytest

from bots.ratelimit import (
    IN_FLIGHT_HOLD_SECONDS,
    WINDOW_MARGIN_SECONDS,
    Limit,
    channel_limit,
)
from dash.settings import Settings
from tests.support.ratelimit import BOT, limiter


def test_a_full_window_refuses_until_the_oldest_landed_send_leaves_it() -> None:
    rl, clock = limiter()
    tickets = [rl.try_acquire(BOT) for _ in range(3)]
    assert all(tickets)
    assert rl.try_acquire(BOT) is None
    clock.now += 0.2
    for ticket in tickets:
        assert ticket is not None
        ticket.settle()  # all three answered at 100.2
    assert rl.wait_time(BOT) == pytest.approx(1.0 + WINDOW_MARGIN_SECONDS)
    clock.now += 1.0
    assert rl.try_acquire(BOT) is None, "the provider still counts the sends that landed at .2"
    clock.now += WINDOW_MARGIN_SECONDS + 0.001
    assert rl.try_acquire(BOT) is not None


def test_a_send_still_out_keeps_its_place_however_long_it_takes() -> None:
    # A slow send may reach the provider at any moment: counting it from when it started
    # would let the next window's sends land beside it.
    rl, clock = limiter()
    slow = rl.try_acquire(BOT)
    assert slow is not None
    for _ in range(2):
        assert rl.try_acquire(BOT) is not None
    clock.now += 30.0  # the other two never settle either (their tickets were lost)
    assert rl.try_acquire(BOT) is None
    assert rl.headroom(BOT[0]) == 0
    slow.settle()
    assert rl.headroom(BOT[0]) == 0, "it landed just now: it counts for one more window"
    clock.now += 1.0 + WINDOW_MARGIN_SECONDS + 0.001
    assert rl.headroom(BOT[0]) == 1, "the two sends still out hold two places"
    clock.now += IN_FLIGHT_HOLD_SECONDS
    assert rl.headroom(BOT[0]) == 3, "a lost ticket stops holding its place eventually"


def test_headroom_counts_free_slots_and_is_zero_while_paused() -> None:
    rl, clock = limiter()
    assert rl.headroom(BOT[0]) == 3
    ticket = rl.try_acquire(BOT)
    assert ticket is not None
    assert rl.headroom(BOT[0]) == 2
    ticket.settle()
    rl.pause("telegram", 5.0)
    assert rl.headroom(BOT[0]) == 0
    clock.now += 5.1
    assert rl.headroom(BOT[0]) == 3


def test_bulk_leaves_the_reply_share_free() -> None:
    rl, _ = limiter(bulk_share=0.8)
    limit = [Limit("telegram", 10, 1.0)]
    sent = [rl.try_acquire(limit, bulk=True) for _ in range(10)]
    assert sum(t is not None for t in sent) == 8
    assert rl.headroom(limit[0], bulk=True) == 0
    assert rl.headroom(limit[0]) == 2
    assert rl.try_acquire(limit) is not None, "a reply still goes"


def test_channel_limit_is_the_limit_every_send_of_the_channel_shares() -> None:
    settings = Settings(telegram_per_second=30, twilio_sms_per_second=1)
    bot = channel_limit(settings, "telegram")
    assert bot is not None and (bot.key, bot.count, bot.window) == ("telegram", 30, 1.0)
    sms = channel_limit(settings, "sms")
    assert sms is not None and sms.key == "sms"
    assert channel_limit(settings, "console") is None
