"""Retention: purging a cohort's old messages keeps the team's record and everyone else's data."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from bots.console.chat import ConsoleSender
from bots.delivery import DeliveryWorker
from dash.actions.cohorts import create_cohort
from dash.actions.queueing import queue_message
from dash.actions.retention import purge
from dash.context import AppContext
from dash.errors import UserError
from dash.models import (
    Cohort,
    MeasureValue,
    Message,
    OutboxItem,
    Person,
    PriorityMatrix,
    SignOff,
)
from dash.timeutil import use_clock, utcnow
from tests.support.clock import RunningClock
from tests.support.engine import KC, Chat, enrol, person_id
from tests.support.people import reachable
from tests.support.web import team as make_team

KC_B, LEADER_B = "+15551239001", "+15551239002"


@contextmanager
def days_ago(n: int) -> Iterator[None]:
    """Run the block as if it were `n` days ago, with the clock still moving."""
    with use_clock(RunningClock(utcnow() - timedelta(days=n))):
        yield


def today() -> date:
    """Today on the test's clock (the cohorts keep UTC)."""
    return utcnow().date()


def a_cohort(ctx: AppContext, name: str) -> Cohort:
    with ctx.db.transaction() as s:
        cohort = create_cohort(
            s,
            topic="opioid-safety",
            start=today() - timedelta(days=14),
            timezone="UTC",
            name=name,
        )
        s.expunge(cohort)
        return cohort


def count(ctx: AppContext, model, *where) -> int:
    with ctx.db.transaction() as s:
        return s.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def deliver(ctx: AppContext) -> None:
    """Send everything queued over the console channel, as `dash serve` would: passes until
    nothing is left queued (a pass may leave rows the rate limiter holds back)."""
    worker = DeliveryWorker(ctx, {"console": ConsoleSender(ctx)})
    sent = 0
    for _ in range(40):
        sent += asyncio.run(worker.drain_once())
        if count(ctx, OutboxItem, OutboxItem.state.in_(("queued", "sending"))) == 0:
            break
        time.sleep(0.25)
    assert sent > 0


@pytest.fixture
def two_cohorts(ctx: AppContext) -> dict[str, object]:
    """Cohort A and cohort B, each with a team that enrolled and talked ten days ago;
    A's team also reports today."""
    chat = Chat(ctx)
    a, b = a_cohort(ctx, "A"), a_cohort(ctx, "B")
    with days_ago(10):
        team_a = enrol(chat, a)
        assert "Recorded" in chat.say(KC, "5/10")
        chat.say(KC, "Busy night, the scale was missing on two carts")
        team_b = enrol(chat, b, kc=KC_B, leader=LEADER_B, unit="ICU")
        assert "Recorded" in chat.say(KC_B, "6/8")
    assert "Recorded" in chat.say(KC, "7/10")
    deliver(ctx)
    return {"chat": chat, "a": a, "b": b, "team_a": team_a, "team_b": team_b}


def test_purge_deletes_old_messages_and_keeps_the_teams_record(ctx, two_cohorts) -> None:
    a, team_a, team_b = two_cohorts["a"], two_cohorts["team_a"], two_cohorts["team_b"]
    kc = person_id(ctx, KC)
    cutoff = utcnow() - timedelta(days=2)
    old_of_a = count(ctx, Message, Message.team_id == team_a.id, Message.created_at < cutoff)
    b_messages = count(ctx, Message, Message.team_id == team_b.id)
    enrolment_chat = count(ctx, Message, Message.person_id == kc, Message.team_id.is_(None))
    values_before = count(ctx, MeasureValue)
    assert old_of_a > 5 and b_messages > 5 and enrolment_chat > 0

    with ctx.db.transaction() as s:
        report = purge(s, cohort_id=a.id, before=today() - timedelta(days=2))
    assert report.messages >= old_of_a + enrolment_chat
    assert report.messages_in > 0 and report.messages_out > 0 and report.outbox_rows > 0

    # A's old thread, raw payloads and outbox rows are gone, the enrolment chat too.
    assert count(ctx, Message, Message.team_id == team_a.id, Message.created_at < cutoff) == 0
    assert count(ctx, Message, Message.person_id == kc, Message.created_at < cutoff) == 0
    assert (
        count(ctx, OutboxItem, OutboxItem.team_id == team_a.id, OutboxItem.created_at < cutoff) == 0
    )
    # Today's message and its reply stay.
    with ctx.db.transaction() as s:
        texts = s.execute(select(Message.text).where(Message.team_id == team_a.id)).scalars().all()
    assert "7/10" in texts and not any("scale was missing" in t for t in texts)
    # The record stays: every count, the matrix and the leader's sign-off.
    assert count(ctx, MeasureValue) == values_before
    assert count(ctx, MeasureValue, MeasureValue.team_id == team_a.id) == 2
    assert count(ctx, PriorityMatrix, PriorityMatrix.team_id == team_a.id) == 1
    assert count(ctx, SignOff, SignOff.team_id == team_a.id, SignOff.decision == "approved") == 1
    # Cohort B is untouched.
    assert count(ctx, Message, Message.team_id == team_b.id) == b_messages


def test_dry_run_changes_nothing_and_predicts_the_purge(ctx, two_cohorts) -> None:
    a = two_cohorts["a"]
    total = count(ctx, Message)
    before = today() - timedelta(days=2)
    with ctx.db.transaction() as s:
        preview = purge(s, cohort_id=a.id, before=before, dry_run=True)
    assert preview.dry_run and preview.messages > 0
    assert count(ctx, Message) == total
    with ctx.db.transaction() as s:
        done = purge(s, cohort_id=a.id, before=before)
    assert (done.messages, done.outbox_rows, done.measure_links) == (
        preview.messages,
        preview.outbox_rows,
        preview.measure_links,
    )
    assert count(ctx, Message) == total - done.messages
    with ctx.db.transaction() as s:
        again = purge(s, cohort_id=a.id, before=before)
    assert again.messages == 0


def test_a_message_still_waiting_to_be_sent_is_not_purged(ctx, two_cohorts) -> None:
    a, team_a = two_cohorts["a"], two_cohorts["team_a"]
    with days_ago(5), ctx.db.transaction() as s:
        person = s.get(Person, person_id(ctx, KC))
        waiting = queue_message(
            s, channel="console", address=KC, text="Queued long ago", person=person, team=team_a.id
        )
        s.flush()
        waiting_id = waiting.id
    with ctx.db.transaction() as s:
        report = purge(s, cohort_id=a.id, before=today())
    assert report.kept_in_flight >= 1
    assert count(ctx, Message, Message.id == waiting_id) == 1
    with ctx.db.transaction() as s:
        s.execute(
            select(OutboxItem).where(OutboxItem.message_id == waiting_id)
        ).scalar_one().state = "sent"
    with ctx.db.transaction() as s:
        purge(s, cohort_id=a.id, before=today())
    assert count(ctx, Message, Message.id == waiting_id) == 0


def test_unattributed_messages_of_someone_in_two_cohorts_stay(ctx) -> None:
    a, b = a_cohort(ctx, "A"), a_cohort(ctx, "B")
    with ctx.db.transaction() as s:
        both = reachable(name="Float nurse", console="+15550000001")
        only_a = reachable(name="Ward nurse", console="+15550000002")
        s.add_all([both, only_a])
        s.flush()
        make_team(s, s.get(Cohort, a.id), "A ward", members=[both, only_a])
        make_team(s, s.get(Cohort, b.id), "B ward", members=[both])
        old = utcnow() - timedelta(days=30)
        for who in (both, only_a):
            s.add(
                Message(
                    direction="in",
                    channel="console",
                    address=who.addresses[0].address,
                    text="hello",
                    status="processed",
                    person_id=who.id,
                    created_at=old,
                )
            )
        both_id, only_a_id = both.id, only_a.id
    with ctx.db.transaction() as s:
        purge(s, cohort_id=a.id, before=today())
    assert count(ctx, Message, Message.person_id == both_id) == 1
    assert count(ctx, Message, Message.person_id == only_a_id) == 0


def test_a_stop_outlives_the_purge(ctx, two_cohorts) -> None:
    chat, a = two_cohorts["chat"], two_cohorts["a"]
    with days_ago(3):
        assert "no more messages" in chat.say(KC, "STOP")
    with ctx.db.transaction() as s:
        purge(s, cohort_id=a.id, before=today())
    with ctx.db.transaction() as s:
        person = s.get(Person, person_id(ctx, KC))
        assert person.opted_out
        assert queue_message(s, channel="console", address=KC, text="Prompt", person=person) is None


def test_unknown_cohort_is_a_user_error(ctx) -> None:
    with pytest.raises(UserError, match="no cohort 999"), ctx.db.transaction() as s:
        purge(s, cohort_id=999, before=today())


# -- dash purge --------------------------------------------------------------------------------


def _stamp_head(ctx: AppContext) -> None:
    """The fixtures build tables from the models; mark them as the newest migration."""
    from alembic import command

    from dash import migrate

    cfg = migrate.alembic_config(ctx.db)
    with ctx.db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.stamp(cfg, "head")


def dash_cli(*args: str, input: str | None = None):  # noqa: A002 - mirrors CliRunner
    """Run `dash ARGS` on the real command line."""
    from dash.app.cli.main import app

    return CliRunner().invoke(app, list(args), input=input)


def test_cli_shows_what_it_would_delete_and_asks(ctx, two_cohorts) -> None:
    _stamp_head(ctx)
    a, team_a = two_cohorts["a"], two_cohorts["team_a"]
    total = count(ctx, Message)
    before = (today() - timedelta(days=2)).isoformat()

    declined = dash_cli("purge", "--cohort", str(a.id), "--before", before, input="n\n")
    assert declined.exit_code == 0, declined.output
    assert "would delete" in declined.output and "delete them?" in declined.output
    assert "nothing deleted" in declined.output
    assert count(ctx, Message) == total

    accepted = dash_cli("purge", "--cohort", str(a.id), "--before", before, input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert "deleted" in accepted.output.splitlines()[-1]
    assert count(ctx, Message) < total
    assert count(ctx, Message, Message.team_id == team_a.id) > 0  # today's messages


def test_cli_yes_skips_the_question(ctx, two_cohorts) -> None:
    _stamp_head(ctx)
    a = two_cohorts["a"]
    result = dash_cli("purge", "--cohort", str(a.id), "--before", today().isoformat(), "--yes")
    assert result.exit_code == 0, result.output
    assert "delete them?" not in result.output
    assert result.output.splitlines()[-1].startswith("deleted ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cohort", "999", "--before", "2026-01-01", "--yes"], "no cohort 999"),
        (["--cohort", "1", "--before", "1/1/2026", "--yes"], "use YYYY-MM-DD"),
    ],
)
def test_cli_user_errors_are_one_line(ctx, args: list[str], message: str) -> None:
    _stamp_head(ctx)
    result = dash_cli("purge", *args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
