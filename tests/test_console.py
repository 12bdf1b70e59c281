"""The console channel: `dash chat --from ADDRESS` and the ConsoleSender the worker uses."""

from __future__ import annotations

import asyncio
import io
from datetime import date

import typer
from sqlalchemy import select
from typer.testing import CliRunner

from bots.console import ConsoleSender, chat
from bots.delivery import DeliveryWorker
from dash import migrate
from dash.actions.cohorts import create_cohort
from dash.actions.outbound import queue_message
from dash.cli import DashGroup
from dash.cli_chat import register
from dash.db import Database
from dash.models import Message, OutboxItem, Team
from tests.test_engine_support import make_cohort


def _cli() -> typer.Typer:
    app = typer.Typer(cls=DashGroup)

    @app.callback()
    def main() -> None:
        """The chat command on its own (dash.cli mounts it beside the others)."""

    register(app)
    return app


def test_dash_chat_enrols_a_unit_from_the_terminal(settings) -> None:
    db = Database(settings.database_url)
    migrate.upgrade(db)
    with db.transaction() as s:
        code = create_cohort(s, topic="sepsis", start=date.today(), timezone="UTC").enrolment_code
    db.dispose()
    lines = "\n".join(
        [f"JOIN {code}", "Maria Lopez", "St Mary's", "ED", "5", "4", "3", "4", "5",
         "Ana Ruiz, CNO", "+15551234568", ""]
    )  # fmt: skip
    result = CliRunner().invoke(_cli(), ["chat", "--from", "+15551234567"], input=lines)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "What is your name?" in out
    assert "1/5 Importance" in out and "[buttons: 1 | 2 | 3 | 4 | 5]" in out
    assert "Total: 21 of 25" in out
    # The leader's request goes to another console address; the terminal shows it too.
    assert "[to +15551234568]" in out and "Reply YES to approve" in out
    db = Database(settings.database_url)
    with db.transaction() as s:
        team = s.execute(select(Team)).scalar_one()
        assert team.state == "awaiting_signoff"
        # Every reply was delivered through the outbox.
        states = set(s.execute(select(OutboxItem.state)).scalars())
        assert states == {"sent"}
    db.dispose()


def test_dash_chat_needs_an_initialised_database(settings) -> None:
    result = CliRunner().invoke(_cli(), ["chat", "--from", "+15551234567"], input="hello\n")
    assert result.exit_code == 1
    assert "dash init" in result.output


def test_the_chat_loop_and_sender_print_what_the_bot_says(ctx) -> None:
    make_cohort(ctx)
    out = io.StringIO()
    chat(ctx, "+15551234567", ["hello", "", "JOIN NOPE99"], out=out)
    text = out.getvalue()
    assert "I don't know this number yet" in text
    assert "I don't know the code NOPE99" in text


def test_console_sender_shows_charts_and_keeps_what_it_sent(ctx) -> None:
    with ctx.db.transaction() as s:
        queue_message(
            s,
            channel="console",
            address="nurse",
            text="Run chart",
            payload={"photo": {"kind": "chart", "team_id": 3}},
        )
    out = io.StringIO()
    sender = ConsoleSender(ctx, out=out, me="nurse")
    sent = asyncio.run(DeliveryWorker(ctx, {"console": sender}).drain_once())
    assert sent == 1
    assert [m.text for m in sender.sent] == ["Run chart"]
    assert "[image: run chart of team 3]" in out.getvalue()
    with ctx.db.transaction() as s:
        message = s.execute(select(Message).where(Message.direction == "out")).scalar_one()
        assert message.status == "sent" and message.provider_id.startswith("console-")
