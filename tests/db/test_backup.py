"""`dash backup` and `dash restore`: a consistent copy while the server writes, and back again.

The SQLite tests use their own database file even when the suite runs on PostgreSQL;
the PostgreSQL round trip runs when DASH_TEST_DATABASE_URL is set and pg_dump is installed.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from dash.context import AppContext
from dash.db import Database
from dash.models import Base, MeasureValue, Message, Team
from dash.settings import get_settings
from tests.conftest import TEST_DATABASE_URL
from tests.support.engine import KC, Chat, enrol, make_cohort


def dash_cli(*args: str):
    """Run `dash ARGS` on the real command line."""
    from dash.app.cli.main import app

    return CliRunner().invoke(app, list(args))


def use_database(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("DASH_DATABASE_URL", url)
    get_settings.cache_clear()


def stamp_head(db: Database) -> None:
    from alembic import command

    from dash import migrate

    cfg = migrate.alembic_config(db)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.stamp(cfg, "head")


def new_database(url: str) -> Database:
    """A Dash database: tables from the models, marked as the newest migration."""
    database = Database(url)
    Base.metadata.create_all(database.engine)
    stamp_head(database)
    return database


@pytest.fixture
def sqlite_url(settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'live' / 'dash.db'}"
    (tmp_path / "live").mkdir()
    use_database(monkeypatch, url)
    yield url
    get_settings.cache_clear()


@pytest.fixture
def populated(sqlite_url: str) -> Iterator[AppContext]:
    """A SQLite Dash with one enrolled team that has reported data, through the engine."""
    database = new_database(sqlite_url)
    ctx = AppContext.from_settings(get_settings(), database)
    chat = Chat(ctx)
    enrol(chat, make_cohort(ctx))
    assert "Recorded" in chat.say(KC, "6/9")
    yield ctx
    database.dispose()


def counts(url_or_path: str | Path) -> dict[str, int]:
    url = str(url_or_path) if str(url_or_path).startswith("sqlite") else f"sqlite:///{url_or_path}"
    database = Database(url)
    try:
        with database.transaction() as s:
            return {
                "teams": s.execute(select(func.count(Team.id))).scalar_one(),
                "values": s.execute(select(func.count(MeasureValue.id))).scalar_one(),
                "messages": s.execute(select(func.count(Message.id))).scalar_one(),
            }
    finally:
        database.dispose()


class Writer(threading.Thread):
    """Keeps committing inbound messages, as a busy server does, until stopped."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.database = Database(url)
        self.stop = threading.Event()
        self.first = threading.Event()
        self.commits = 0
        self.progress = threading.Condition()

    def wait_for(self, commits: int) -> bool:
        with self.progress:
            return self.progress.wait_for(lambda: self.commits >= commits, timeout=30)

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                with self.database.transaction() as s:
                    for _ in range(20):
                        s.add(
                            Message(
                                direction="in",
                                channel="console",
                                address=KC,
                                text="8/9",
                                status="processed",
                            )
                        )
                with self.progress:
                    self.commits += 1
                    self.progress.notify_all()
                self.first.set()
        finally:
            self.database.dispose()


def test_backup_while_writing_then_restore_brings_the_data_back(
    populated: AppContext, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = Writer(sqlite_url)
    writer.start()
    try:
        assert writer.first.wait(10)
        result = dash_cli("backup", "--out", str(tmp_path / "backups") + "/")
        assert writer.wait_for(writer.commits + 3)  # still writing after the backup
    finally:
        writer.stop.set()
        writer.join(10)
    assert result.exit_code == 0, result.output
    backup = Path(result.output.strip().splitlines()[-1])
    assert backup.parent == tmp_path / "backups" and backup.name.startswith("dash-")
    assert not list(backup.parent.glob("*.partial"))

    conn = sqlite3.connect(backup)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 1
        # Whole transactions only: the writer commits messages in twenties.
        written = conn.execute("SELECT count(*) FROM messages WHERE text = '8/9'").fetchone()[0]
    finally:
        conn.close()
    assert written % 20 == 0 and written > 0
    assert counts(sqlite_url)["messages"] > counts(backup)["messages"]  # a snapshot, not a tail
    saved = counts(backup)
    assert saved["teams"] == 1 and saved["values"] == 1

    # Restore into a fresh place: everything that was backed up is there.
    fresh = tmp_path / "fresh" / "dash.db"
    use_database(monkeypatch, f"sqlite:///{fresh}")
    restored = dash_cli("restore", str(backup))
    assert restored.exit_code == 0, restored.output
    assert restored.output.strip().splitlines()[-1] == str(fresh)
    assert counts(fresh) == saved


def test_restore_replaces_only_with_yes_and_keeps_the_previous_database(
    populated: AppContext, sqlite_url: str, tmp_path: Path
) -> None:
    backed = dash_cli("backup")
    assert backed.exit_code == 0, backed.output
    backup = Path(backed.output.strip().splitlines()[-1])
    assert backup.parent == Path(populated.db.engine.url.database).parent / "backups"
    before = counts(sqlite_url)

    chat = Chat(populated)
    chat.say(KC, "7/9")  # a change after the backup, which the restore rolls back
    after = counts(sqlite_url)
    assert after["messages"] > before["messages"]
    populated.db.dispose()  # this process lets go, as a stopped server would

    refused = dash_cli("restore", str(backup))
    assert refused.exit_code == 1
    assert "--yes" in refused.output and "Traceback" not in refused.output
    assert counts(sqlite_url) == after

    replaced = dash_cli("restore", str(backup), "--yes")
    assert replaced.exit_code == 0, replaced.output
    assert counts(sqlite_url) == before
    kept = [line for line in replaced.output.splitlines() if "previous database is kept" in line]
    previous = Path(kept[0].rsplit(" ", 1)[-1])
    assert counts(previous) == after


def test_restore_refuses_while_another_process_has_the_database_open(
    populated: AppContext, sqlite_url: str
) -> None:
    backup = Path(dash_cli("backup").output.strip().splitlines()[-1])
    live = Path(populated.db.engine.url.database)
    populated.db.dispose()
    server = subprocess.Popen(  # stands in for `dash serve` holding its connections
        [
            sys.executable,
            "-c",
            "import sqlite3, sys\n"
            f"c = sqlite3.connect({str(live)!r})\n"
            "c.execute('PRAGMA journal_mode = WAL')\n"
            "c.execute('SELECT count(*) FROM teams').fetchone()\n"
            "print('ready', flush=True)\n"
            "sys.stdin.readline()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout.readline().strip() == "ready"
        busy = dash_cli("restore", str(backup), "--yes")
        assert busy.exit_code == 1
        assert "in use by another process" in busy.output
    finally:
        server.communicate("\n", timeout=10)
    assert dash_cli("restore", str(backup), "--yes").exit_code == 0


def test_restore_refuses_what_is_not_a_dash_database(sqlite_url: str, tmp_path: Path) -> None:
    text_file = tmp_path / "notes.db"
    text_file.write_text("not a database at all, just some notes\n" * 10)
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE things (x)")
    conn.commit()
    conn.close()
    future = tmp_path / "future.db"
    stamped = new_database(f"sqlite:///{future}")
    with stamped.engine.begin() as c:
        c.exec_driver_sql("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    stamped.dispose()

    for path, message in [
        (text_file, "is not a SQLite database"),
        (other, "is not a Dash database"),
        (future, "does not know"),
        (tmp_path / "missing.db", "is not a file"),
    ]:
        result = dash_cli("restore", str(path), "--yes")
        assert result.exit_code == 1, (path, result.output)
        assert message in result.output
        assert "Traceback" not in result.output
    assert not Path(get_settings().database_url.removeprefix("sqlite:///")).exists()


def test_backup_will_not_overwrite_a_file(populated: AppContext, tmp_path: Path) -> None:
    taken = tmp_path / "taken.db"
    taken.write_bytes(b"precious")
    result = dash_cli("backup", "--out", str(taken))
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert taken.read_bytes() == b"precious"


def test_postgres_commands_carry_no_password(settings, monkeypatch: pytest.MonkeyPatch) -> None:
    use_database(
        monkeypatch, "postgresql+psycopg://dash:s3cret-pw@db.example:5433/dash?sslmode=require"
    )
    dump = dash_cli("backup", "--print-command", "--out", "/srv/backups/dash.dump")
    assert dump.exit_code == 0, dump.output
    assert "s3cret-pw" not in dump.output
    assert "pg_dump --format=custom" in dump.output
    assert "--file=/srv/backups/dash.dump" in dump.output
    assert "--dbname=postgresql://dash@db.example:5433/dash?sslmode=require" in dump.output

    restore = dash_cli("restore", "/srv/backups/dash.dump")
    assert restore.exit_code == 0, restore.output
    assert "s3cret-pw" not in restore.output
    assert "pg_restore --clean --if-exists" in restore.output
    assert "/srv/backups/dash.dump" in restore.output


@pytest.mark.skipif(
    not TEST_DATABASE_URL or shutil.which("pg_dump") is None,
    reason="needs DASH_TEST_DATABASE_URL (PostgreSQL) and pg_dump",
)
def test_postgres_backup_and_printed_restore_round_trip(ctx: AppContext, tmp_path: Path) -> None:
    stamp_head(ctx.db)
    chat = Chat(ctx)
    enrol(chat, make_cohort(ctx))
    assert "Recorded" in chat.say(KC, "6/9")
    before = _pg_counts(ctx)

    result = dash_cli("backup", "--out", str(tmp_path) + "/")
    assert result.exit_code == 0, result.output
    dump = Path(result.output.strip().splitlines()[-1])
    assert dump.read_bytes()[:5] == b"PGDMP"

    with ctx.db.transaction() as s:
        s.execute(MeasureValue.__table__.delete())
    assert _pg_counts(ctx)["values"] == 0
    ctx.db.dispose()

    printed = dash_cli("restore", str(dump))
    command = next(line for line in printed.output.splitlines() if line.startswith("pg_restore"))
    from sqlalchemy.engine import make_url

    env = dict(os.environ, PGPASSWORD=str(make_url(TEST_DATABASE_URL).password or ""))
    done = subprocess.run(command, shell=True, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert _pg_counts(ctx) == before


def _pg_counts(ctx: AppContext) -> dict[str, int]:
    with ctx.db.transaction() as s:
        return {
            "teams": s.execute(select(func.count(Team.id))).scalar_one(),
            "values": s.execute(select(func.count(MeasureValue.id))).scalar_one(),
        }
