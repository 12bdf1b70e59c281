"""A coach sees where a team's enrolment stands on the team page and repairs it there:
names the leader the key contact never gave, resumes the matrix where it stopped, restarts it.
What the key contact and the leader then read comes through the real engine and outbox."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import select

from dash.models import Cohort, Team
from tests.support import web as w
from tests.support.engine import KC, Chat, enrol, make_cohort

LEADER = "+12125550102"


@pytest.fixture
def chat(ctx) -> Chat:
    return Chat(ctx)


@pytest.fixture
def cohort(ctx) -> Cohort:
    made = make_cohort(ctx)
    with ctx.db.transaction() as s:
        w.coach(s, "coach@example.org", cohorts=[s.get(Cohort, made.id)], name="Casey Coach")
        w.coach(s, "other@example.org", name="Olu Other")
    return made


def start(chat: Chat, cohort: Cohort, scores: tuple[str, ...]) -> int:
    """The key contact enrols by chat as far as the matrix `scores` given; the team's id."""
    for line in (f"JOIN {cohort.enrolment_code}", "Maria Lopez", "St Mary's", "5 West", *scores):
        chat.say(KC, line)
    with chat.ctx.db.transaction() as s:
        return s.execute(select(Team.id)).scalar_one()


def team_state(ctx, team_id: int) -> tuple[str, int | None]:
    with ctx.db.transaction() as s:
        team = s.get(Team, team_id)
        return team.state, team.leader_id


def logged_in(ctx, email: str = "coach@example.org"):
    client = w.client_for(ctx)
    w.login(client, email)
    return client


def press(client, team_id: int, what: str, **data: str) -> str:
    """Submit one of the enrolment forms on the team page; the page shown after it."""
    page = client.get(f"/teams/{team_id}")
    response = client.post(
        f"/teams/{team_id}/enrolment/{what}", data={**data, "csrf": w.csrf_of(page.text)}
    )
    assert response.status_code == 303, response.text
    return html.unescape(client.get(response.headers["location"]).text)


def test_a_team_left_without_a_leader_shows_it_and_the_coach_names_one(ctx, chat, cohort):
    team_id = start(chat, cohort, ("5", "4", "3", "4", "5"))  # then silence: no leader given
    chat.text(KC)
    client = logged_in(ctx)

    page = html.unescape(client.get(f"/teams/{team_id}").text)
    assert "Enrolment" in page and "not named yet" in page
    assert "who the leader is" in page

    after = press(client, team_id, "leader", name="Jordan Lee", role="CNO", contact="+1 212 555 0102")

    assert "Jordan Lee was sent the sign-off request" in after
    assert "asks you to sign off 5 West" in chat.text(LEADER)
    assert "Thank you" in chat.say(LEADER, "YES")
    assert team_state(ctx, team_id)[0] == "enrolled"
    assert "approved" in chat.text(KC)


def test_resume_asks_the_key_contact_the_question_where_it_stopped(ctx, chat, cohort):
    team_id = start(chat, cohort, ("5", "4"))
    chat.text(KC)
    client = logged_in(ctx)
    assert "matrix question 3 of 5" in html.unescape(client.get(f"/teams/{team_id}").text)

    after = press(client, team_id, "resume")

    assert "asked the open question again" in after
    asked = chat.text(KC)
    assert "picked up the enrolment of 5 West" in asked and "3/5" in asked
    for score in ("3", "4", "5"):
        reply = chat.say(KC, score)
    assert "leader" in reply.lower()  # the matrix is done: who signs it off?


def test_resume_after_sign_off_was_asked_sends_the_request_again(ctx, chat, cohort):
    team_id = start(chat, cohort, ("5", "4", "3", "4", "5", "Jordan Lee, CNO", LEADER))
    chat.text(LEADER)
    client = logged_in(ctx)
    page = html.unescape(client.get(f"/teams/{team_id}").text)
    assert "Jordan Lee" in page and "requested" in page

    after = press(client, team_id, "resume")

    assert "sent the sign-off request again" in after
    assert "asks you to sign off 5 West" in chat.text(LEADER)


def test_restart_needs_confirmation_then_starts_the_matrix_over(ctx, chat, cohort):
    team_id = start(chat, cohort, ("5", "4", "3", "4", "5", "Jordan Lee, CNO", LEADER))
    chat.text(KC)
    client = logged_in(ctx)

    refused = press(client, team_id, "restart")
    assert "Not restarted" in refused and team_state(ctx, team_id)[0] == "awaiting_signoff"

    after = press(client, team_id, "restart", confirm="yes")

    assert "Enrolment restarted" in after
    assert team_state(ctx, team_id) == ("awaiting_matrix", None)
    assert "1/5" in chat.text(KC)
    # The old leader's YES no longer enrols the team.
    chat.say(LEADER, "YES")
    assert team_state(ctx, team_id)[0] == "awaiting_matrix"


def test_an_enrolled_team_has_nothing_to_repair_and_other_coaches_cannot(ctx, chat, cohort):
    team = enrol(chat, cohort)
    client = logged_in(ctx)
    page = client.get(f"/teams/{team.id}").text
    assert 'id="enrolment"' not in page
    assert "Not resumed" in press(client, team.id, "resume")

    other = logged_in(ctx, "other@example.org")
    token = w.csrf_of(other.get("/").text)
    response = other.post(f"/teams/{team.id}/enrolment/resume", data={"csrf": token})
    assert response.status_code == 404


def test_a_bad_leader_contact_is_refused_with_the_reason(ctx, chat, cohort):
    team_id = start(chat, cohort, ("5", "4", "3", "4", "5"))
    client = logged_in(ctx)

    after = press(client, team_id, "leader", name="Jordan Lee", contact="ask Jordan")

    assert "Leader not saved" in after and "is not a phone number" in after
    assert team_state(ctx, team_id)[1] is None


# -- a coach's reply to someone whose reply window has closed ---------------------------------

NURSE = "+12125550103"


def team_with_a_quiet_whatsapp_nurse(ctx, chat: Chat, cohort: Cohort, *channels: str) -> int:
    """An enrolled team whose nurse joined on WhatsApp and then said nothing for 25 hours."""
    from datetime import timedelta

    from bots import registry
    from dash.models import Address
    from dash.timeutil import utcnow

    ctx.channels = channels
    ctx.reply_windows = registry.reply_windows(channels)
    ctx.address_label = registry.address_label  # as the server shows addresses
    team = enrol(chat, cohort)
    chat.say(NURSE, f"JOIN {team.join_code}", channel="whatsapp")
    chat.say(NURSE, "Nia", channel="whatsapp")
    with ctx.db.transaction() as s:
        row = s.execute(select(Address).where(Address.address == NURSE)).scalar_one()
        row.last_inbound_at = utcnow() - timedelta(hours=25)
    return team.id


def test_a_coach_reply_to_a_quiet_whatsapp_nurse_goes_by_sms_and_the_coach_sees_it(
    ctx, chat, cohort
):
    team_id = team_with_a_quiet_whatsapp_nurse(ctx, chat, cohort, "whatsapp", "sms", "console")
    client = logged_in(ctx)

    page = client.get(f"/teams/{team_id}")
    response = client.post(
        f"/teams/{team_id}/reply", data={"text": "Well done, Nia", "csrf": w.csrf_of(page.text)}
    )
    after = html.unescape(client.get(response.headers["location"]).text)

    assert "Nia has not written for a while, so it goes to SMS …0103" in after
    assert "Well done, Nia" in chat.text(NURSE, "sms")
    with ctx.db.transaction() as s:  # the WhatsApp copy is not sent to fail at Twilio
        from dash.models import Message

        statuses = s.execute(
            select(Message.channel, Message.status).where(Message.kind == "coach")
        ).all()
    assert ("whatsapp", "skipped") in statuses and ("whatsapp", "queued") not in statuses


def test_a_coach_reply_nobody_can_carry_is_reported_to_the_coach(ctx, chat, cohort):
    team_id = team_with_a_quiet_whatsapp_nurse(ctx, chat, cohort, "whatsapp", "console")
    client = logged_in(ctx)

    page = client.get(f"/teams/{team_id}")
    response = client.post(
        f"/teams/{team_id}/reply", data={"text": "Well done, Nia", "csrf": w.csrf_of(page.text)}
    )
    after = html.unescape(client.get(response.headers["location"]).text)

    assert "Not delivered to Nia" in after and "Ask them to write to the bot" in after
    assert chat.text(NURSE, "sms") == ""


def test_a_leader_named_from_the_dashboard_who_whatsapp_cannot_reach_gets_the_link(
    ctx, chat, cohort
):
    from bots import registry

    ctx.channels = ("whatsapp", "console")
    ctx.reply_windows = registry.reply_windows(ctx.channels)
    kc = "+12125550101"
    for line in (f"JOIN {cohort.enrolment_code}", "St Mary's", "5 West", "5", "4", "3", "4", "5"):
        chat.say(kc, line, channel="whatsapp", sender_name="Maria Lopez")
    with ctx.db.transaction() as s:
        team_id = s.execute(select(Team.id)).scalar_one()
    client = logged_in(ctx)

    after = press(client, team_id, "leader", name="Jordan Lee", contact="+1 212 555 0102")

    assert "Jordan Lee cannot be messaged yet" in after and "/signoff/" in after
    assert chat.text(LEADER, "whatsapp") == ""
