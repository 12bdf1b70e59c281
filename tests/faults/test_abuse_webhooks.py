"""Hostile and broken webhook requests through the real routes of create_app.

Forged Twilio signatures, wrong Telegram secrets, replays, oversized and malformed bodies:
each is answered with a 4xx that says what is wrong (never a 500), nothing is stored from a
rejected request, and a replayed genuine request counts once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from bots.telegram.webhook import derived_secret, webhook_secret
from dash.app.server import create_app
from dash.context import AppContext
from dash.db import Database
from dash.models import Message, OutboxItem
from tests.fakes.signing import (
    TWILIO_SIGNATURE_HEADER,
    telegram_headers,
    twilio_signature,
)
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio
from tests.support.delivery import configure, telegram_env, twilio_env
from tests.support.webhooks import (
    TELEGRAM_PATH,
    TWILIO_PATH,
    Poster,
    telegram_update,
    twilio_params,
)

PUBLIC_URL = "https://dash.example.org"
STATUS_PATH = "/webhooks/twilio/status"


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
        public_url=PUBLIC_URL,
    )


@pytest.fixture
def client(ctx: AppContext) -> Iterator[TestClient]:
    with TestClient(
        create_app(ctx, background=False), raise_server_exceptions=False, base_url=PUBLIC_URL
    ) as c:
        yield c


@pytest.fixture
def poster(ctx: AppContext, client: TestClient) -> Poster:
    return Poster(ctx, client)


def stored(db: Database) -> tuple[int, int]:
    """(messages of any direction, outbox rows): both zero when nothing was kept."""
    with db.transaction() as s:
        return (
            s.execute(select(func.count(Message.id))).scalar_one(),
            s.execute(select(func.count(OutboxItem.id))).scalar_one(),
        )


def inbound_texts(db: Database) -> list[str]:
    with db.transaction() as s:
        return list(
            s.execute(
                select(Message.text).where(Message.direction == "in").order_by(Message.id)
            ).scalars()
        )


# -- Twilio signatures ---------------------------------------------------------------------

FORGERIES = [
    "no signature",
    "garbage",
    "another auth token",
    "http instead of https",
    "signed for the status URL",
    "body changed after signing",
    "field added after signing",
    "signature of an empty form",
]


def forged(ctx: AppContext, how: str) -> tuple[dict[str, str], dict[str, str]]:
    """(form fields, headers) of a forged inbound SMS."""
    token = str(ctx.settings.twilio_auth_token)
    url = ctx.settings.url(TWILIO_PATH)
    params = twilio_params("+13125550101", "JOIN ABC123")
    signed_params = dict(params)
    if how == "body changed after signing":
        params = {**params, "Body": "STOP"}
    if how == "field added after signing":
        params = {**params, "NumMedia": "1", "MediaUrl0": "https://evil.example/x.png"}
    signature = {
        "no signature": None,
        "garbage": "bm90IGEgc2lnbmF0dXJl",
        "another auth token": twilio_signature("0" * 32, url, signed_params),
        "http instead of https": twilio_signature(
            token, url.replace("https://", "http://"), signed_params
        ),
        "signed for the status URL": twilio_signature(
            token, ctx.settings.url(STATUS_PATH), signed_params
        ),
        "body changed after signing": twilio_signature(token, url, signed_params),
        "field added after signing": twilio_signature(token, url, signed_params),
        "signature of an empty form": twilio_signature(token, url, {}),
    }[how]
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature is not None:
        headers[TWILIO_SIGNATURE_HEADER] = signature
    return params, headers


@pytest.mark.parametrize("how", FORGERIES)
def test_a_forged_twilio_message_is_refused_and_nothing_is_stored(
    ctx: AppContext, client: TestClient, db: Database, how: str
) -> None:
    params, headers = forged(ctx, how)
    answer = client.post(TWILIO_PATH, data=params, headers=headers)
    assert answer.status_code == 403
    assert "signature" in answer.text
    assert stored(db) == (0, 0)


def test_a_forged_status_callback_cannot_move_a_message(
    ctx: AppContext, client: TestClient, poster: Poster, db: Database
) -> None:
    poster.twilio(twilio_params("+13125550101", "hello"))
    with db.transaction() as s:
        reply = s.execute(select(Message).where(Message.direction == "out")).scalars().first()
        assert reply is not None
        reply.provider_id, before = "SM" + "f" * 32, reply.status
        reply_id = reply.id
    params = {"MessageSid": "SM" + "f" * 32, "MessageStatus": "delivered"}
    url = ctx.settings.url(STATUS_PATH)
    answer = client.post(
        STATUS_PATH,
        data=params,
        headers={TWILIO_SIGNATURE_HEADER: twilio_signature("0" * 32, url, params)},
    )
    assert answer.status_code == 403
    with db.transaction() as s:
        assert s.get(Message, reply_id).status == before  # type: ignore[union-attr]


def test_a_status_callback_with_an_outlandish_error_code_is_kept_not_retried(
    ctx: AppContext, client: TestClient, poster: Poster, db: Database
) -> None:
    """Only five-digit codes come from Twilio; a longer one must still fit the column (on
    PostgreSQL it was refused: 503, and the callback retried for ever)."""
    poster.twilio(twilio_params("+13125550101", "hello"))
    with db.transaction() as s:
        reply = s.execute(select(Message).where(Message.direction == "out")).scalars().first()
        assert reply is not None
        reply.provider_id = "SM" + "e" * 32
        reply_id = reply.id
    params = {"MessageSid": "SM" + "e" * 32, "MessageStatus": "failed", "ErrorCode": "3" * 500}
    answer = poster.twilio(params, path=STATUS_PATH)
    assert answer.status_code == 200, answer.text
    with db.transaction() as s:
        failed = s.get(Message, reply_id)
        assert failed is not None and failed.status == "failed"
        assert failed.error_code == "3" * 32


# -- Telegram secret -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "wrong",
    [None, "", "wrong-secret", "trailing space", "upper case", "one character short"],
)
def test_a_wrong_telegram_secret_is_refused_and_nothing_is_stored(
    ctx: AppContext, client: TestClient, db: Database, wrong: str | None
) -> None:
    real = webhook_secret(ctx)
    secret = {
        "trailing space": real + " ",
        "upper case": real.upper() if real.upper() != real else real.lower(),
        "one character short": real[:-1],
    }.get(str(wrong), wrong)
    body = json.dumps(telegram_update(1, 700_001, "JOIN ABC123")).encode()
    answer = client.post(TELEGRAM_PATH, content=body, headers=telegram_headers(secret))
    assert answer.status_code == 403
    assert stored(db) == (0, 0)


def test_another_deployments_telegram_secret_is_refused(
    ctx: AppContext, client: TestClient, db: Database
) -> None:
    other = derived_secret("another deployment's secret key")
    assert other != webhook_secret(ctx)
    body = json.dumps(telegram_update(1, 700_001, "hi")).encode()
    assert (
        client.post(TELEGRAM_PATH, content=body, headers=telegram_headers(other)).status_code == 403
    )
    assert stored(db) == (0, 0)


# -- Replays ------------------------------------------------------------------------------


def test_a_replayed_twilio_request_counts_once(poster: Poster, db: Database) -> None:
    params = twilio_params("+13125550101", "hello there")
    answers = [poster.twilio(params) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert inbound_texts(db) == ["hello there"]
    first = stored(db)
    poster.twilio(params)
    assert stored(db) == first, "a sixth replay queued another reply"


def test_a_replayed_telegram_update_counts_once(poster: Poster, db: Database) -> None:
    update = telegram_update(42, 700_001, "hello there")
    answers = [poster.telegram(update) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert [a.json()["duplicate"] for a in answers] == [False, True, True, True, True]
    assert inbound_texts(db) == ["hello there"]


def test_a_replayed_signature_on_a_changed_body_is_refused(
    ctx: AppContext, client: TestClient, poster: Poster, db: Database
) -> None:
    params = twilio_params("+13125550101", "hello there")
    genuine = poster.twilio(params)
    assert genuine.status_code == 200
    signature = genuine.request.headers[TWILIO_SIGNATURE_HEADER]
    tampered = {**params, "MessageSid": "SM" + "e" * 32, "Body": "STOP"}
    answer = client.post(TWILIO_PATH, data=tampered, headers={TWILIO_SIGNATURE_HEADER: signature})
    assert answer.status_code == 403
    assert inbound_texts(db) == ["hello there"]


# -- Oversized bodies ----------------------------------------------------------------------


def test_an_oversized_telegram_update_is_refused_unread(
    ctx: AppContext, poster: Poster, db: Database
) -> None:
    limit = ctx.settings.max_request_bytes
    answer = poster.telegram(telegram_update(1, 700_001, "x" * (limit + 1)))
    assert answer.status_code == 413
    assert "too large" in answer.text
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert stored(db) == (0, 0)


def test_an_oversized_twilio_message_is_refused_unread(
    ctx: AppContext, poster: Poster, db: Database
) -> None:
    limit = ctx.settings.max_request_bytes
    answer = poster.twilio(twilio_params("+13125550101", "x" * (limit + 1)))
    assert answer.status_code == 413
    assert stored(db) == (0, 0)


def test_a_streamed_body_without_length_is_cut_off_at_the_limit(
    ctx: AppContext, client: TestClient, db: Database
) -> None:
    limit = ctx.settings.max_request_bytes
    head = json.dumps(telegram_update(1, 700_001, "x"))[:-2].encode()

    def chunks() -> Iterator[bytes]:
        yield head
        for _ in range(limit // 4096 + 2):
            yield b"x" * 4096
        yield b'"}}'

    answer = client.post(
        TELEGRAM_PATH,
        content=chunks(),
        headers={**telegram_headers(webhook_secret(ctx)), "Transfer-Encoding": "chunked"},
    )
    assert answer.status_code == 413
    assert stored(db) == (0, 0)


def test_a_huge_log_in_form_is_refused(ctx: AppContext, client: TestClient) -> None:
    limit = ctx.settings.max_request_bytes
    answer = client.post("/login", data={"email": "a@example.org", "password": "p" * limit})
    assert answer.status_code == 413


def test_a_long_but_reasonable_text_is_kept_and_answered(
    ctx: AppContext, poster: Poster, db: Database
) -> None:
    """Under the byte limit but over the chat limit: kept as sent, and the sender is told."""
    text = "é" * (ctx.settings.max_message_chars + 10)
    assert poster.telegram(telegram_update(1, 700_001, text)).status_code == 200
    assert inbound_texts(db) == [text]
    with db.transaction() as s:
        replies = s.execute(select(Message.text).where(Message.direction == "out")).scalars()
        assert any("too long" in r for r in replies)


# -- Malformed bodies ----------------------------------------------------------------------

BAD_JSON = {
    "empty": b"",
    "truncated": b'{"update_id": 1, "message": {',
    "null": b"null",
    "a list": b"[1, 2, 3]",
    "a string": b'"update"',
    "update_id as text": b'{"update_id": "1"}',
    "not UTF-8": b'{"update_id": 1, "message": "\xff\xfe"}',
    "deeply nested": b"[" * 100_000 + b"]" * 100_000,
    "message is a string": b'{"update_id": 1, "message": "hello"}',
    "text is a number": json.dumps(
        {
            **telegram_update(1, 700_001, "x"),
            "message": {**telegram_update(1, 700_001, "x")["message"], "text": 5},
        }
    ).encode(),
    "from is a list": json.dumps(
        {"update_id": 1, "message": {**telegram_update(1, 700_001, "x")["message"], "from": [1]}}
    ).encode(),
    "chat without id": json.dumps(
        {"update_id": 1, "message": {**telegram_update(1, 700_001, "x")["message"], "chat": {}}}
    ).encode(),
    "date is text": json.dumps(
        {"update_id": 1, "message": {**telegram_update(1, 700_001, "x")["message"], "date": "x"}}
    ).encode(),
    "chat id is an object": json.dumps(
        {
            "update_id": 1,
            "message": {
                **telegram_update(1, 700_001, "x")["message"],
                "chat": {"id": {"a": [1.5, "x" * 80]}, "type": "private"},
            },
        }
    ).encode(),
    "user id is text": json.dumps(
        {
            "update_id": 1,
            "message": {
                **telegram_update(1, 700_001, "x")["message"],
                "from": {"id": "abc", "is_bot": False, "first_name": "A"},
            },
        }
    ).encode(),
    "button data is a number": json.dumps(
        {
            "update_id": 1,
            "callback_query": {
                "id": "1",
                "from": {"id": 700_001, "is_bot": False, "first_name": "A"},
                "chat_instance": "1",
                "data": 5,
            },
        }
    ).encode(),
}


@pytest.mark.parametrize("name", sorted(BAD_JSON))
def test_malformed_telegram_json_is_a_400_and_nothing_is_stored(
    poster: Poster, db: Database, name: str
) -> None:
    answer = poster.telegram(BAD_JSON[name])
    assert answer.status_code == 400, answer.text
    assert "not a Telegram update" in answer.json()["error"]
    assert stored(db) == (0, 0)


def _signed_raw(ctx: AppContext, params: dict[str, str]) -> dict[str, str]:
    url = ctx.settings.url(TWILIO_PATH)
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        TWILIO_SIGNATURE_HEADER: twilio_signature(str(ctx.settings.twilio_auth_token), url, params),
    }


@pytest.mark.parametrize(
    "fields",
    [
        {"Body": "hello", "From": "+13125550101"},  # no MessageSid
        {"MessageSid": "SM1", "Body": "hello"},  # no From
        {"MessageSid": "SM1", "Body": "hello", "From": "not a phone"},
        {"MessageSid": "SM1", "Body": "hello", "From": "whatsapp:"},
    ],
    ids=["no MessageSid", "no From", "From is not a number", "empty WhatsApp address"],
)
def test_signed_but_incomplete_twilio_forms_are_a_400_and_nothing_is_stored(
    ctx: AppContext, client: TestClient, db: Database, fields: dict[str, str]
) -> None:
    answer = client.post(TWILIO_PATH, data=fields, headers=_signed_raw(ctx, fields))
    assert answer.status_code == 400, answer.text
    assert "not a Twilio message" in answer.text
    assert stored(db) == (0, 0)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"Body=%FF%FE&From=%2B13125550101&MessageSid=SM1"),
        ("application/x-www-form-urlencoded", b"&&&==&=%%%"),
        ("multipart/form-data; boundary=xyz", b"--xyz\r\nnot a part\r\n--xyz--"),
        ("multipart/form-data", b"no boundary at all"),
        ("application/json", b'{"MessageSid": "SM1"}'),
    ],
    ids=["not UTF-8", "garbage fields", "broken multipart", "multipart without boundary", "json"],
)
def test_garbled_twilio_bodies_never_cause_a_500_and_store_nothing(
    ctx: AppContext, client: TestClient, db: Database, content_type: str, body: bytes
) -> None:
    headers = {"Content-Type": content_type, TWILIO_SIGNATURE_HEADER: "c2lnbmF0dXJl"}
    for path in (TWILIO_PATH, STATUS_PATH):
        answer = client.post(path, content=body, headers=headers)
        assert 400 <= answer.status_code < 500, (path, answer.status_code, answer.text)
    assert stored(db) == (0, 0)


def test_a_nul_character_is_kept_readable_and_answered(poster: Poster, db: Database) -> None:
    """PostgreSQL cannot store NUL: without care such a message is refused forever (503s)."""
    assert poster.telegram(telegram_update(1, 700_001, "5/10\x00 today")).status_code == 200
    assert poster.twilio(twilio_params("+13125550101", "hi\x00")).status_code == 200
    assert inbound_texts(db) == ["5/10\ufffd today", "hi\ufffd"]
    assert stored(db)[1] >= 2, "each message was answered"


def test_a_message_whose_reply_cannot_be_stored_is_kept_not_retried_forever(
    ctx: AppContext, db: Database
) -> None:
    """An address the database refuses (PostgreSQL: longer than the column) breaks the reply
    and the apology; the message is still kept for the coach and the call returns, so a
    webhook answers 200 instead of 5xx-ing the provider into endless retries."""
    from dash.engine import handle_inbound
    from dash.inbound import InboundMessage
    from dash.timeutil import utcnow

    address = "console-" + "x" * 200
    result = handle_inbound(
        ctx,
        InboundMessage(
            channel="console",
            provider_id="c-1",
            address=address,
            sender=address,
            text="hello",
            received_at=utcnow(),
            raw={"text": "hello"},
        ),
    )
    assert not result.duplicate
    with db.transaction() as s:
        message = s.get(Message, result.message_id)
        assert message is not None and message.status == "processed"
