"""The e-mail channel against a real SMTP server on 127.0.0.1 (aiosmtpd), sent by the real
delivery worker with the senders `dash worker` builds."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import date, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from starlette.testclient import TestClient

from bots import registry
from bots.delivery import DeliveryWorker
from bots.email.errors import classify_smtp_error
from bots.email.sender import linkify, parse_smtp_url
from bots.errors import ErrorKind
from dash.actions.coaches import add_coach
from dash.actions.queueing import queue_message
from dash.app.server import create_app
from dash.context import AppContext
from dash.db import Database
from dash.links import link_url
from dash.models import Message, OutboxItem, Person
from dash.timeutil import utcnow
from scheduler.tick import dispatch
from tests.support import web as w
from tests.support.agenda import ny
from tests.support.delivery import configure, free_port
from tests.support.engine import KC, Chat
from tests.support.engine import make_cohort as make_engine_cohort
from tests.support.teams import make_cohort, make_team

MAIL_FROM = "dash@hospital.example"
COACH = "ana.coach@example.org"


class Mailbox:
    """An aiosmtpd handler that keeps what it accepts; `refuse` answers RCPT with codes."""

    def __init__(self) -> None:
        self.received: list[EmailMessage] = []
        self.refuse: dict[str, list[str]] = {}

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        answers = self.refuse.get(address)
        if answers:
            return answers.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        self.received.append(message_from_bytes(envelope.content, policy=default))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture
def mail_ctx(
    monkeypatch: pytest.MonkeyPatch, db: Database, mailbox: tuple[Mailbox, int]
) -> AppContext:
    ctx = configure(
        monkeypatch,
        db,
        smtp_url=f"smtp://127.0.0.1:{mailbox[1]}",
        mail_from=MAIL_FROM,
        public_url="https://dash.hospital.example",
    )
    ctx.channels = registry.enabled_names(ctx.settings)  # as dash.app's roots build it
    return ctx


def _drain(ctx: AppContext, **kwargs: Any) -> int:
    return asyncio.run(DeliveryWorker(ctx, registry.build_senders(ctx)).drain_once(**kwargs))


def _coach(ctx: AppContext) -> int:
    with ctx.db.transaction() as session:
        return add_coach(session, email=COACH, name="Coach Ana").id


def _queue(ctx: AppContext, person_id: int | None, address: str, text: str) -> None:
    with ctx.db.transaction() as session:
        person = session.get(Person, person_id) if person_id else None
        queue_message(session, channel="email", address=address, text=text, person=person)


def _outbox(ctx: AppContext) -> list[tuple[str, str | None, str | None]]:
    with ctx.db.transaction() as session:
        return [
            (row.state, row.message.error_code, row.message.status)
            for row in session.execute(
                select(OutboxItem).where(OutboxItem.channel == "email").order_by(OutboxItem.id)
            ).scalars()
        ]


def test_email_is_enabled_by_both_settings(mail_ctx: AppContext) -> None:
    assert mail_ctx.channels == ("email", "console")
    assert "email" in registry.build_senders(mail_ctx)
    half = mail_ctx.settings.model_copy(update={"mail_from": None})
    assert "email" not in registry.enabled_names(half)
    assert parse_smtp_url("smtps://me%40x:p%2Fw@mail.example").port == 465
    assert parse_smtp_url("smtps://me%40x:p%2Fw@mail.example").username == "me@x"
    assert parse_smtp_url("smtp://mail.example:2525").implicit_tls is False


def _browser(ctx: AppContext) -> TestClient:
    """The dashboard over https, as DASH_PUBLIC_URL says it is served (secure cookies)."""
    return TestClient(w.web_app(ctx), base_url="https://testserver", follow_redirects=False)


def _html_links(message: EmailMessage) -> list[str]:
    html = message.get_body(("html",)).get_content()
    return re.findall(r'<a href="([^"]+)">', html)


def test_the_morning_coach_digest_reaches_the_coach_by_email(
    mail_ctx: AppContext, mailbox: tuple[Mailbox, int]
) -> None:
    with mail_ctx.db.transaction() as session:
        cohort = make_cohort(session)
        make_team(session, cohort, name="5 West")
        add_coach(session, email=COACH, name="Coach Ana", cohort_id=cohort.id)

    dispatch(mail_ctx, ny(date(2026, 12, 9), 7, 30))
    _drain(mail_ctx)

    (digest,) = [m for m in mailbox[0].received if m["To"] == COACH]
    plain = digest.get_body(("plain",)).get_content()
    assert "5 West" in plain
    dashboard = f"https://dash.hospital.example/cohorts/{cohort.id}"
    assert dashboard in plain and dashboard in _html_links(digest)
    assert digest["List-Unsubscribe"]


def test_a_one_time_login_link_reaches_the_new_coach_by_email(
    mail_ctx: AppContext, mailbox: tuple[Mailbox, int]
) -> None:
    with mail_ctx.db.transaction() as session:
        w.cohort(session, name="Spring")
        w.coach(session, "admin@example.org", admin=True, name="Ada Admin")
    client = _browser(mail_ctx)
    w.login(client, "admin@example.org")
    w.post(
        client,
        "/admin/coaches",
        {"name": "Nia New", "email": "nia@example.org"},
        form_page="/admin",
    )
    shown = client.get("/admin").text.split("/login/link/")[1].split("<")[0]

    _drain(mail_ctx)

    (mail,) = [m for m in mailbox[0].received if m["To"] == "nia@example.org"]
    link = f"https://dash.hospital.example/login/link/{shown}"
    assert link in mail.get_body(("plain",)).get_content()
    assert link in _html_links(mail)
    # The link in the e-mail is the one the dashboard accepts.
    opened = _browser(mail_ctx).get(link.removeprefix("https://dash.hospital.example"))
    assert opened.status_code == 200 and "Log in with your link" in opened.text


def test_a_leaders_signoff_request_reaches_them_by_email_with_its_signed_link(
    mail_ctx: AppContext, mailbox: tuple[Mailbox, int]
) -> None:
    chat = Chat(mail_ctx)
    cohort = make_engine_cohort(mail_ctx)
    if "What is your name?" in chat.say(KC, f"JOIN {cohort.enrolment_code}"):
        chat.say(KC, "Maria Lopez")
    for answer in ("St Mary's Hospital", "5 West", "5", "4", "3", "4", "5"):
        chat.say(KC, answer)
    chat.say(KC, "Ana Ruiz, Chief Nursing Officer")
    assert "I have asked Ana Ruiz to sign off" in chat.say(KC, "Ana.Ruiz@Example.org")

    _drain(mail_ctx)

    (request,) = [m for m in mailbox[0].received if m["To"] == "ana.ruiz@example.org"]
    (signoff,) = [link for link in _html_links(request) if "/signoff/" in link]
    assert signoff.startswith("https://dash.hospital.example/signoff/")
    assert signoff in request.get_body(("plain",)).get_content()
    assert "5 West" in request.get_body(("plain",)).get_content()
    page = _browser(mail_ctx).get(signoff.removeprefix("https://dash.hospital.example"))
    assert page.status_code == 200 and "5 West" in page.text


def test_a_login_link_arrives_with_both_parts_and_list_unsubscribe(
    mail_ctx: AppContext, mailbox: tuple[Mailbox, int]
) -> None:
    coach_id = _coach(mail_ctx)
    link = link_url(mail_ctx.settings.public_url, mail_ctx.secret, "login", coach_id)
    _queue(mail_ctx, coach_id, COACH, f"Your log-in link (it works once): {link}.\n<b>Ana</b>")

    assert _drain(mail_ctx) == 1

    box = mailbox[0]
    (received,) = box.received
    assert received["From"] == MAIL_FROM and received["To"] == COACH
    assert received["Subject"] == "Your log-in link (it works once)"
    plain = received.get_body(("plain",)).get_content()
    html = received.get_body(("html",)).get_content()
    assert link in plain and "<b>Ana</b>" in plain
    assert f'<a href="{link}">{link}</a>.' in html  # the full stop stays outside the link
    assert "&lt;b&gt;Ana&lt;/b&gt;" in html and "<b>Ana</b>" not in html
    unsubscribe = received["List-Unsubscribe"]
    assert unsubscribe.startswith("<https://dash.hospital.example/email/unsubscribe/")
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert _outbox(mail_ctx) == [("sent", None, "sent")]
    with mail_ctx.db.transaction() as session:
        sent = session.execute(select(Message).where(Message.channel == "email")).scalar_one()
        assert sent.provider_id == received["Message-ID"]


def test_a_550_is_a_visible_failure_and_a_451_is_retried(
    mail_ctx: AppContext, mailbox: tuple[Mailbox, int]
) -> None:
    box = mailbox[0]
    box.refuse["gone@example.org"] = ["550 5.1.1 No such user"]
    box.refuse["busy@example.org"] = ["451 4.7.1 Greylisted, try again later"]
    _queue(mail_ctx, None, "gone@example.org", "Hello")
    _queue(mail_ctx, None, "busy@example.org", "Hello again")

    _drain(mail_ctx)

    gone, busy = _outbox(mail_ctx)
    assert gone == ("failed", "550", "failed")
    assert busy == ("queued", "451", "queued")
    with mail_ctx.db.transaction() as session:
        failed = session.execute(
            select(Message).where(Message.address == "gone@example.org")
        ).scalar_one()
        assert "No such user" in (failed.error_detail or "")
    assert box.received == []

    _drain(mail_ctx, now=utcnow() + timedelta(minutes=5))  # past the backoff

    assert _outbox(mail_ctx)[1][0] == "sent"
    assert [m["To"] for m in box.received] == ["busy@example.org"]


def test_the_unsubscribe_link_stops_every_message(
    mail_ctx: AppContext, mailbox: tuple[Mailbox, int]
) -> None:
    coach_id = _coach(mail_ctx)
    _queue(mail_ctx, coach_id, COACH, "Your morning digest")
    _drain(mail_ctx)
    url = mailbox[0].received[0]["List-Unsubscribe"].strip("<>")
    path = url.removeprefix("https://dash.hospital.example")

    with TestClient(create_app(mail_ctx, background=False)) as client:
        looked = client.get(path)  # a mail scanner opening the link changes nothing
        assert looked.status_code == 200 and "<form" in looked.text
        assert not _opted_out(mail_ctx, coach_id)
        one_click = client.post(path, data={"List-Unsubscribe": "One-Click"})
        assert one_click.status_code == 200
        assert client.post(path[:-3] + "xyz").status_code == 400
    assert _opted_out(mail_ctx, coach_id)

    _queue(mail_ctx, coach_id, COACH, "Another digest")
    assert _drain(mail_ctx) == 0  # nothing queued for an opted-out person


def _opted_out(ctx: AppContext, person_id: int) -> bool:
    with ctx.db.transaction() as session:
        person = session.get(Person, person_id)
        return person is not None and person.opted_out


def test_linkify_escapes_and_links() -> None:
    assert str(linkify('a <i> https://x.example/p?q=1&r=2) "b"')) == (
        'a &lt;i&gt; <a href="https://x.example/p?q=1&amp;r=2">https://x.example/p?q=1&amp;r=2</a>)'
        " &#34;b&#34;"
    )


def test_the_dashboard_masks_an_email_address() -> None:
    assert registry.address_label("email", "ana.coach@example.org") == "E-mail a…@example.org"


def test_a_server_that_is_down_is_tried_again(
    monkeypatch: pytest.MonkeyPatch, db: Database
) -> None:
    ctx = configure(
        monkeypatch, db, smtp_url=f"smtp://127.0.0.1:{free_port()}", mail_from=MAIL_FROM
    )
    _queue(ctx, None, "ana@example.org", "Hello")

    _drain(ctx)

    assert _outbox(ctx) == [("queued", "network", "queued")]


def test_smtp_answers_decide_what_the_worker_does() -> None:
    refused = aiosmtplib.SMTPRecipientsRefused(
        [aiosmtplib.SMTPRecipientRefused(552, "Mailbox full", "a@example.org")]
    )
    assert classify_smtp_error(refused).kind is ErrorKind.PERMANENT
    assert classify_smtp_error(aiosmtplib.SMTPDataError(554, "Spam")).kind is ErrorKind.PERMANENT
    assert classify_smtp_error(aiosmtplib.SMTPDataError(452, "Full")).kind is ErrorKind.TRANSIENT
    login = aiosmtplib.SMTPAuthenticationError(535, "Bad credentials")
    assert classify_smtp_error(login).kind is ErrorKind.CONFIGURATION
    sender = aiosmtplib.SMTPSenderRefused(553, "Not yours", MAIL_FROM)
    assert classify_smtp_error(sender).kind is ErrorKind.CONFIGURATION
    gone = aiosmtplib.SMTPServerDisconnected("lost")
    assert classify_smtp_error(gone).kind is ErrorKind.TRANSIENT
