"""A key contact may give the leader's e-mail: the sign-off request with its signed link is
queued there when the deployment sends e-mail; otherwise the key contact forwards the link."""

from __future__ import annotations

from sqlalchemy import select

from dash.models import Address, OutboxItem
from dash.parsing import parse_leader
from tests.support.engine import KC, Chat, make_cohort

LEADER_EMAIL = "ana.ruiz@example.org"


def give_leader_email(chat: Chat, typed: str = "Ana.Ruiz@Example.org") -> str:
    """Enrol up to the leader's contact; the key contact's reply to it."""
    cohort = make_cohort(chat.ctx)
    if "What is your name?" in chat.say(KC, f"JOIN {cohort.enrolment_code}"):
        chat.say(KC, "Maria Lopez")
    chat.say(KC, "St Mary's Hospital")
    chat.say(KC, "5 West")
    for score in ("5", "4", "3", "4", "5"):
        chat.say(KC, score)
    chat.say(KC, "Ana Ruiz, Chief Nursing Officer")
    return chat.say(KC, typed)


def to_leader(ctx) -> list[tuple[str, str, str]]:
    with ctx.db.transaction() as s:
        return [
            (o.channel, o.address, o.message.text)
            for o in s.execute(
                select(OutboxItem).where(OutboxItem.address == LEADER_EMAIL)
            ).scalars()
        ]


def test_an_email_is_read_as_the_leader_contact() -> None:
    assert parse_leader(" Ana.Ruiz@Example.org ") == ("email", LEADER_EMAIL)
    assert parse_leader("@ana_ruiz") == ("telegram", "@ana_ruiz")
    assert parse_leader("ana@") is None


def test_the_signoff_request_goes_to_the_leader_email_when_email_is_enabled(ctx) -> None:
    ctx.channels = ("console", "email")  # a test-only e-mail channel: queued, never sent
    reply = give_leader_email(Chat(ctx))
    assert "I have asked Ana Ruiz to sign off" in reply
    ((channel, address, text),) = [r for r in to_leader(ctx) if r[0] == "email"]
    assert (channel, address) == ("email", LEADER_EMAIL)
    assert "/signoff/" in text and "5 West" in text
    with ctx.db.transaction() as s:
        row = s.execute(select(Address).where(Address.channel == "email")).scalar_one()
        assert row.person.name == "Ana Ruiz"


def test_without_email_the_key_contact_forwards_the_link(ctx) -> None:
    reply = give_leader_email(Chat(ctx))
    assert "Please forward them this sign-off link" in reply and "/signoff/" in reply
    assert to_leader(ctx) == []
