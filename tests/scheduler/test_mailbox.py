"""A nurse's phone is not a mailbox (issue 18, section 4): a daily budget of scheduled messages
per person, one prompt a day for every measure, nobody escalated about herself."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from dash.actions.queueing import queue_to_person
from dash.models import Message, OutboxItem, Person, Team
from dash.settings import get_settings
from dash.timeutil import use_clock
from scheduler.tick import dispatch
from tests.support.agenda import START, ny, report_data
from tests.support.teams import make_cohort, make_team


def setup(ctx, **kwargs) -> int:
    with ctx.db.transaction() as s:
        cohort = make_cohort(s)
        return make_team(s, cohort, **kwargs).id


def at(ctx, when) -> None:
    """The scheduler's run at `when`, with the clock there (messages are stamped then)."""
    with use_clock(lambda: when):
        dispatch(ctx, when)


def run_day(ctx, day) -> None:
    """Every scheduled step of `day` (the session at 12:30, the prompt at 18:00, the nudge)."""
    for hour, minute in ((11, 30), (14, 0), (18, 0), (20, 0)):
        at(ctx, ny(day, hour, minute))


def messages_to(s, person_id: int) -> list[Message]:
    query = select(Message).where(Message.person_id == person_id).order_by(Message.id)
    return list(s.execute(query).scalars())


def test_past_the_daily_budget_scheduled_messages_are_held_for_the_coach(
    ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASH_DAILY_MESSAGE_BUDGET", "2")
    get_settings.cache_clear()
    team_id = setup(ctx, reporters=0)  # the key contact reports: reminder, follow-up, prompt...
    run_day(ctx, START)
    with ctx.db.transaction() as s:
        contact = s.get(Team, team_id).key_contact_id
        sent = {m.kind: m.status for m in messages_to(s, contact)}
        # The day's prompt keeps its place; what comes past the budget is kept, held.
        assert sent == {
            "session_reminder": "queued",
            "session_followup": "held",
            "daily_prompt": "queued",
            "nudge_reporter": "held",
        }
        held = [m for m in messages_to(s, contact) if m.status == "held"]
        outbox = s.execute(
            select(OutboxItem).where(OutboxItem.message_id.in_([m.id for m in held]))
        ).scalars()
        assert {o.last_error for o in outbox} == {"daily budget of 2 scheduled messages reached"}
        # A reply to her own message is never held for the budget.
        person = s.get(Person, contact)
        with use_clock(lambda: ny(START, 20, 5)):
            reply = queue_to_person(s, person, "Thanks, recorded.", kind="reply")
        assert reply is not None and reply.status == "queued"
    # The next local day starts a new budget.
    at(ctx, ny(START + timedelta(days=1), 18, 0))
    with ctx.db.transaction() as s:
        latest = messages_to(s, contact)[-1]
        assert latest.kind == "daily_prompt" and latest.status == "queued"


def test_a_key_contact_who_reports_is_not_escalated_about_herself(ctx) -> None:
    team_id = setup(ctx, reporters=0)
    answered = START - timedelta(days=1)
    dispatch(ctx, ny(answered, 18, 0))
    with ctx.db.transaction() as s:
        report_data(s, team_id, answered)
    for day in (START, START + timedelta(days=1)):
        dispatch(ctx, ny(day, 18, 0))
        dispatch(ctx, ny(day, 20, 0))
    with ctx.db.transaction() as s:
        contact = s.get(Team, team_id).key_contact_id
        nudges = [m for m in messages_to(s, contact) if m.kind.startswith("nudge")]
        assert [m.kind for m in nudges] == ["nudge_reporter", "nudge_reporter"]
        # The second names both missed days, once.
        assert "Monday 7 and Tuesday 8 December" in nudges[1].text
