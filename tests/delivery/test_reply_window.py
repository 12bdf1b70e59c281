"""Messages a person may get before writing in, on a channel with a reply window (WhatsApp's
24 hours): they go by the channel's fallback (SMS on the same number) when the deployment
sends on it, and otherwise whoever asked for them is told, never a silent 63016.

End to end: the engine queues, the real delivery worker sends to the fake Twilio, which
refuses free-form WhatsApp outside the window with 63016 as Twilio does.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from bots import registry
from dash.actions.threads import coach_reply
from dash.context import AppContext
from dash.db import Database
from dash.models import Message, Person, Team
from tests.fakes.twilio_api import FakeTwilio
from tests.support.delivery import (
    channel_app,
    configure,
    drain,
    free_port,
    served,
    twilio_env,
    worker_for,
)
from tests.support.engine import Chat, enrol, make_cohort

KC = "+12125550101"
LEADER = "+12125550102"
NURSE = "+12125550103"


@pytest.fixture
def tw(
    monkeypatch: pytest.MonkeyPatch, db: Database, fake_twilio: FakeTwilio
) -> Iterator[AppContext]:
    port = free_port()
    ctx = configure(
        monkeypatch, db, **twilio_env(fake_twilio), public_url=f"http://127.0.0.1:{port}"
    )
    with served(channel_app(ctx), port):
        yield ctx


def deployment(ctx: AppContext, *channels: str) -> None:
    """The deployment sends on `channels` only, as dash.app wires it."""
    ctx.channels = channels
    ctx.reply_windows = registry.reply_windows(channels)


def name_leader_on_whatsapp(chat: Chat) -> str:
    cohort = make_cohort(chat.ctx)
    for line in (f"JOIN {cohort.enrolment_code}", "Maria Lopez", "St Mary's", "5 West"):
        chat.say(KC, line, channel="whatsapp")
    for score in ("4", "4", "3", "5", "4"):
        chat.say(KC, score, channel="whatsapp")
    chat.say(KC, "Jordan Lee, CNO", channel="whatsapp")
    return chat.say(KC, "+1 212 555 0102", channel="whatsapp")


def test_a_leader_named_by_number_gets_the_request_by_sms_and_signs_by_sms(
    tw: AppContext, db: Database, fake_twilio: FakeTwilio
) -> None:
    deployment(tw, "whatsapp", "sms", "console")
    fake_twilio.whatsapp_session_closed(LEADER)
    chat = Chat(tw)

    told = name_leader_on_whatsapp(chat)
    drain(worker_for(tw, "whatsapp", "sms"))

    assert "I have asked Jordan Lee to sign off" in told
    assert fake_twilio.sent_messages(to=f"whatsapp:{LEADER}") == []
    (request,) = fake_twilio.sent_messages(to=LEADER)
    assert "asks you to sign off 5 West" in request.params["Body"]
    assert "Thank you" in chat.say(LEADER, "YES", channel="sms")
    with db.transaction() as s:
        assert s.execute(select(Team.state)).scalar_one() == "enrolled"


def test_without_sms_the_key_contact_is_told_to_forward_the_link(
    tw: AppContext, db: Database, fake_twilio: FakeTwilio
) -> None:
    deployment(tw, "whatsapp", "console")
    chat = Chat(tw)

    told = name_leader_on_whatsapp(chat)
    drain(worker_for(tw, "whatsapp"))

    assert "I have asked" not in told
    assert "cannot message Jordan Lee first" in told and "/signoff/" in told
    assert fake_twilio.sent_messages(to=f"whatsapp:{LEADER}") == []
    # The moment the leader writes, the request is theirs to answer.
    assert "YES to approve" in chat.say(LEADER, "hello", channel="whatsapp")


def team_with_a_whatsapp_nurse(chat: Chat) -> tuple[Team, Person]:
    team = enrol(chat, make_cohort(chat.ctx))
    chat.say(NURSE, f"JOIN {team.join_code}", channel="whatsapp")
    chat.say(NURSE, "Nia", channel="whatsapp")
    drain(worker_for(chat.ctx, "whatsapp"))  # her replies go while she is writing
    with chat.ctx.db.transaction() as s:
        coach = Person(name="Coach Kim")
        s.add(coach)
        s.flush()
        s.expunge(coach)
    return team, coach


def test_a_coach_reply_refused_by_whatsapp_goes_by_sms(
    tw: AppContext, db: Database, fake_twilio: FakeTwilio
) -> None:
    chat = Chat(tw)
    team, coach = team_with_a_whatsapp_nurse(chat)
    fake_twilio.whatsapp_session_closed(NURSE)  # Twilio's window closed before ours did

    with db.transaction() as s:
        coach_reply(s, coach=s.get(Person, coach.id), team=s.get(Team, team.id), text="Well done")
    drain(worker_for(tw, "whatsapp", "sms"))
    drain(worker_for(tw, "whatsapp", "sms"))  # the copy queued on SMS goes

    (sms,) = fake_twilio.sent_messages(to=NURSE)
    assert "Well done" in sms.params["Body"]


def test_a_coach_reply_nobody_can_deliver_puts_the_team_on_today(
    tw: AppContext, db: Database, fake_twilio: FakeTwilio
) -> None:
    chat = Chat(tw)
    team, coach = team_with_a_whatsapp_nurse(chat)
    fake_twilio.whatsapp_session_closed(NURSE)

    with db.transaction() as s:
        coach_reply(s, coach=s.get(Person, coach.id), team=s.get(Team, team.id), text="Well done")
    drain(worker_for(tw, "whatsapp"))

    assert fake_twilio.sent_messages(to=NURSE) == []
    with db.transaction() as s:
        assert s.get(Team, team.id).needs_coach_since is not None
        failed = s.execute(
            select(Message).where(Message.address == NURSE, Message.kind == "coach")
        ).scalar_one()
        assert failed.status == "failed" and failed.error_code == "63016"


def test_with_an_approved_template_the_request_goes_on_whatsapp(
    tw: AppContext, db: Database, fake_twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dash.settings import get_settings

    monkeypatch.setenv("DASH_SIGNOFF_TEMPLATE_SID", "HX00000000000000000000000000000001")
    get_settings.cache_clear()
    deployment(tw, "whatsapp", "console")
    fake_twilio.whatsapp_session_closed(LEADER)
    chat = Chat(tw)

    told = name_leader_on_whatsapp(chat)
    drain(worker_for(tw, "whatsapp"))

    assert "I have asked Jordan Lee to sign off" in told
    (call,) = fake_twilio.sent_messages(to=f"whatsapp:{LEADER}")
    assert call.params["ContentSid"] == "HX00000000000000000000000000000001"
    variables = FakeTwilio.parsed_content_variables(call)
    assert variables["1"] == "Jordan Lee" and "/signoff/" in variables["4"]


def test_a_63016_reported_late_by_status_callback_also_goes_by_sms(
    tw: AppContext, db: Database, fake_twilio: FakeTwilio
) -> None:
    deployment(tw, "whatsapp", "sms", "console")
    chat = Chat(tw)
    team, coach = team_with_a_whatsapp_nurse(chat)
    fake_twilio.whatsapp_session_closed(NURSE, mode="async")  # accepted, then failed

    with db.transaction() as s:
        coach_reply(s, coach=s.get(Person, coach.id), team=s.get(Team, team.id), text="Well done")
    drain(worker_for(tw, "whatsapp", "sms"))
    (sid,) = [k for k, m in fake_twilio.messages.items() if "Well done" in (m.get("body") or "")]
    assert fake_twilio.send_status_callback(sid) == 200
    drain(worker_for(tw, "whatsapp", "sms"))

    (sms,) = fake_twilio.sent_messages(to=NURSE)
    assert "Well done" in sms.params["Body"]
