"""A one-time log-in link an admin issues also reaches the coach at their e-mail when the
deployment sends e-mail, and the admin page says so."""

from __future__ import annotations

from sqlalchemy import select

from dash.models import OutboxItem
from tests.support import web as w


def add_nia(ctx) -> str:
    with ctx.db.transaction() as s:
        w.cohort(s, name="Spring")
        w.coach(s, "admin@example.org", admin=True, name="Ada Admin")
    client = w.client_for(ctx)
    w.login(client, "admin@example.org")
    w.post(client, "/admin/coaches", {"name": "Nia New", "email": "nia@example.org"}, form_page="/admin")
    return client.get("/admin").text


def sent_to_nia(ctx) -> list[tuple[str, str, str]]:
    with ctx.db.transaction() as s:
        return [
            (o.channel, o.address, o.message.text)
            for o in s.execute(
                select(OutboxItem).where(OutboxItem.address == "nia@example.org")
            ).scalars()
        ]


def test_the_link_is_queued_to_the_new_coach_email_when_email_is_enabled(ctx) -> None:
    ctx.channels = ("console", "email")  # a test-only e-mail channel: queued, never sent
    page = add_nia(ctx)
    link = page.split("/login/link/")[1].split("<")[0]
    ((channel, address, text),) = sent_to_nia(ctx)
    assert (channel, address) == ("email", "nia@example.org")
    assert f"/login/link/{link}" in text and "Nia New" in text
    assert "also sent to them by email" in page


def test_without_email_the_link_is_only_shown_to_the_admin(ctx) -> None:
    page = add_nia(ctx)
    assert "/login/link/" in page
    assert sent_to_nia(ctx) == []
    assert "also sent to them" not in page
