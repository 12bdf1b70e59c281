"""`dash demo`: the simulated Dash runs end to end and shows what a user would look for.

One shortened run (7 Dash days after enrolment and baseline: long enough for a leader to be
nudged and a coach to answer) is shared by the tests below; they read its output, its report
and its database. The demo always uses its own SQLite file, so these tests are the same when
the suite runs on PostgreSQL.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner

from dash.app.cli.main import app
from dash.app.demo.cast import COHORTS, TeamCast
from dash.db import Database
from dash.models import MeasureValue, Message, Team
from dash.settings import get_settings
from tests.support.people import person_at

DAYS = 7


def demo_app() -> typer.Typer:
    """The real `dash` command line."""
    return app


def clean_environment(mp: pytest.MonkeyPatch, folder: Path) -> None:
    for key in list(os.environ):
        if key.startswith("DASH_"):
            mp.delenv(key)
    mp.chdir(folder)
    get_settings.cache_clear()


@dataclass
class DemoRun:
    exit_code: int
    output: str  # stdout and stderr, as a terminal shows them
    folder: Path
    db: Database
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    folder = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as mp:
        clean_environment(mp, folder)
        result = CliRunner().invoke(
            demo_app(), ["demo", "--days", str(DAYS), "--seed", "3"], catch_exceptions=False
        )
        get_settings.cache_clear()
    db = Database(f"sqlite:///{folder / 'demo' / 'dash-demo.db'}")
    yield DemoRun(result.exit_code, result.output, folder, db, result.stdout, result.stderr)
    db.dispose()


def all_teams() -> list[TeamCast]:
    return [team for cohort in COHORTS for team in cohort.teams]


def team_named(session, cast: TeamCast) -> Team:
    return session.execute(
        select(Team).where(Team.name == f"{cast.unit}, {cast.organisation}")
    ).scalar_one()


def test_it_ends_by_printing_where_the_report_is(demo: DemoRun) -> None:
    assert demo.exit_code == 0, demo.output
    last = demo.output.strip().splitlines()[-1]
    assert last.startswith("report: ")
    index = Path(last.removeprefix("report: "))
    assert index.is_absolute() and index.name == "index.html" and index.exists()
    assert index.parent == (demo.folder / "demo" / "report").resolve()
    assert not (demo.folder / "dash.db").exists()  # the demo never touches ./dash.db


def test_the_summary_and_the_reports_list_every_team(demo: DemoRun) -> None:
    output = demo.output
    assert "baseline" in output and "day 7" in output  # progress lines without a terminal
    table = output[output.index("teams at the end") :]
    for cohort in COHORTS:
        assert cohort.topic in table and cohort.timezone in table
        for team in cohort.teams:
            assert team.unit in table
    index = Path(output.strip().splitlines()[-1].removeprefix("report: "))
    reports = [
        Path(line.removeprefix("cohort report: "))
        for line in output.splitlines()
        if line.startswith("cohort report: ")
    ]
    assert len(reports) == len(COHORTS)
    index_text = html.unescape(index.read_text(encoding="utf-8"))
    every_report = html.unescape("".join(p.read_text(encoding="utf-8") for p in reports))
    for team in all_teams():
        assert f"{team.unit}, {team.organisation}" in index_text
        assert f"{team.unit}, {team.organisation}" in every_report
    for report in reports:
        assert report.name in index_text
        assert "<svg" in report.read_text(encoding="utf-8")  # run charts drawn from real data


def test_progress_goes_to_stderr_from_the_start_to_the_reports(demo: DemoRun) -> None:
    progress = demo.stderr.strip().splitlines()
    # The first line comes before the slow part (imports, migrations), then the simulation's
    # span, a line per simulated day (no terminal here, so no bar), then the report step.
    assert progress[0].startswith("dash demo: a fresh database at ")
    assert progress[0].endswith("(seed 3)")
    assert progress[1].startswith("simulating ") and f"{DAYS} Dash days" in progress[1]
    days = progress[2:-1]
    assert len(days) >= 3 + 3 + DAYS  # enrolment, baseline and Dash days
    assert all(re.match(r"^\w{3} \d\d \w{3} UTC, +[\w ]+: \d+ in, \d+ out", d) for d in days)
    assert any("baseline" in d for d in days) and any("day 7" in d for d in days)
    assert progress[-1] == "writing the cohort reports and their run charts"
    # stdout keeps what a script would read: the table, the paths, the report last.
    assert "baseline:" not in demo.stdout and "simulating" not in demo.stdout
    assert demo.stdout.strip().splitlines()[-1].startswith("report: ")


def test_every_team_enrolled_by_chat_and_has_data(demo: DemoRun) -> None:
    with demo.db.transaction() as s:
        for cast in all_teams():
            team = team_named(s, cast)
            assert team.state == "enrolled" and team.leader is not None
            assert team.leader.name == cast.leader.name
            values = (
                s.execute(
                    select(MeasureValue).where(
                        MeasureValue.team_id == team.id, MeasureValue.is_current.is_(True)
                    )
                )
                .scalars()
                .all()
            )
            assert len({v.day for v in values}) >= 3 + DAYS - 3  # baseline and most days
            assert all(v.channel == "console" for v in values)
        sharing = {t.key: team_named(s, t).consent_share for t in COHORTS[0].teams}
        assert sorted(sharing.values()) == [False, True]  # one shares with the cohort, one not


def test_missed_days_were_nudged_up_to_the_leader(demo: DemoRun) -> None:
    with demo.db.transaction() as s:
        nudges = (
            s.execute(select(Message).where(Message.kind.like("nudge%"), Message.status == "sent"))
            .scalars()
            .all()
        )
        assert nudges
        kinds = {m.kind for m in nudges}
        assert {"nudge_reporter", "nudge_leader"} <= kinds
        # A key contact who reports gets the reporter's nudge, never an escalation about herself.
        reporters = {m.address for m in nudges if m.kind == "nudge_reporter"}
        assert not any(m.address in reporters for m in nudges if m.kind == "nudge_key_contact")
        sepsis = next(t for t in all_teams() if t.key == "amu")
        to_leader = [m for m in nudges if m.kind == "nudge_leader"]
        assert {m.address for m in to_leader} == {sepsis.leader.address}


def test_the_member_who_sent_stop_received_nothing_after_it(demo: DemoRun) -> None:
    cast = next(t for t in all_teams() if t.stop is not None)
    assert cast.stop is not None
    name = cast.stop[0]
    address = next(m.address for m in cast.members if m.name == name)
    with demo.db.transaction() as s:
        stop = s.execute(
            select(Message).where(
                Message.direction == "in", Message.address == address, Message.text == "STOP"
            )
        ).scalar_one()
        before = (
            s.execute(
                select(Message).where(
                    Message.direction == "out",
                    Message.address == address,
                    Message.created_at < stop.created_at,
                )
            )
            .scalars()
            .all()
        )
        after = (
            s.execute(
                select(Message).where(
                    Message.direction == "out",
                    Message.address == address,
                    Message.created_at >= stop.created_at,
                )
            )
            .scalars()
            .all()
        )
        person = person_at(s, "console", address)
        assert person.opted_out
    assert len(before) >= 3  # they were getting the team's messages until then
    assert len(after) == 1 and "START" in after[0].text  # only the confirmation of STOP


def test_bad_counts_got_a_reply_and_were_not_recorded(demo: DemoRun) -> None:
    words = re.compile(r"^[a-z]+ of [a-z]+$")
    with demo.db.transaction() as s:
        inbound = (
            s.execute(select(Message).where(Message.direction == "in").order_by(Message.id))
            .scalars()
            .all()
        )
        bad = [m for m in inbound if words.match(m.text) or _over(m.text)]
        assert any(words.match(m.text) for m in bad) and any(_over(m.text) for m in bad)
        for message in bad:
            assert message.status == "processed"  # kept, as sent
            recorded = s.execute(
                select(MeasureValue).where(MeasureValue.message_id == message.id)
            ).first()
            assert recorded is None
            reply = s.execute(
                select(Message)
                .where(
                    Message.direction == "out",
                    Message.address == message.address,
                    Message.id > message.id,
                )
                .order_by(Message.id)
                .limit(1)
            ).scalar_one()
            assert reply.status == "sent" and "7/9" in reply.text  # says what was expected
            correction = next(
                m for m in inbound if m.id > message.id and m.address == message.address
            )
            assert (
                s.execute(
                    select(MeasureValue).where(MeasureValue.message_id == correction.id)
                ).first()
                is not None
            )


def _over(text: str) -> bool:
    match = re.fullmatch(r"(\d+)/(\d+)", text)
    return bool(match) and int(match.group(1)) > int(match.group(2))


def test_the_coach_reply_reached_the_team(demo: DemoRun) -> None:
    cast = next(t for t in all_teams() if t.key == "5west")
    with demo.db.transaction() as s:
        team = team_named(s, cast)
        question = s.execute(
            select(Message).where(
                Message.team_id == team.id,
                Message.direction == "in",
                Message.text == cast.notes[0].text,
            )
        ).scalar_one()
        assert question.needs_reply is False and question.replied_at is not None
        # The coach may also answer later news (a scheduled message the daily budget held).
        relayed = [
            m
            for m in s.execute(
                select(Message).where(Message.team_id == team.id, Message.kind == "coach")
            ).scalars()
            if cast.coach_replies[0] in m.text
        ]
        assert {m.address for m in relayed} >= {
            cast.contact.address,
            *(m.address for m in cast.members),
        }
        assert all(m.status == "sent" and cast.coach_replies[0] in m.text for m in relayed)
        assert all(m.created_at - question.created_at < timedelta(hours=12) for m in relayed)


def test_pdsa_cycles_were_planned_and_reported_by_chat(demo: DemoRun) -> None:
    from dash.models import PdsaCycle

    with demo.db.transaction() as s:
        ward7 = team_named(s, next(t for t in all_teams() if t.key == "ward7"))
        five_west = team_named(s, next(t for t in all_teams() if t.key == "5west"))
        cycles = {
            team.id: s.execute(
                select(PdsaCycle).where(PdsaCycle.team_id == team.id).order_by(PdsaCycle.number)
            )
            .scalars()
            .all()
            for team in (ward7, five_west)
        }
    assert [c.act for c in cycles[ward7.id]][:1] == ["abandon"]
    first, second = cycles[five_west.id][:2]
    assert (first.act, second.act) == ("adapt", "adopt")
    assert second.previous_id == first.id and second.story
    assert first.do_notes and first.study_notes


def test_the_demo_refuses_to_recreate_the_configured_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_environment(monkeypatch, tmp_path)
    real = tmp_path / "real.db"
    real.write_bytes(b"precious")
    monkeypatch.setenv("DASH_DATABASE_URL", f"sqlite:///{real}")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(demo_app(), ["demo", "--db", str(real)])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "real database" in result.output
    assert real.read_bytes() == b"precious"
