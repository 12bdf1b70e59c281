"""The command line as a newcomer meets it in the README's tour: cohort list/show, the checks
on `cohort create` and `coach add`, what `dispatch` queued, `serve --port` links, the aim in
`curriculum show`."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import select
from starlette.testclient import TestClient
from typer.testing import CliRunner

from dash.app.cli.main import app
from dash.context import AppContext
from dash.db import Database
from dash.models import Cohort, Person
from dash.passwords import verify_password
from dash.settings import get_settings
from dash.timeutil import use_clock
from tests.support import web as w
from tests.support.engine import Chat, enrol

ROOT = Path(__file__).resolve().parents[2]
#: The tour's "now": Monday 7 December 2026, 07:00 in New York.
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
KC = "+15551230001"
LEADER = "+15551230002"


def dash(*args: str, input: str | None = None):  # noqa: A002 - mirrors CliRunner
    return CliRunner().invoke(app, list(args), input=input)


@pytest.fixture
def tour(settings) -> Iterator[Database]:
    """An initialised database on the tour's clock."""
    with use_clock(lambda: NOW):
        result = dash("init")
        assert result.exit_code == 0, result.output
        db = Database(settings.database_url)
        yield db
        db.dispose()


def _create(*extra: str, start: str = "2026-12-07"):
    return dash(
        "cohort", "create", "--topic", "opioid-safety", "--start", start,
        "--timezone", "America/New_York", *extra,
    )  # fmt: skip


def _enrolled_team(settings, db: Database) -> None:
    """Cohort 1 with coach Rosa and the unit 5 West enrolled by chat, as in the tour."""
    assert _create("--join-link", "https://meet.example.org/dash").exit_code == 0
    added = dash("coach", "add", "--email", "rosa@example.org", "--name", "Rosa",
                 "--cohort", "1", input="a long password\n")  # fmt: skip
    assert added.exit_code == 0, added.output
    ctx = AppContext.from_settings(settings, db)
    with db.transaction() as s:
        cohort = s.get(Cohort, 1)
        s.expunge(cohort)
    enrol(Chat(ctx), cohort, kc=KC, leader=LEADER, unit="5 West")


def test_cohort_list_and_show_give_dates_code_teams_coaches_and_sessions(settings, tour) -> None:
    empty = dash("cohort", "list")
    assert empty.exit_code == 0 and "no cohorts yet" in empty.output
    _enrolled_team(settings, tour)
    listed = dash("cohort", "list")
    assert listed.exit_code == 0, listed.output
    with tour.transaction() as s:
        cohort = s.get(Cohort, 1)
        code, name = cohort.enrolment_code, cohort.name
    assert name in listed.output and f"code {code}" in listed.output
    assert "opioid-safety, 2026-12-07 to 2026-12-20 (America/New_York)" in listed.output
    assert "1 team(s): 1 enrolled" in listed.output

    shown = dash("cohort", "show", "1")
    assert shown.exit_code == 0, shown.output
    out = shown.output
    assert "dates 2026-12-07 to 2026-12-20" in out and f"JOIN {code}" in out
    assert "coaches: Rosa <rosa@example.org>" in out
    assert "5 West, St Mary's Hospital: enrolled, team code " in out
    assert "key contact Maria Lopez" in out
    assert "1  Mon 2026-12-07 12:30  join https://meet.example.org/dash" in out
    assert "6  Fri 2026-12-18 12:30  join https://meet.example.org/dash" in out

    missing = dash("cohort", "show", "9")
    assert missing.exit_code == 1
    assert missing.output.strip() == "error: there is no cohort 9: see `dash cohort list`"


def test_a_start_years_ago_is_refused_unless_forced(tour) -> None:
    refused = _create(start="2020-12-07")
    assert refused.exit_code == 1
    assert "2020-12-07 is 2191 days ago" in refused.output and "--force" in refused.output
    assert "cohort 1 code" not in refused.output
    assert "no cohorts yet" in dash("cohort", "list").output  # nothing was created
    forced = _create("--force", start="2020-12-07")
    assert forced.exit_code == 0, forced.output
    assert "warning: --start 2020-12-07 is 2191 days ago" in forced.output
    # (PostgreSQL spends an id on the refused one: any id will do.)
    assert re.fullmatch(r"cohort \d+ code \w{6}", forced.output.strip().splitlines()[-1])


def test_a_start_off_the_session_days_is_refused_unless_meant(tour) -> None:
    refused = _create(start="2026-12-08")
    assert refused.exit_code == 1
    assert (
        "--start 2026-12-08 is a Tue but the sessions are on Mon, Wed, Fri, so session 1 "
        "would be Wed 2026-12-09"
    ) in refused.output
    assert _create("--weekdays", "tue,thu,sat", start="2026-12-08").exit_code == 0
    assert _create("--force", start="2026-12-08").exit_code == 0
    # A start a few days back is allowed, with a word about what that means.
    recent = _create(start="2026-11-30")
    assert recent.exit_code == 0
    assert "2026-11-30 is 7 day(s) ago" in recent.output and "skipped" in recent.output


def test_adding_an_existing_coach_again_does_not_silently_replace_the_password(tour) -> None:
    first = dash("coach", "add", "--email", "rosa@example.org", "--name", "Rosa",
                 input="the first password\n")  # fmt: skip
    assert first.exit_code == 0
    again = dash("coach", "add", "--email", "Rosa@example.org", "--name", "Rosa",
                 input="another password\n")  # fmt: skip
    assert again.exit_code == 1
    assert "rosa@example.org is already coach 1 (Rosa)" in again.output
    assert "--force" in again.output

    def password_is(text: str) -> bool:
        with tour.transaction() as s:
            person = s.execute(select(Person).where(Person.email == "rosa@example.org")).scalar_one()
            return verify_password(person.password_hash, text)

    assert password_is("the first password")
    # No password piped: a log-in link, the password kept, and a word that she existed.
    link = dash("coach", "add", "--email", "rosa@example.org", "--name", "Rosa", input="")
    assert link.exit_code == 0
    assert "coach 1 rosa@example.org already existed" in link.output
    assert "password kept" in link.output and "/login/link/" in link.output
    assert password_is("the first password")
    forced = dash("coach", "add", "--email", "rosa@example.org", "--name", "Rosa", "--force",
                  input="another password\n")  # fmt: skip
    assert forced.exit_code == 0 and "password replaced" in forced.output
    assert password_is("another password")


def test_dispatch_prints_a_table_of_what_it_queued(settings, tour) -> None:
    _enrolled_team(settings, tour)
    morning = dash("dispatch", "--now", "2026-12-08T09:00:00-05:00")
    assert morning.exit_code == 0, morning.output
    assert morning.output.strip().splitlines()[-1] == "nothing queued"
    # The README's example: the first evening's measure prompts.
    evening = dash("dispatch", "--now", "2026-12-08T18:05:00-05:00")
    assert evening.exit_code == 0, evening.output
    lines = evening.output.strip().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("to "))
    assert lines[header].split() == ["to", "kind", "status", "first", "words"]
    rows = lines[header + 1 :]
    assert len(rows) == 1  # one prompt listing both measures
    for row in rows:
        assert row.startswith(f"Maria Lopez ({KC})")
        assert " daily_prompt " in row and " sent " in row
        assert "5 West, St Mary's Hospital, " in row


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, settings, tour):
    """`dash serve` up to the point it hands its app to uvicorn; returns a function running
    it with the given arguments and giving back (output, a client of the app)."""
    with tour.transaction() as s:
        w.coach(s, "admin@example.org", admin=True, name="Ada Admin")
    captured: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app_, **kwargs: captured.update(app=app_))
    # serve sets DASH_PUBLIC_URL for its workers: put the environment back afterwards.
    monkeypatch.setenv("DASH_PUBLIC_URL", "placeholder")
    monkeypatch.delenv("DASH_PUBLIC_URL")

    def serve(*args: str) -> tuple[str, TestClient]:
        result = dash("serve", "--role", "web", *args)
        assert result.exit_code == 0, result.output
        # The browser is at the public address (an https one gets only secure cookies).
        base = get_settings().public_url
        client = TestClient(captured["app"], base_url=base, follow_redirects=False)
        w.login(client, "admin@example.org")
        return result.output, client

    yield serve
    get_settings.cache_clear()


def _new_login_link(client: TestClient) -> str:
    w.post(client, "/admin/coaches", {"name": "Nia New", "email": "nia@example.org"},
           form_page="/admin")  # fmt: skip
    page = client.get("/admin").text
    start = page.index("/login/link/")
    return page[page.rindex("http", 0, start) : start]


def test_serve_on_another_port_writes_links_with_that_port(served) -> None:
    output, client = served("--port", "8765")
    assert "links use http://127.0.0.1:8765 (DASH_PUBLIC_URL is not set)" in output
    assert _new_login_link(client) == "http://127.0.0.1:8765"


def test_serve_says_when_the_public_url_decides_the_links(served, monkeypatch) -> None:
    monkeypatch.setenv("DASH_PUBLIC_URL", "https://dash.example.org")
    get_settings.cache_clear()
    output, client = served("--port", "8765")
    assert "links use DASH_PUBLIC_URL https://dash.example.org" in output
    assert _new_login_link(client) == "https://dash.example.org"


def test_curriculum_show_renders_the_aim_with_example_values(settings) -> None:
    result = dash("curriculum", "show", "opioid-safety")
    assert result.exit_code == 0, result.output
    assert "{{" not in result.output and "{%" not in result.output
    assert (
        "By Sunday 20 December, 90% of opioid doses on 5 West will have a POSS sedation score "
        "documented before the dose, up from a baseline of 55%."
    ) in result.output


@pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout"
)
def test_what_normal_use_writes_is_ignored_by_git() -> None:
    paths = ["demo/dash-demo.db", "backups/dash-1.db", "reports/cohort-1/index.html", "dash.db"]
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.split() == paths
