"""Everything else a person can do or get wrong: STOP/START, HELP, CHART, free text to the
coach and the coach's reply, bad input, duplicates, several teams, Spanish, privacy."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from dash.actions.coaches import add_coach
from dash.actions.optout import mark_opted_out
from dash.actions.queueing import queue_to_person
from dash.actions.threads import coach_reply
from dash.engine import handle_inbound
from dash.inbound import InboundMessage
from dash.models import MeasureValue, Message, PendingQuestion, Person, Team
from dash.timeutil import utcnow
from tests.support.engine import KC, LEADER, Chat, enrol, make_cohort
from tests.support.people import person_at, reachable

NURSE = "+15551230003"


def _count(ctx, model, *where) -> int:
    with ctx.db.transaction() as s:
        return s.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def _person(ctx, address: str) -> Person:
    with ctx.db.transaction() as s:
        person = person_at(s, "console", address)
        s.expunge(person)
        return person


@pytest.fixture
def team(ctx) -> Team:
    return enrol(Chat(ctx), make_cohort(ctx))


# -- STOP / START -------------------------------------------------------------------------------


def test_stop_then_start_on_the_console(ctx, team: Team) -> None:
    chat = Chat(ctx)
    assert "no more messages" in chat.say(KC, "STOP")
    assert _person(ctx, KC).opted_out
    # Nothing reaches them now, and what they send is kept but not acted on.
    kc_id = _person(ctx, KC).id
    with ctx.db.transaction() as s:
        assert queue_to_person(s, s.get(Person, kc_id), "a prompt") is None
    assert "Send START" in chat.say(KC, "7/9")
    assert _count(ctx, MeasureValue) == 0
    assert _count(ctx, Message, Message.direction == "in", Message.text == "7/9") == 1
    assert "Welcome back" in chat.say(KC, "start")
    assert not _person(ctx, KC).opted_out
    assert "Recorded" in chat.say(KC, "7/9")


def test_stop_by_sms_is_confirmed_by_twilio_not_by_us(ctx) -> None:
    chat = Chat(ctx)
    number = "+12025550123"
    assert chat.say(number, "STOP", channel="sms") == ""
    with ctx.db.transaction() as s:
        person = person_at(s, "sms", number)
        assert person.opted_out_at is not None and "STOP" in person.opted_out_reason
    # Still opted out: a later message gets nothing (Twilio blocks the number anyway).
    assert chat.say(number, "hello", channel="sms") == ""
    assert chat.say(number, "UNSTOP", channel="sms") == ""  # Twilio confirms START on SMS
    with ctx.db.transaction() as s:
        assert (
            person_at(s, "sms", number).opted_out_at
            is None
        )


def test_stop_is_never_data_and_a_pending_question_is_dropped(ctx, team: Team) -> None:
    chat = Chat(ctx)
    chat.say(KC, "PLAN")
    chat.say(KC, "stop")
    assert _count(ctx, MeasureValue) == 0
    kc_id = _person(ctx, KC).id
    with ctx.db.transaction() as s:
        pending = s.execute(
            select(PendingQuestion).where(PendingQuestion.person_id == kc_id)
        ).scalar_one()
        assert pending.flow == "idle"


def test_telegram_blocked_and_the_delivery_workers_opt_out(ctx) -> None:
    chat = Chat(ctx)
    chat.send("777", "/start", channel="telegram", sender="777")  # unknown: told how to join
    with ctx.db.transaction() as s:
        person = reachable(name="Kim", telegram=777)
        s.add(person)
    chat.send("777", "", channel="telegram", sender="777", event="blocked")
    with ctx.db.transaction() as s:
        person = person_at(s, "telegram", 777)
        assert person.opted_out_at is not None
        mark_opted_out(s, person, "telegram 403: blocked")  # idempotent, keeps the first time
        assert person.opted_out_reason == "telegram 403: blocked"


# -- threads and coaches --------------------------------------------------------------------------


def test_free_text_goes_to_the_coach_and_the_reply_reaches_the_team(ctx, team: Team) -> None:
    chat = Chat(ctx)
    chat.say(NURSE, f"JOIN {team.join_code}")
    chat.say(NURSE, "Sam")
    assert "your coach will see this" in chat.say(NURSE, "Pharmacy ran out of naloxone kits")
    with ctx.db.transaction() as s:
        waiting = s.execute(select(Message).where(Message.needs_reply.is_(True))).scalars().all()
        assert [m.text for m in waiting] == ["Pharmacy ran out of naloxone kits"]
        assert waiting[0].team_id == team.id
        assert s.get(Team, team.id).needs_coach_since is not None
        coach = add_coach(s, email="coach@example.org", name="Dr Lee")
        sent = coach_reply(s, coach=coach, team=s.get(Team, team.id), text="I'll call pharmacy.")
        assert {m.author_id for m in sent} == {coach.id}
    # Everyone in the team gets it, signed by the coach.
    assert "Dr Lee (coach): I'll call pharmacy." in chat.text(NURSE)
    assert "Dr Lee (coach): I'll call pharmacy." in chat.text(KC)
    with ctx.db.transaction() as s:
        assert s.get(Team, team.id).needs_coach_since is None
        assert not s.execute(select(Message).where(Message.needs_reply.is_(True))).first()


def test_patient_identifiers_get_one_kind_reminder(ctx, team: Team) -> None:
    chat = Chat(ctx)
    first = chat.say(KC, "Patient Smith in bed 4 was very drowsy")
    assert "gentle reminder" in first
    assert "gentle reminder" not in chat.say(KC, "MRN 12345678 too")


def test_chart_is_a_photo_of_the_teams_run_chart(ctx, team: Team) -> None:
    chat = Chat(ctx)
    chat.send(KC, "chart")
    (reply,) = chat.replies(KC)
    assert reply.payload["photo"] == {"kind": "chart", "team_id": team.id}
    assert "Run chart for 5 West" in reply.text


def test_help_depends_on_where_the_sender_is(ctx, team: Team) -> None:
    chat = Chat(ctx)
    member_help = chat.say(KC, "HELP")
    assert "PLAN" in member_help and "7/9" in member_help
    chat.say(KC, "plan")
    assert "answer the question above" in chat.say(KC, "help")
    assert "send JOIN and the team code" in chat.say("+15559990001", "help")


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10/9", "can't be bigger than the second"),
        ("-3/9", "can't be negative"),
        ("seven of nine", "please send digits, like 7/9"),
        ("5/0", "can't be 0 unless the first is 0"),
        ("7", "two numbers"),
        ("78%", "rather than a percentage"),
        ("7.5/9", "whole numbers"),
    ],
)
def test_bad_counts_record_nothing_and_say_what_was_expected(
    ctx, team: Team, text, expected
) -> None:
    chat = Chat(ctx)
    assert expected.lower() in chat.say(KC, text).lower()
    assert _count(ctx, MeasureValue) == 0
    assert _count(ctx, Message, Message.direction == "in", Message.text == text) == 1


def test_empty_oversized_and_media_messages(ctx, team: Team) -> None:
    chat = Chat(ctx)
    assert "empty" in chat.say(KC, "   ")
    assert "too long" in chat.say(KC, "x" * (ctx.settings.max_message_chars + 1))
    photo = [{"type": "photo", "file_id": "abc"}]
    assert "only read text" in chat.say(KC, "", media=photo)
    assert _count(ctx, Message, Message.direction == "in", Message.person_id.is_not(None)) >= 3
    assert _count(ctx, MeasureValue) == 0


def test_two_failed_answers_hand_the_thread_to_a_coach(ctx, team: Team) -> None:
    chat = Chat(ctx)
    assert "digits" in chat.say(KC, "seven of nine")
    handed = chat.say(KC, "ten/9")
    assert "coach will see" in handed and "digits" not in handed
    with ctx.db.transaction() as s:
        assert s.get(Team, team.id).needs_coach_since is not None
        flagged = s.execute(select(Message.text).where(Message.needs_reply.is_(True))).scalars()
        assert list(flagged) == ["ten/9"]
    # A good answer afterwards is recorded as usual.
    assert "Recorded" in chat.say(KC, "7/9")


def test_two_failed_matrix_answers_flag_the_coach_and_keep_the_question(ctx) -> None:
    chat = Chat(ctx)
    cohort = make_cohort(ctx)
    for line in (f"JOIN {cohort.enrolment_code}", "Maria", "St Mary's", "5 West"):
        chat.say(KC, line)
    assert "one number from 1 (low) to 5 (high)" in chat.say(KC, "very")
    second = chat.say(KC, "quite")
    assert "asked your coach" in second and "still open" in second
    assert "2/5" in chat.say(KC, "4"), "a valid answer carries on where it stopped"
    with ctx.db.transaction() as s:
        assert s.execute(select(Team.needs_coach_since)).scalar_one() is not None


# -- duplicates ----------------------------------------------------------------------------------


def test_a_repeated_delivery_counts_once(ctx, team: Team) -> None:
    chat = Chat(ctx)
    first = chat.send(KC, "6/9", provider_id="SM123")
    again = chat.send(KC, "6/9", provider_id="SM123")
    assert (first.duplicate, again.duplicate) == (False, True)
    assert first.message_id == again.message_id
    assert len(chat.replies(KC)) == 1
    assert _count(ctx, MeasureValue) == 1


def test_concurrent_duplicates_count_once(ctx, team: Team) -> None:
    inbound = InboundMessage(
        channel="console",
        provider_id="race-1",
        address=KC,
        sender=KC,
        text="Need more POSS cards",
        received_at=utcnow(),
        raw={},
    )
    chat = Chat(ctx)
    results = []
    barrier = threading.Barrier(4)

    def deliver() -> None:
        barrier.wait()
        results.append(handle_inbound(ctx, inbound))

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.duplicate for r in results) == [False, True, True, True]
    assert _count(ctx, Message, Message.provider_id == "race-1") == 1
    assert len(chat.replies(KC)) == 1


# -- several teams, languages ------------------------------------------------------------------


def test_a_person_in_two_teams_is_asked_which_once(ctx) -> None:
    chat = Chat(ctx)
    cohort = make_cohort(ctx)
    first = enrol(chat, cohort, unit="5 West")
    second = enrol(chat, cohort, leader="+15551230009", unit="ICU")
    asked = chat.say(KC, "7/9")
    assert "more than one team" in asked and "1. 5 West" in asked and "2. ICU" in asked
    assert _count(ctx, MeasureValue) == 0
    assert "Please reply with the number" in chat.say(KC, "3")
    recorded = chat.say(KC, "2")
    assert "Recorded" in recorded
    with ctx.db.transaction() as s:
        (value,) = s.execute(select(MeasureValue)).scalars()
        assert value.team_id == second.id
    # Remembered for the conversation: the next message does not ask again.
    assert "Replaced 7/9 with 8/9" in chat.say(KC, "8/9")
    with ctx.db.transaction() as s:
        teams = set(s.execute(select(MeasureValue.team_id)).scalars())
    assert teams == {second.id} and first.id != second.id


def test_spanish_from_the_telegram_language_and_by_command(ctx, team: Team) -> None:
    chat = Chat(ctx)
    telegram_nurse = "4242"
    joined = chat.say(
        telegram_nurse,
        f"JOIN {team.join_code}",
        channel="telegram",
        language="es-MX",
        sender_name="Lucía",
    )
    assert "Bienvenido a 5 West" in joined
    assert "Registrado para hoy" in chat.say(telegram_nurse, "7 de 9", channel="telegram")
    assert "Envíe cifras" in chat.say(telegram_nurse, "siete de nueve", channel="telegram")
    assert "en español" in chat.say(KC, "IDIOMA es")
    # Replacing a colleague's count asks first, naming who sent it.
    assert "Lucía ya envió 7/9" in chat.say(KC, "6/9")
    assert "He sustituido 7/9 (de Lucía) por 6/9" in chat.say(KC, "SI")
    assert "in English" in chat.say(KC, "lang en")
    assert "Replaced 6/9 with 5/9" in chat.say(KC, "5/9")
    assert "más mensajes" in chat.say(LEADER, "IDIOMA es") + chat.say(LEADER, "ALTO")


def test_share_on_and_off_by_the_key_contact_only(ctx, team: Team) -> None:
    from dash.models import ConsentChange

    chat = Chat(ctx)
    assert "now shares its data and stories" in chat.say(KC, "SHARE ON")
    chat.say(NURSE, f"JOIN {team.join_code}")
    chat.say(NURSE, "Sam")
    assert "Only the key contact or the leader" in chat.say(NURSE, "share off")
    assert "no longer shares" in chat.say(LEADER, "share off")
    with ctx.db.transaction() as s:
        assert [
            c.shared for c in s.execute(select(ConsentChange).order_by(ConsentChange.id)).scalars()
        ] == [True, False]
        assert s.get(Team, team.id).consent_share is False
