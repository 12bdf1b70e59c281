"""Nothing a deployment can set or run goes undocumented (the Datasette habit)."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from starlette.testclient import TestClient

from dash.app.cli.main import app
from dash.context import AppContext
from dash.db import Database
from dash.settings import Settings
from dash.timeutil import use_clock
from tests.support import web as w
from tests.support.people import reachable

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def _command_paths(typer_app: typer.Typer) -> list[str]:
    group = typer.main.get_group(typer_app)
    paths: list[str] = []
    for name, command in group.commands.items():
        sub = getattr(command, "commands", None)
        if sub:
            paths += [f"{name} {child}" for child in sub]
        else:
            paths.append(name)
    return paths


def test_every_setting_is_documented_in_the_readme() -> None:
    missing = [
        f"DASH_{name.upper()}" for name in Settings.model_fields if f"DASH_{name.upper()}" not in README
    ]
    assert not missing, f"README.md does not document {missing}"


def test_every_command_is_documented_in_the_readme() -> None:
    missing = [path for path in _command_paths(app) if f"dash {path}" not in README]
    assert not missing, f"README.md does not show {missing}"


# -- docs/RELIABILITY.md: its known limits still hold, its claims match the code ----------------

RELIABILITY = (Path(__file__).parent.parent / "docs" / "RELIABILITY.md").read_text(encoding="utf-8")
_LIMIT = re.compile(r"^- `([a-z0-9-]+)`: ", re.MULTILINE)


def _known_limits() -> list[str]:
    section = RELIABILITY.split("### Known limits", 1)[1].split("\n## ", 1)[0]
    bullets = [line for line in section.splitlines() if line.startswith("- ")]
    ids = _LIMIT.findall(section)
    assert len(ids) == len(bullets), "each known limit in RELIABILITY.md must start with its `id`"
    return ids


def test_every_known_limit_has_a_test_that_it_still_holds() -> None:
    """A limit someone fixes fails its test below; one added here needs a test of its own."""
    tested = {
        name.removeprefix("test_known_limit_").replace("_", "-")
        for name in globals()
        if name.startswith("test_known_limit_")
    }
    listed = set(_known_limits())
    assert listed == tested, (
        f"limits without a test: {listed - tested}; "
        f"tests of limits no longer listed: {tested - listed}"
    )


def test_known_limit_at_least_once(db: Database) -> None:
    """A send whose process died mid-send (its lease ran out) is claimed and sent again, and
    the second lease records that the first attempt may have arrived."""
    from dash.actions.outbox import lease_many
    from dash.actions.queueing import queue_to_person
    from dash.queries.outbox import due_outbox

    started = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
    with use_clock(lambda: started), db.transaction() as s:
        person = reachable(name="Ada", console="ada")
        s.add(person)
        s.flush()
        queue_to_person(s, person, "Your daily count, please")
        first = due_outbox(s, channels=["console"], now=started)
        lease_many(s, first, worker_id="died", now=started, lease_seconds=60)
    later = started + timedelta(seconds=61)
    with use_clock(lambda: later), db.transaction() as s:
        again = due_outbox(s, channels=["console"], now=later)
        assert [row.id for row in again] == [row.id for row in first], "never sent twice"
        lease_many(s, again, worker_id="next", now=later, lease_seconds=60)
        assert again[0].attempts == 2 and "may have arrived" in (again[0].last_error or "")


def _log_in(client: TestClient, email: str, password: str) -> int:
    page = client.get("/login")
    return client.post(
        "/login", data={"email": email, "password": password, "csrf": w.csrf_of(page.text)}
    ).status_code


def test_known_limit_guesser_locks_coach_out(ctx: AppContext) -> None:
    """After the failures allowed, even the right password is refused."""
    with ctx.db.transaction() as s:
        w.coach(s, "casey@example.org")
    client = TestClient(w.web_app(ctx), follow_redirects=False)
    for n in range(ctx.settings.login_max_failures):
        assert _log_in(client, "casey@example.org", f"guess {n}") == 400
    assert _log_in(client, "casey@example.org", w.PASSWORD) == 400


def test_known_limit_twilio_replay(
    monkeypatch: pytest.MonkeyPatch, db: Database, fake_twilio: Any
) -> None:
    """A captured, genuinely signed request is accepted again later (and stored once)."""
    from dash.app.server import create_app
    from dash.models import Message
    from tests.support.delivery import configure, twilio_env
    from tests.support.webhooks import Poster, twilio_params

    public = "https://dash.example.org"
    ctx = configure(monkeypatch, db, **twilio_env(fake_twilio), public_url=public)
    params = twilio_params("+13125550101", "hello there")
    app = create_app(ctx, background=False)
    with TestClient(app, raise_server_exceptions=False, base_url=public) as client:
        poster = Poster(ctx, client)
        captured = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
        with use_clock(lambda: captured):
            first = poster.twilio(params)
        with use_clock(lambda: captured + timedelta(days=30)):
            replay = poster.twilio(params)
    assert (first.status_code, replay.status_code) == (200, 200)
    with db.transaction() as s:
        assert s.query(Message).filter_by(direction="in").count() == 1


def test_known_limit_telegram_static_secret(settings: Settings, db: Database) -> None:
    """The webhook secret of a deployment is the same a year later: nothing rotates it."""
    from bots.telegram.webhook import webhook_secret

    now = datetime(2026, 12, 7, tzinfo=UTC)
    secrets = []
    for at in (now, now + timedelta(days=365)):
        with use_clock(lambda at=at: at):
            secrets.append(webhook_secret(AppContext.from_settings(settings, db)))
    assert secrets[0] == secrets[1]


def test_the_csv_formula_claim_matches_the_export(ctx: AppContext) -> None:
    """RELIABILITY.md says which first characters make an exported cell inert: each does."""
    from dash.exports import write_export
    from dash.models import Message

    row = next(
        (line for line in RELIABILITY.splitlines() if line.startswith("| Spreadsheet formulas")), ""
    )
    assert row, "RELIABILITY.md's abuse table no longer says what exports do with formulas"
    starts = re.findall(r"`(.)`", row.split("|")[1])
    starts += [{"a tab": "\t", "a carriage return": "\r"}[name] for name in
               ("a tab", "a carriage return") if name in row.split("|")[1]]  # fmt: skip
    assert starts, row
    with ctx.db.transaction() as s:
        cohort = w.cohort(s)
        team = w.team(s, cohort, "5 West")
        for start in starts:
            s.add(Message(team_id=team.id, direction="in", channel="sms", address="+15551230001",
                          text=f"{start}1+1 HYPERLINK", status="processed"))  # fmt: skip
        cohort_id = cohort.id
    out = io.StringIO()
    with ctx.db.transaction() as s:
        write_export(s, cohort_id, "messages", out)
    written = out.getvalue()
    for start in starts:
        text = f"{start}1+1 HYPERLINK"
        assert written.count(text) == written.count(f"'{text}") == 1, repr(start)
