"""The command line: output and exit codes as CONTRACT.md gives them."""

from __future__ import annotations

import csv
import io
import re
import subprocess
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from dash.app.cli.main import app
from dash.exports import COLUMNS
from dash.passwords import verify_password
from dash.timeutil import use_clock
from tests.support.processes import dash_command, dash_env

runner = CliRunner()


def dash(*args: str, input: str | None = None):  # noqa: A002 - mirrors CliRunner
    return runner.invoke(app, list(args), input=input)


@pytest.fixture
def initialised(settings):
    # On the clock of the cohorts' start (2026-12-07): `cohort create` refuses a start that
    # is long past, so the tests must not depend on the day they run.
    with use_clock(lambda: datetime(2026, 12, 7, 12, 0, tzinfo=UTC)):
        result = dash("init")
        assert result.exit_code == 0, result.output
        yield settings


def test_init_creates_then_reports_up_to_date(settings) -> None:
    first = dash("init")
    assert first.exit_code == 0
    assert "upgraded from empty to" in first.output
    second = dash("init")
    assert second.exit_code == 0
    assert "up to date" in second.output


def test_commands_refuse_an_uninitialised_database(settings) -> None:
    result = dash("export", "--cohort", "1", "--what", "measures")
    assert result.exit_code == 1
    assert "dash init" in result.output


def test_cohort_create_prints_id_and_code_on_the_last_line(initialised) -> None:
    result = dash(
        "cohort", "create", "--topic", "vte", "--start", "2026-12-07",
        "--timezone", "America/New_York", "--name", "VTE winter",
    )
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    assert re.fullmatch(r"cohort \d+ code [A-Z2-9]{6}", last), last


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--topic", "astrology", "--start", "2026-12-07", "--timezone", "UTC"], "astrology"),
        (["--topic", "vte", "--start", "07/12/2026", "--timezone", "UTC"], "YYYY-MM-DD"),
        (["--topic", "vte", "--start", "2026-12-07", "--timezone", "EST"], "IANA"),
        (["--topic", "vte", "--start", "2026-12-07", "--timezone", "UTC", "--weekdays", "mon,tue"],
         "three different weekdays"),
    ],
)
def test_cohort_create_user_errors_exit_1_with_one_line(initialised, args, message) -> None:
    result = dash("cohort", "create", *args)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_usage_errors_exit_2(initialised) -> None:
    assert dash("cohort", "create").exit_code == 2
    assert dash("no-such-command").exit_code == 2


def test_coach_add_with_password_on_stdin(initialised, db) -> None:
    dash("cohort", "create", "--topic", "sepsis", "--start", "2026-12-07", "--timezone", "UTC")
    result = dash(
        "coach", "add", "--email", "Coach@Example.org", "--name", "Rosa", "--cohort", "1",
        input="correct horse battery\n",
    )
    assert result.exit_code == 0, result.output
    assert "log-in link" not in result.output
    from dash.models import Cohort, Person

    with db.transaction() as s:
        coach = s.query(Person).filter_by(email="coach@example.org").one()
        assert verify_password(coach.password_hash, "correct horse battery")
        assert coach in s.get(Cohort, 1).coaches


def test_coach_add_without_password_prints_a_one_time_link(initialised) -> None:
    result = dash("coach", "add", "--email", "c@example.org", "--name", "C", input="")
    assert result.exit_code == 0
    assert re.search(r"http://127\.0\.0\.1:8000/login/link/\S+", result.output)


def test_coach_add_refuses_a_short_password(initialised) -> None:
    result = dash("coach", "add", "--email", "c@example.org", "--name", "C", input="short\n")
    assert result.exit_code == 1
    assert "at least" in result.output


def test_coach_remove_takes_access_away(initialised, db) -> None:
    dash("cohort", "create", "--topic", "sepsis", "--start", "2026-12-07", "--timezone", "UTC")
    dash("coach", "add", "--email", "c@example.org", "--name", "C", "--cohort", "1",
         input="correct horse battery\n")
    result = dash("coach", "remove", "--email", "C@example.org")
    assert result.exit_code == 0, result.output
    assert "sessions have ended" in result.output
    from dash.models import Cohort, Person

    with db.transaction() as s:
        person = s.query(Person).filter_by(email="c@example.org").one()
        assert not (person.is_coach or person.is_admin) and person.password_hash is None
        assert s.get(Cohort, 1).coaches == []
    again = dash("coach", "remove", "--email", "c@example.org")
    assert again.exit_code == 1 and "no coach" in again.output


@pytest.mark.parametrize("what", ["measures", "pdsa", "messages"])
def test_export_of_an_empty_cohort_is_header_only(initialised, what) -> None:
    dash("cohort", "create", "--topic", "delirium", "--start", "2026-12-07", "--timezone", "UTC")
    result = dash("export", "--cohort", "1", "--what", what)
    assert result.exit_code == 0
    rows = list(csv.reader(io.StringIO(result.output)))
    assert rows == [COLUMNS[what]]


def test_export_unknown_cohort_or_kind(initialised) -> None:
    assert dash("export", "--cohort", "42", "--what", "measures").exit_code == 1
    dash("cohort", "create", "--topic", "delirium", "--start", "2026-12-07", "--timezone", "UTC")
    assert dash("export", "--cohort", "1", "--what", "everything").exit_code == 1


def test_console_script_is_installed_and_prints_help() -> None:
    result = subprocess.run(
        dash_command("--help"),
        capture_output=True,
        text=True,
        timeout=60,
        env={**dash_env(), "COLUMNS": "200"},
    )
    assert result.returncode == 0
    for command in ("init", "serve", "cohort", "coach", "export", "curriculum"):
        assert command in result.stdout


def test_exported_text_cannot_run_as_a_spreadsheet_formula(initialised, db) -> None:
    from dash.models import Message, Organisation, Team, Unit

    dash("cohort", "create", "--topic", "delirium", "--start", "2026-12-07", "--timezone", "UTC")
    with db.transaction() as s:
        org = Organisation(name="St Mary's")
        unit = Unit(organisation=org, name="5 West")
        s.add_all([org, unit])
        s.flush()
        team = Team(cohort_id=1, unit_id=unit.id, name="5 West", state="enrolled")
        s.add(team)
        s.flush()
        s.add(
            Message(
                team_id=team.id, direction="in", channel="sms", address="+15551230001",
                text='=HYPERLINK("http://evil.example","click")', status="processed",
            )
        )
    result = dash("export", "--cohort", "1", "--what", "messages")
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert rows[0]["text"] == '\'=HYPERLINK("http://evil.example","click")'
