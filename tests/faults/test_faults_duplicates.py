"""Duplicate webhook storms: every update delivered three times, concurrently, counts once.

Providers retry a webhook they think failed, and a slow answer can make them send it again
while the first is still being handled. Here every Telegram update and every Twilio message
is posted three times at once from a pool of threads to the app served by uvicorn. Each
person must see exactly the replies a calm, one-delivery conversation gives, and the thread
must hold each message once.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import select

from dash.app.server import create_app
from dash.context import AppContext
from dash.db import Database
from dash.models import Message
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio
from tests.support.delivery import configure, free_port, served, telegram_env, twilio_env
from tests.support.figures import record
from tests.support.webhooks import Poster, telegram_update, twilio_params

PEOPLE = 8
TEXTS = ["hello", "JOIN NOSUCHCODE", "HELP"]
COPIES = 3


@pytest.fixture
def origin_ctx(
    monkeypatch: pytest.MonkeyPatch,
    db: Database,
    fake_telegram: FakeTelegram,
    fake_twilio: FakeTwilio,
) -> Iterator[tuple[str, AppContext]]:
    port = free_port()
    ctx = configure(
        monkeypatch,
        db,
        **telegram_env(fake_telegram),
        **twilio_env(fake_twilio),
        public_url=f"http://127.0.0.1:{port}",
    )
    with served(create_app(ctx, background=False), port) as origin:
        yield origin, ctx


def deliver_until_accepted(send: Callable[[], httpx.Response], tries: int = 20) -> int:
    """Post as a provider does: again after a 5xx or a dropped connection. Returns retries."""
    for attempt in range(tries):
        try:
            answer = send()
        except httpx.TransportError:
            time.sleep(0.05)
            continue
        if answer.status_code == 200:
            return attempt
        assert answer.status_code >= 500, answer.text
        time.sleep(0.05)
    raise AssertionError("never accepted")


def conversation(db: Database, channel: str, address: str) -> list[tuple[str, str]]:
    """(direction, text) of everything to and from `address`, in order."""
    with db.transaction() as s:
        rows = s.execute(
            select(Message.direction, Message.text)
            .where(Message.channel == channel, Message.address == address)
            .order_by(Message.id)
        ).all()
    return [(d, t) for d, t in rows]


@pytest.mark.parametrize("channel", ["telegram", "sms"])
def test_each_update_delivered_three_times_at_once_counts_once(
    origin_ctx: tuple[str, AppContext], db: Database, channel: str
) -> None:
    origin, ctx = origin_ctx
    local = threading_local_client()

    def poster() -> Poster:
        return Poster(ctx, local(), origin)

    def address(person: int) -> str:
        return str(710_000 + person) if channel == "telegram" else f"+1312556{person:04d}"

    def payload(person: int, n: int) -> Callable[[], httpx.Response]:
        if channel == "telegram":
            update = telegram_update(person * 100 + n + 1, 710_000 + person, TEXTS[n])
            return lambda: poster().telegram(update)
        params = twilio_params(address(person), TEXTS[n], sid=f"SM{person:016d}{n:016d}")
        return lambda: poster().twilio(params)

    # The calm conversation: person 0 sends each text once, waiting for each answer.
    for n in range(len(TEXTS)):
        deliver_until_accepted(payload(0, n))
    calm = conversation(db, channel, address(0))
    assert [t for d, t in calm if d == "in"] == TEXTS

    # The storm: persons 1..PEOPLE, each message three times at once, messages of one
    # person in order (a person waits for the answer before writing again), people mixed.
    rounds = [
        [payload(p, n) for p in range(1, PEOPLE + 1) for _ in range(COPIES)]
        for n in range(len(TEXTS))
    ]
    started = time.monotonic()
    retries = 0
    with ThreadPoolExecutor(max_workers=PEOPLE * COPIES) as pool:
        for sends in rounds:
            random.shuffle(sends)
            retries += sum(pool.map(deliver_until_accepted, sends))
    elapsed = time.monotonic() - started

    for p in range(1, PEOPLE + 1):
        seen = conversation(db, channel, address(p))
        inbound = [t for d, t in seen if d == "in"]
        assert inbound == TEXTS, f"person {p}: {Counter(inbound)}"
        assert seen == calm, f"person {p} got other replies than a calm conversation"
    record(
        f"duplicate storm ({channel})",
        posts=PEOPLE * len(TEXTS) * COPIES,
        messages=PEOPLE * len(TEXTS),
        stored=PEOPLE * len(TEXTS),
        duplicated=0,
        provider_retries_after_5xx=retries,
        seconds=round(elapsed, 2),
    )


def threading_local_client() -> Callable[[], httpx.Client]:
    """One keep-alive HTTP client per thread, as each provider connection would be."""
    import threading

    store = threading.local()

    def get() -> httpx.Client:
        client = getattr(store, "client", None)
        if client is None:
            client = store.client = httpx.Client(timeout=30)
        return client

    return get
