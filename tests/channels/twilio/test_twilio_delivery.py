"""SMS and WhatsApp out through the real twilio client against the fake Twilio REST API,
and Twilio's status callbacks back in over HTTP, signed as Twilio signs them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from dash.actions.queueing import queue_message
from dash.context import AppContext
from dash.db import Database
from dash.models import Message, OutboxItem, Person
from dash.timeutil import utcnow
from tests.fakes.twilio_api import FakeTwilio
from tests.support.delivery import (
    add_person,
    channel_app,
    configure,
    drain,
    free_port,
    run_worker_until,
    served,
    twilio_env,
    worker_for,
)

NURSE = "+15551230001"
TEMPLATE = {"content_sid": "HX0123456789abcdef0123456789abcdef", "variables": {"1": "5 West"}}


@pytest.fixture
def tw(
    monkeypatch: pytest.MonkeyPatch, db: Database, fake_twilio: FakeTwilio
) -> Iterator[AppContext]:
    """Twilio configured, with our webhooks served where the public URL says."""
    port = free_port()
    ctx = configure(
        monkeypatch, db, **twilio_env(fake_twilio), public_url=f"http://127.0.0.1:{port}"
    )
    with served(channel_app(ctx), port):
        yield ctx


def queue(db: Database, channel: str, person_id: int | None, text: str, **kwargs: Any) -> int:
    with db.transaction() as s:
        person = s.get(Person, person_id) if person_id else None
        address = NURSE if person is None else person.addresses[0].address
        message = queue_message(
            s, channel=channel, address=str(address), text=text, person=person, **kwargs
        )
        assert message is not None
        return int(message.id)


def message_row(db: Database, message_id: int) -> Message:
    with db.transaction() as s:
        message = s.get(Message, message_id)
        assert message is not None
        return message


def outbox_row(db: Database, message_id: int) -> OutboxItem:
    with db.transaction() as s:
        return s.execute(select(OutboxItem).where(OutboxItem.message_id == message_id)).scalar_one()


def test_sms_goes_out_with_a_status_callback(
    tw: AppContext, db: Database, fake_twilio: FakeTwilio
) -> None:
    message_id = queue(db, "sms", None, "Thanks, 7 of 9 recorded.")

    assert drain(worker_for(tw, "sms")) == 1

    (call,) = fake_twilio.sent_messages(to=NURSE)
    assert call.params["From"] == "+15550000000"
    assert call.params["Body"] == "Thanks, 7 of 9 recorded."
    assert call.params["StatusCallback"] == tw.settings.url("/webhooks/twilio/status")
    message = message_row(db, message_id)
    assert message.status == "sent" and message.provider_id in fake_twilio.messages


def test_status_callbacks_out_of_order_only_move_forward(
    tw: AppContext, db: Database, fake_twilio: FakeTwilio
) -> None:
    message_id = queue(db, "sms", None, "Your session starts at 12:30.")
    drain(worker_for(tw, "sms"))
    sid = str(message_row(db, message_id).provider_id)

    assert fake_twilio.send_status_callback(sid, "delivered") == 200
    assert message_row(db, message_id).status == "delivered"
    fake_twilio.send_status_callback(sid, "sent")  # late, older news
    assert message_row(db, message_id).status == "delivered"
    fake_twilio.send_status_callback(sid, "queued")
    assert message_row(db, message_id).status == "delivered"
    fake_twilio.send_status_callback(sid, "read")
    assert message_row(db, message_id).status == "read"


def test_a_failure_report_is_final_and_keeps_its_error_code(
    tw: AppContext, db: Database, fake_twilio: FakeTwilio
) -> None:
    message_id = queue(db, "sms", None, "Reminder: today's measure")
    drain(worker_for(tw, "sms"))
    sid = str(message_row(db, message_id).provider_id)

    fake_twilio.send_status_callback(sid, "undelivered", 30003)
    fake_twilio.send_status_callback(sid, "delivered")

    message = message_row(db, message_id)
    assert message.status == "undelivered" and message.error_code == "30003"


def test_a_status_callback_with_a_forged_signature_changes_nothing(
    tw: AppContext, db: Database, fake_twilio: FakeTwilio
) -> None:
    message_id = queue(db, "sms", None, "Hello")
    drain(worker_for(tw, "sms"))
    sid = str(message_row(db, message_id).provider_id)
    real_token = fake_twilio.auth_token
    fake_twilio.auth_token = "not-the-auth-token-0000000000000"  # signs with the wrong token

    assert fake_twilio.send_status_callback(sid, "failed", 30008) == 403

    fake_twilio.auth_token = real_token
    assert message_row(db, message_id).status == "sent"


def test_21610_on_send_opts_the_person_out(
    tw: AppContext, db: Database, fake_twilio: FakeTwilio
) -> None:
    person_id = add_person(db, name="Ana", sms=NURSE, preferred_channel="sms")
    fake_twilio.opt_out(NURSE)  # they texted STOP to our number
    message_id = queue(db, "sms", person_id, "Today's prompt")

    drain(worker_for(tw, "sms"))

    assert fake_twilio.sent_messages(to=NURSE) == []
    assert outbox_row(db, message_id).state == "failed"
    message = message_row(db, message_id)
    assert message.status == "failed" and message.error_code == "21610"
    with db.transaction() as s:
        person = s.get(Person, person_id)
        assert person is not None and person.opted_out
        assert "21610" in (person.opted_out_reason or "")


def test_21610_in_a_status_callback_opts_the_person_out(
    tw: AppContext, db: Database, fake_twilio: FakeTwilio
) -> None:
    person_id = add_person(db, name="Ben", sms=NURSE, preferred_channel="sms")
    message_id = queue(db, "sms", person_id, "Today's prompt")
    drain(worker_for(tw, "sms"))
    sid = str(message_row(db, message_id).provider_id)

    fake_twilio.send_status_callback(sid, "failed", 21610)

    with db.transaction() as s:
        person = s.get(Person, person_id)
        assert person is not None and person.opted_out
    assert message_row(db, message_id).status == "failed"


def test_whatsapp_outside_the_window_sends_the_template(
    tw: AppContext, db: Database, fake_twilio: FakeTwilio
) -> None:
    person_id = add_person(db, name="Cy", whatsapp=NURSE, preferred_channel="whatsapp")
    fake_twilio.whatsapp_session_closed(NURSE)  # free-form would fail with 63016
    message_id = queue(
        db,
        "whatsapp",
        person_id,
        "Good morning 5 West! Today's measure ...",
        payload={"template": TEMPLATE},
    )

    drain(worker_for(tw, "whatsapp"))

    (call,) = fake_twilio.sent_messages(to=f"whatsapp:{NURSE}")
    assert call.params["From"] == "whatsapp:+15550000001"
    assert call.params["ContentSid"] == TEMPLATE["content_sid"]
    assert FakeTwilio.parsed_content_variables(call) == {"1": "5 West"}
    assert "Body" not in call.params
    assert message_row(db, message_id).status == "sent"


def test_whatsapp_inside_the_window_sends_the_text(
    tw: AppContext, db: Database, fake_twilio: FakeTwilio
) -> None:
    person_id = add_person(
        db,
        name="Di",
        whatsapp=NURSE,
        last_inbound_at=utcnow() - timedelta(hours=2),
    )
    queue(db, "whatsapp", person_id, "Thanks for your data!", payload={"template": TEMPLATE})

    drain(worker_for(tw, "whatsapp"))

    (call,) = fake_twilio.sent_messages(to=f"whatsapp:{NURSE}")
    assert call.params["Body"] == "Thanks for your data!"
    assert "ContentSid" not in call.params


def test_whatsapp_outside_the_window_without_a_template_is_held_as_failed(
    tw: AppContext, db: Database, fake_twilio: FakeTwilio
) -> None:
    person_id = add_person(
        db,
        name="Ed",
        whatsapp=NURSE,
        last_inbound_at=utcnow() - timedelta(hours=25),
    )
    message_id = queue(db, "whatsapp", person_id, "Free-form after a day of silence")

    drain(worker_for(tw, "whatsapp"))

    assert fake_twilio.sent_messages() == []
    assert outbox_row(db, message_id).state == "failed"
    message = message_row(db, message_id)
    assert message.status == "failed" and message.error_code == "63016"
    assert "24-hour" in (message.error_detail or "")


def test_sms_keeps_to_the_sender_rate(
    tw: AppContext, db: Database, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.enforce_rate(1)  # a US long code: one segment a second
    for n in range(3):
        with db.transaction() as s:
            queue_message(s, channel="sms", address=f"+1555123000{n + 2}", text=f"Reminder {n}")

    run_worker_until(worker_for(tw, "sms"), lambda: len(fake_twilio.sent_messages()) >= 3)

    assert all(c.ok for c in fake_twilio.calls_to("Messages.create")), "a send got 429"
    assert fake_twilio.max_sends_per_second(from_="+15550000000") == 1


def test_a_chart_goes_as_a_signed_media_url(
    tw: AppContext, db: Database, fake_twilio: FakeTwilio
) -> None:
    queue(db, "sms", None, "Your run chart", payload={"photo": {"kind": "chart", "team_id": 7}})

    drain(worker_for(tw, "sms"))

    (call,) = fake_twilio.sent_messages(to=NURSE)
    (url,) = call.params["MediaUrl"]
    assert url.startswith(tw.settings.url("/media/chart/")) and url.endswith(".png")
    assert call.params["Body"] == "Your run chart"
