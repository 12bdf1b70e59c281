"""The dashboard in a real browser: log in, reply to a team, sign off by link, stay safe.

Screenshots of the main pages go to $DASH_SCREENSHOTS (docs/screenshots when making the
docs), else to the test's temporary folder.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from dash.actions.enrolment import start_team
from dash.context import AppContext
from dash.engine import handle_inbound
from dash.inbound import InboundMessage
from dash.links import make_token
from dash.models import MeasureValue, PdsaCycle, Team
from dash.models.teams import TeamState
from dash.settings import get_settings
from dash.timeutil import utcnow
from tests.browser.conftest import LiveServer
from tests.support import web as w
from tests.support.people import reachable

pytestmark = pytest.mark.browser

CHAT = 7_300_100_200
# Resolved now: the settings fixture later changes the working directory.
SCREENSHOTS = Path(os.environ["DASH_SCREENSHOTS"]).resolve() if os.environ.get("DASH_SCREENSHOTS") else None
HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> is this ok?'


@pytest.fixture
def tg_ctx(settings, db, monkeypatch, fake_telegram) -> AppContext:
    monkeypatch.setenv("DASH_TELEGRAM_TOKEN", fake_telegram.token)
    monkeypatch.setenv("DASH_TELEGRAM_API_BASE", fake_telegram.base_url)
    monkeypatch.setenv("DASH_TELEGRAM_PER_CHAT_PER_SECOND", "100")
    get_settings.cache_clear()
    return AppContext.from_settings(get_settings(), db)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    target = SCREENSHOTS or tmp_path / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    return target


def telegram_text(ctx: AppContext, text: str, n: int) -> None:
    handle_inbound(
        ctx,
        InboundMessage(
            channel="telegram",
            provider_id=f"u{n}",
            address=str(CHAT),
            sender=str(CHAT),
            text=text,
            received_at=utcnow(),
            raw={"update_id": n},
            sender_name="Ana",
        ),
    )


def seed(ctx: AppContext) -> int:
    """A cohort with its coach and one enrolled team whose nurse Ana is on Telegram."""
    with ctx.db.transaction() as s:
        cohort = w.cohort(s, name="Opioid safety, spring")
        w.coach(s, "casey@example.org", cohorts=[cohort], name="Casey Coach", admin=True)
        ana = reachable(name="Ana", telegram=CHAT, preferred_channel="telegram")
        s.add(ana)
        s.flush()
        team = w.team(s, cohort, "5 West, St Elsewhere", members=[ana, w.nurse(s, "Ben", "ben")])
        w.team(s, cohort, "4 North, St Elsewhere")
        for i, (num, den) in enumerate([(5, 10), (6, 10), (6, 9), (8, 10)]):
            for measure in cohort.measures:
                s.add(
                    MeasureValue(
                        team_id=team.id,
                        measure_id=measure.id,
                        day=cohort.start_date + timedelta(days=i),
                        numerator=num,
                        denominator=den,
                        channel="telegram",
                    )
                )
        s.add(
            PdsaCycle(
                team_id=team.id,
                number=1,
                state="planned",
                change_text="POSS card clipped to the MAR",
                prediction="More scores before doses",
                test_date=cohort.start_date,
            )
        )
        return team.id


def log_in(page: Any, server: LiveServer) -> None:
    page.goto(server.url + "/")
    page.get_by_label("E-mail").fill("casey@example.org")
    page.get_by_label("Password").fill(w.PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(server.url + "/")


def test_coach_logs_in_and_the_reply_reaches_telegram(tg_ctx, fake_telegram, page, shots):
    from bots.delivery import DeliveryWorker
    from bots.registry import build_senders

    team_id = seed(tg_ctx)
    telegram_text(tg_ctx, "We ran out of POSS cards on nights, any ideas?", 1)
    with LiveServer(tg_ctx) as server:
        log_in(page, server)
        assert page.get_by_text("1 message waiting for your reply").is_visible()
        page.screenshot(path=str(shots / "today.png"), full_page=True)
        page.get_by_role("link", name="5 West, St Elsewhere").first.click()
        page.wait_for_url(re.compile(rf"/teams/{team_id}"))
        page.get_by_label("Reply to the team").fill(
            "Try printing a few spares for the night shift!"
        )
        page.get_by_role("button", name="Send reply").click()
        page.wait_for_load_state()
        assert page.get_by_text("Reply queued to").is_visible()
        page.screenshot(path=str(shots / "team.png"), full_page=True)
        page.goto(server.url + f"/cohorts/{_cohort_of(tg_ctx, team_id)}")
        page.screenshot(path=str(shots / "cohort-board.png"), full_page=True)
        page.goto(server.url + "/admin")
        page.screenshot(path=str(shots / "admin.png"), full_page=True)

    # Playwright's sync API owns this thread's event loop; the worker gets a thread of its own.
    done: list[int] = []
    worker = DeliveryWorker(tg_ctx, build_senders(tg_ctx))
    thread = threading.Thread(target=lambda: done.append(asyncio.run(worker.drain_once())))
    thread.start()
    thread.join(timeout=30)
    delivered = done[0]
    assert delivered >= 1
    texts = fake_telegram.sent_texts(CHAT)
    assert any(
        "Try printing a few spares for the night shift!" in t and "Casey" in t for t in texts
    )


def _cohort_of(ctx: AppContext, team_id: int) -> int:
    with ctx.db.transaction() as s:
        return s.get(Team, team_id).cohort_id


def test_a_script_in_a_message_shows_as_text_and_runs_nothing(tg_ctx, page):
    team_id = seed(tg_ctx)
    telegram_text(tg_ctx, HOSTILE, 1)
    with LiveServer(tg_ctx) as server:
        log_in(page, server)
        assert page.evaluate("window.__pwned") is None
        page.goto(server.url + f"/teams/{team_id}")
        assert (
            page.locator(".msg.in .text")
            .filter(has_text="<script>window.__pwned = 1</script>")
            .count()
            == 1
        )
        assert page.evaluate("window.__pwned") is None
        assert page.locator(".thread img").count() == 0


def test_leader_signs_off_through_the_link_and_the_team_is_enrolled(ctx, page, shots):
    with ctx.db.transaction() as s:
        cohort = w.cohort(s)
        contact = w.nurse(s, "Kim Contact", "kc")
        team = start_team(
            s, cohort=cohort, key_contact=contact, organisation="St Elsewhere", unit="5 West"
        )
        team_id = team.id
    with LiveServer(ctx) as server:
        page.set_viewport_size({"width": 390, "height": 844})  # a leader's phone
        page.goto(server.url + "/matrix/" + make_token(ctx.secret, "matrix", team_id))
        for criterion, score in (
            ("Importance", 5),
            ("Ability to influence", 4),
            ("Length of the project", 4),
            ("Expense", 3),
            ("Frequency", 5),
        ):
            page.get_by_role("group", name=re.compile(criterion)).get_by_label(str(score)).check()
        page.get_by_label("Leader's name").fill("Lee Leader")
        page.get_by_label(re.compile("Leader's mobile number")).fill("+1 202 555 0123")
        page.screenshot(path=str(shots / "matrix-phone.png"), full_page=True)
        page.get_by_role("button", name="Send the matrix").click()
        assert page.get_by_text("the matrix is in").is_visible()

        page.goto(server.url + "/signoff/" + make_token(ctx.secret, "signoff", team_id))
        page.get_by_role("radio", name=re.compile("Approve")).check()
        page.get_by_label("Your name").fill("Lee Leader")
        page.get_by_label("Your role").fill("Nurse manager, 5 West")
        page.screenshot(path=str(shots / "signoff-phone.png"), full_page=True)
        page.get_by_role("button", name="Send my decision").click()
        assert page.get_by_role("heading", name="Approved: thank you").is_visible()
    with ctx.db.transaction() as s:
        team = s.get(Team, team_id)
        assert team.state == TeamState.ENROLLED.value and team.join_code
        assert team.leader is not None and team.leader.name == "Lee Leader"


def test_login_page_screenshot(ctx, page, shots):
    with LiveServer(ctx) as server:
        page.set_viewport_size({"width": 390, "height": 700})
        page.goto(server.url + "/login")
        page.keyboard.press("Tab")  # the skip link takes focus first
        assert page.evaluate("document.activeElement.className") == "skip"
        page.screenshot(path=str(shots / "login-phone.png"))
