"""What a coach sees first on a team's page, in a real browser on a phone-sized screen."""

from __future__ import annotations

import re
from typing import Any

import pytest

from dash.context import AppContext
from tests.browser.conftest import LiveServer
from tests.support import web as w
from tests.support.engine import Chat

pytestmark = pytest.mark.browser

NURSE = "+15551239001"


def _seed(ctx: AppContext) -> tuple[int, Chat]:
    """A team whose nurse has already sent a long run of daily counts (a long thread)."""
    with ctx.db.transaction() as s:
        cohort = w.cohort(s)
        w.coach(s, "casey@example.org", cohorts=[cohort], name="Casey Coach")
        team = w.team(s, cohort, "5 West", members=[w.nurse(s, "Ana", NURSE)])
        team_id = team.id
    chat = Chat(ctx)
    for n in range(25):
        chat.say(NURSE, f"{n % 9}/9")
    return team_id, chat


def _visible_in_thread(page: Any, selector: str) -> bool:
    """Whether the element is inside the thread's visible scroll area."""
    return page.evaluate(
        """(sel) => {
            const box = document.querySelector('.thread').getBoundingClientRect();
            const el = document.querySelector(sel).getBoundingClientRect();
            return el.top >= box.top - 1 && el.top < box.bottom;
        }""",
        selector,
    )


def _open_team(page: Any, server: LiveServer, team_id: int) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(server.url + "/login")
    page.get_by_label("E-mail").fill("casey@example.org")
    page.get_by_label("Password").fill(w.PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(server.url + "/")
    page.goto(server.url + f"/teams/{team_id}#thread")
    page.wait_for_load_state("load")


def test_a_long_thread_opens_at_the_message_waiting_for_a_reply(ctx, page) -> None:
    team_id, chat = _seed(ctx)
    chat.say(NURSE, "We ran out of POSS cards on nights, any ideas?")
    for n in range(10):
        chat.say(NURSE, f"{n}/9")
    with LiveServer(ctx) as server:
        _open_team(page, server, team_id)
        assert page.locator(".thread .msg").count() > 60
        waiting = ".thread .msg.waiting"
        assert re.search("POSS cards", page.locator(waiting).inner_text())
        assert _visible_in_thread(page, waiting)
        assert not _visible_in_thread(page, ".thread .msg:first-child")


def test_with_nothing_waiting_the_thread_opens_at_the_newest_message(ctx, page) -> None:
    team_id, _ = _seed(ctx)
    with LiveServer(ctx) as server:
        _open_team(page, server, team_id)
        assert _visible_in_thread(page, ".thread .msg:last-child")
        assert not _visible_in_thread(page, ".thread .msg:first-child")
