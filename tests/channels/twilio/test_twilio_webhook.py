"""POST /webhooks/twilio as Twilio posts it: form-encoded, signed over the public URL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bots.twilio.sender import window_open
from dash.context import AppContext
from dash.db import Database
from dash.models import Message, Person
from dash.timeutil import utcnow
from tests.fakes import load_fixture
from tests.fakes.signing import twilio_headers
from tests.fakes.twilio_api import FakeTwilio
from tests.support.delivery import (
    add_person,
    channel_app,
    configure,
    count_messages,
    drain,
    free_port,
    served,
    twilio_env,
    worker_for,
)


@pytest.fixture
def tw(
    monkeypatch: pytest.MonkeyPatch, db: Database, fake_twilio: FakeTwilio
) -> Iterator[tuple[AppContext, str]]:
    """Twilio configured; the app served at the public URL. Yields (ctx, origin)."""
    port = free_port()
    ctx = configure(
        monkeypatch, db, **twilio_env(fake_twilio), public_url=f"http://127.0.0.1:{port}"
    )
    with served(channel_app(ctx), port) as origin:
        yield ctx, origin


def post(
    origin: str, params: dict[str, str], headers: dict[str, str], path: str = "/webhooks/twilio"
) -> httpx.Response:
    # A generous timeout: a loaded 2-core CI machine, not a speed test.
    return httpx.post(origin + path, data=params, headers=headers, timeout=30)


def signed(
    ctx: AppContext, params: dict[str, Any], path: str = "/webhooks/twilio"
) -> dict[str, str]:
    return twilio_headers(str(ctx.settings.twilio_auth_token), ctx.settings.url(path), params)


def test_a_forged_signature_is_refused_and_nothing_stored(
    tw: tuple[AppContext, str], db: Database
) -> None:
    ctx, origin = tw
    params = load_fixture("twilio_sms_inbound")
    forged = twilio_headers(
        "0123456789abcdef0123456789abcdef", ctx.settings.url("/webhooks/twilio"), params
    )

    assert post(origin, params, forged).status_code == 403
    assert (
        post(origin, params, {"Content-Type": "application/x-www-form-urlencoded"}).status_code
        == 403
    )
    assert count_messages(db) == 0


def test_a_signature_for_other_fields_is_refused(tw: tuple[AppContext, str], db: Database) -> None:
    ctx, origin = tw
    params = load_fixture("twilio_sms_inbound")
    headers = signed(ctx, params)
    tampered = {**params, "Body": "9 of 9"}

    assert post(origin, tampered, headers).status_code == 403
    assert count_messages(db) == 0


def test_a_signed_sms_is_stored_and_answered_with_empty_twiml(
    tw: tuple[AppContext, str], db: Database, fake_twilio: FakeTwilio
) -> None:
    ctx, origin = tw
    params = load_fixture("twilio_sms_inbound")

    answer = post(origin, params, signed(ctx, params))

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/xml")
    assert answer.text.endswith("<Response/>")  # replies go through the REST API
    with db.transaction() as s:
        stored = s.execute(select(Message).where(Message.direction == "in")).scalar_one()
        assert (stored.channel, stored.address, stored.provider_id) == (
            "sms",
            "+15551230001",
            "SM665bf339f7e5407080f7b9aefa9cfba4",
        )
        assert stored.raw is not None and stored.raw["Body"] == "7 of 9"
    drain(worker_for(ctx, "sms"))
    (reply,) = fake_twilio.sent_messages(to="+15551230001")
    assert reply.params["Body"].strip()


def test_a_repeated_message_sid_counts_once(
    tw: tuple[AppContext, str], db: Database, fake_twilio: FakeTwilio
) -> None:
    ctx, origin = tw
    params = load_fixture("twilio_sms_inbound")

    assert post(origin, params, signed(ctx, params)).status_code == 200
    assert post(origin, params, signed(ctx, params)).status_code == 200  # Twilio retrying

    assert count_messages(db, direction="in") == 1
    drain(worker_for(ctx, "sms"))
    assert len(fake_twilio.sent_messages(to="+15551230001")) == 1


def test_whatsapp_is_told_apart_by_its_from_address_and_reopens_the_window(
    tw: tuple[AppContext, str], db: Database
) -> None:
    ctx, origin = tw
    person_id = add_person(db, name="Lupe", whatsapp="+5215512345678")
    params = {
        **load_fixture("twilio_whatsapp_inbound"),
        "NumMedia": "1",
        "MediaUrl0": "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1",
        "MediaContentType0": "image/jpeg",
    }

    assert post(origin, params, signed(ctx, params)).status_code == 200

    with db.transaction() as s:
        stored = s.execute(select(Message).where(Message.direction == "in")).scalar_one()
        assert stored.channel == "whatsapp" and stored.address == "+5215512345678"
    with db.transaction() as s:
        person = s.get(Person, person_id)
        assert person is not None
        (row,) = person.addresses
        assert row.last_inbound_at is not None and window_open(row.last_inbound_at, utcnow())


def test_a_forged_huge_num_media_is_read_as_at_most_twilios_ten() -> None:
    """Found by the route fuzzer: NumMedia=13125550101 made the webhook spin for hours."""
    from bots.twilio.inbound import parse_inbound

    params = {
        **load_fixture("twilio_sms_inbound"),
        "NumMedia": "13125550101",
        "MediaUrl0": "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1",
        "MediaContentType0": "image/jpeg",
    }

    inbound = parse_inbound(params)

    assert [m["url"] for m in inbound.media] == [params["MediaUrl0"]]
