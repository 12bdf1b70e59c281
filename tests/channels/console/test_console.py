"""The console channel: `dash chat --from ADDRESS` and the ConsoleSender the worker uses."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import threading
import time

import typer
from sqlalchemy import select
from typer.testing import CliRunner

from bots.console.chat import ConsoleSender, chat
from bots.delivery import DeliveryWorker
from bots.registry import build_senders
from dash import migrate
from dash.actions.coaches import add_coach
from dash.actions.cohorts import create_cohort
from dash.actions.queueing import queue_message
from dash.actions.threads import coach_reply
from dash.app.cli.main import app
from dash.context import AppContext
from dash.db import Database
from dash.models import Message, OutboxItem, Team
from dash.timeutil import utcnow
from tests.support.engine import Chat, enrol, make_cohort
from tests.support.processes import clock_environ, dash_command, python_path


def _cli() -> typer.Typer:
    """The real `dash` command line."""
    return app


def test_dash_chat_enrols_a_unit_from_the_terminal(settings) -> None:
    db = Database(settings.database_url)
    migrate.upgrade(db)
    with db.transaction() as s:
        code = create_cohort(s, topic="sepsis", start=utcnow().date(), timezone="UTC").enrolment_code
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
    # The leader's request goes to another console address: not printed in this window.
    assert "Reply YES to approve" not in out and "+15551234568]" not in out
    db = Database(settings.database_url)
    with db.transaction() as s:
        team = s.execute(select(Team)).scalar_one()
        assert team.state == "awaiting_signoff"
        # Every reply was delivered through the outbox.
        states = set(s.execute(select(OutboxItem.state)).scalars())
        assert states == {"sent"}
    db.dispose()
    # The leader's own window shows the request when it opens; the leader approves.
    leader = CliRunner().invoke(_cli(), ["chat", "--from", "+15551234568"], input="YES\n")
    assert leader.exit_code == 0, leader.output
    assert "Reply YES to approve" in leader.output and "is enrolled" in leader.output
    assert "Your team code is" not in leader.output
    # The key contact's next window starts with the team code, sent while it was closed.
    again = CliRunner().invoke(_cli(), ["chat", "--from", "+15551234567"], input="")
    assert again.exit_code == 0, again.output
    assert "Your team code is" in again.output and "What is your name?" not in again.output


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
    assert "[image: run chart]" in out.getvalue() and "team 3" not in out.getvalue()
    with ctx.db.transaction() as s:
        message = s.execute(select(Message).where(Message.direction == "out")).scalar_one()
        assert message.status == "sent" and message.provider_id.startswith("console-")


def _read_lines(stream, into: list[str]) -> None:
    for line in iter(stream.readline, ""):
        into.append(line)


def _wait_for(text: str, lines: list[str], proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while text not in "".join(lines):
        assert proc.poll() is None, "".join(lines)
        assert time.monotonic() < deadline, f"{text!r} never shown:\n{''.join(lines)}"
        time.sleep(0.05)


def test_an_open_chat_window_shows_what_another_process_delivers_to_it(settings) -> None:
    db = Database(settings.database_url)
    migrate.upgrade(db)
    ctx = AppContext.from_settings(settings, db)
    team = enrol(Chat(ctx), make_cohort(ctx), kc="+15551230001", leader="+15551230002")
    env = {k: v for k, v in os.environ.items() if k.startswith("DASH_") or k in ("PATH", "HOME")}
    env.update(DASH_CONSOLE_POLL_SECONDS="0.1", PYTHONPATH=python_path(), **clock_environ())
    proc = subprocess.Popen(
        dash_command("chat", "--from", "+15551230001"),
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True)
    reader.start()
    try:
        # Sent while no window was open: shown when it opens.
        _wait_for("Your team code is", lines, proc)
        # Now the coach replies from the dashboard, and something goes to the leader; this
        # process delivers them, as `dash serve` would.
        with db.transaction() as s:
            coach = add_coach(s, email="rosa@example.org", name="Rosa")
            coach_reply(s, coach=coach, team=s.get(Team, team.id), text="Great start, 5 West!")
            queue_message(s, channel="console", address="+15551230002", text="For the leader")
        sent = asyncio.run(DeliveryWorker(ctx, build_senders(ctx)).drain_once())
        assert sent >= 2  # the reply goes to every member of the team, the leader too
        _wait_for("Great start, 5 West!", lines, proc)
        proc.stdin.write("HELP\n")
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=10)
        db.dispose()
    out = "".join(lines)
    assert "Rosa" in out and out.count("Great start, 5 West!") == 1
    assert "PLAN" in out  # the answer to HELP
    assert "For the leader" not in out and "Reply YES to approve" not in out
    with db.transaction() as s:
        statuses = s.execute(
            select(Message.address, Message.status).where(
                Message.direction == "out", Message.text.in_(["For the leader"])
            )
        ).all()
    assert statuses == [("+15551230002", "sent")]  # waits for the leader's own window


def test_a_window_opening_on_a_long_backlog_shows_the_latest_and_counts_the_rest(ctx) -> None:
    with ctx.db.transaction() as s:
        for n in range(1, 54):
            queue_message(s, channel="console", address="nurse", text=f"note {n}")
    out = io.StringIO()
    chat(ctx, "nurse", [], out=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "[3 earlier messages not shown]"
    assert lines[1:] == [f"note {n}" for n in range(4, 54)]
    with ctx.db.transaction() as s:
        statuses = set(s.execute(select(Message.status).where(Message.address == "nurse")).scalars())
    assert statuses == {"delivered"}
    again = io.StringIO()
    chat(ctx, "nurse", [], out=again)
    assert again.getvalue() == ""  # shown once
