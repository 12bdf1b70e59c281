"""POST /webhooks/telegram as Telegram posts it: secret header, JSON Update, retries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bots.telegram.webhook import webhook_secret
from dash.context import AppContext
from dash.db import Database
from dash.models import Message, Person
from tests.fakes import load_fixture
from tests.fakes.signing import telegram_headers
from tests.fakes.telegram_api import FakeTelegram
from tests.support.delivery import (
    channel_app,
    configure,
    count_messages,
    drain,
    free_port,
    served,
    telegram_env,
    worker_for,
)

URL = "/webhooks/telegram"


@pytest.fixture
def tg(monkeypatch: pytest.MonkeyPatch, db: Database, fake_telegram: FakeTelegram) -> AppContext:
    return configure(monkeypatch, db, **telegram_env(fake_telegram))


def post(ctx: AppContext, data: Any, secret: str | None) -> httpx.Response:
    """POST `data` over HTTP to the webhook as Telegram does."""
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    port = free_port()
    with served(channel_app(ctx), port) as origin:
        # A generous timeout: a loaded 2-core CI machine, not a speed test.
        return httpx.post(origin + URL, content=body, headers=telegram_headers(secret), timeout=30)


@pytest.mark.parametrize("secret", [None, "", "wrong-secret"])
def test_without_the_secret_token_nothing_is_stored(
    tg: AppContext, db: Database, secret: str | None
) -> None:
    answer = post(tg, load_fixture("telegram_private_text"), secret)

    assert answer.status_code == 403
    assert count_messages(db) == 0


def test_malformed_json_is_a_400(tg: AppContext, db: Database) -> None:
    answer = post(tg, b'{"update_id": 1, "message": ', webhook_secret(tg))

    assert answer.status_code == 400
    assert count_messages(db) == 0


@pytest.mark.parametrize("field", ["chat", "from"])
def test_an_update_whose_ids_are_not_integers_is_a_400(
    tg: AppContext, db: Database, field: str
) -> None:
    # Found by fuzzing on PostgreSQL: a dict as chat id became a 64+ character "address",
    # failed to store its reply and answered 503, so Telegram would retry it forever.
    update = load_fixture("telegram_private_text")
    update["message"][field]["id"] = {"": None, "0": None, "\x1f": None}
    answer = post(tg, update, webhook_secret(tg))

    assert answer.status_code == 400
    assert count_messages(db) == 0


def test_an_update_is_stored_and_answered_through_the_outbox(
    tg: AppContext, db: Database, fake_telegram: FakeTelegram
) -> None:
    answer = post(tg, load_fixture("telegram_private_text"), webhook_secret(tg))

    assert answer.status_code == 200
    assert count_messages(db, direction="in", channel="telegram", provider_id="u811332404") == 1
    assert drain(worker_for(tg, "telegram")) >= 1
    (reply,) = fake_telegram.sent_messages(7300100200)
    assert reply.params["text"].strip()


def test_a_repeated_update_counts_once(
    tg: AppContext, db: Database, fake_telegram: FakeTelegram
) -> None:
    update = load_fixture("telegram_private_text")

    first = post(tg, update, webhook_secret(tg))
    again = post(tg, update, webhook_secret(tg))  # Telegram retrying

    assert first.status_code == again.status_code == 200
    assert count_messages(db, direction="in") == 1
    drain(worker_for(tg, "telegram"))
    assert len(fake_telegram.sent_messages(7300100200)) == 1


def test_a_button_press_is_acknowledged(
    tg: AppContext, db: Database, fake_telegram: FakeTelegram
) -> None:
    answer = post(tg, load_fixture("telegram_callback_query"), webhook_secret(tg))

    assert answer.status_code == 200
    (ack,) = fake_telegram.calls_to("answerCallbackQuery")
    assert ack.params["callback_query_id"] == "504320520072928936"
    assert count_messages(db, direction="in", provider_id="u811332407") == 1


def test_database_down_answers_503_so_telegram_retries(tg: AppContext, tmp_path: Path) -> None:
    down = AppContext(
        settings=tg.settings,
        db=Database(f"sqlite:///{tmp_path / 'missing-folder' / 'dash.db'}"),
        secret=tg.secret,
    )

    answer = post(down, load_fixture("telegram_private_text"), webhook_secret(down))

    assert answer.status_code == 503


def test_an_update_with_nan_or_infinity_is_a_400(tg: AppContext, db: Database) -> None:
    # Found by fuzzing on PostgreSQL: Python's json accepts Infinity, JSONB refuses it (503).
    body = json.dumps(load_fixture("telegram_private_text")).replace(
        '"type": "private"', '"type": Infinity'
    )
    answer = post(tg, body.encode(), webhook_secret(tg))

    assert answer.status_code == 400
    assert count_messages(db) == 0


#: Updates Telegram could sign but nobody can act on: an id past 64 bits, a time past any
#: calendar. (field path in the fixture, value, what the stored reason names)
UNUSABLE = [
    (("message", "chat", "id"), 2**63, "message.chat.id"),
    (("message", "from", "id"), 2**63, "message.from.id"),
    (("message", "from", "id"), -(2**63) - 1, "message.from.id"),
    (("message", "date"), 1e20, "message.date"),
    (("message", "date"), -1, "message.date"),
]


@pytest.mark.parametrize(("path", "value", "named"), UNUSABLE)
def test_an_update_that_cannot_be_processed_is_kept_marked_and_not_retried(
    tg: AppContext, db: Database, fake_telegram: FakeTelegram, path: Any, value: Any, named: str
) -> None:
    update = load_fixture("telegram_private_text")
    target = update
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value

    first = post(tg, update, webhook_secret(tg))
    again = post(tg, update, webhook_secret(tg))  # Telegram delivering it again

    assert first.status_code == 200, first.text
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True
    with db.transaction() as s:
        (stored,) = s.execute(select(Message).where(Message.direction == "in")).scalars()
        assert stored.provider_id == "u811332404"
        assert stored.raw == json.loads(json.dumps(update)), "kept as sent"
        assert (stored.status, stored.error_code) == ("processed", "rejected")
        assert named in (stored.error_detail or "")
        assert s.execute(select(func.count(Person.id))).scalar_one() == 0, "nobody was made"
    assert count_messages(db, direction="out") == 0
    drain(worker_for(tg, "telegram"))
    assert fake_telegram.calls_to("sendMessage") == []


def test_ids_and_dates_at_the_edge_of_the_range_are_processed(
    tg: AppContext, db: Database, fake_telegram: FakeTelegram
) -> None:
    update = load_fixture("telegram_private_text")
    update["message"]["chat"]["id"] = update["message"]["from"]["id"] = 2**63 - 1
    update["message"]["date"] = 0

    assert post(tg, update, webhook_secret(tg)).status_code == 200
    with db.transaction() as s:
        (stored,) = s.execute(select(Message).where(Message.direction == "in")).scalars()
        assert stored.error_code is None
    assert count_messages(db, direction="out") >= 1, "answered"
