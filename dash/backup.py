"""Backups and restores: SQLite by its online backup API, PostgreSQL by pg_dump/pg_restore.

SQLite: `backup_sqlite` copies through SQLite's own backup API, so the copy is one
consistent snapshot even while `dash serve` keeps writing (WAL readers do not block
writers). It writes to a temporary name and renames, so a file with the final name
is always complete. `restore_sqlite` checks the file is a Dash database (the Alembic
version table, a revision our migrations know, SQLite's quick_check), refuses while
another process has the database open, keeps the current database beside it, and
copies in through the same API so SQLite's locks and WAL stay coherent.

PostgreSQL: `pg_dump_command` builds the command line from DASH_DATABASE_URL without
the password (it goes to pg_dump in PGPASSWORD, never on a command line or screen).
`dash backup` runs it when pg_dump is installed; restoring a production PostgreSQL
database is left to a person running the printed pg_restore command on purpose.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, make_url

from dash.errors import UserError
from dash.timeutil import utcnow

SQLITE_HEADER = b"SQLite format 3\x00"
# The unix VFS holds a shared lock on this byte of the -shm file for as long as a
# connection has a WAL database open (the "dead man switch", WALINDEX_LOCK_OFFSET + 8).
_SHM_DMS_BYTE = 128


def _stamp(now: datetime | None = None) -> str:
    return (now or utcnow()).strftime("%Y%m%d-%H%M%S")


def timestamped_name(suffix: str, now: datetime | None = None) -> str:
    """dash-YYYYmmdd-HHMMSS<suffix>, in UTC, so backups sort by name."""
    return f"dash-{_stamp(now)}{suffix}"


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=30)


def sqlite_path(database_url: str) -> Path:
    """The file behind a SQLite URL; UserError for an in-memory database."""
    url = make_url(database_url)
    if not url.get_backend_name() == "sqlite":
        raise UserError(f"{url.render_as_string(hide_password=True)} is not a SQLite database")
    if not url.database or url.database == ":memory:":
        raise UserError("an in-memory SQLite database cannot be backed up or restored")
    return Path(url.database).expanduser().resolve()


def output_path(out: str | None, default_dir: Path, suffix: str) -> Path:
    """Where a backup goes: a timestamped file in `out` (or `default_dir`) when that is a
    folder, else exactly `out`. Never an existing file."""
    if out is None:
        target = default_dir / timestamped_name(suffix)
    else:
        given = Path(out).expanduser()
        is_dir = given.is_dir() or out.endswith(("/", os.sep))
        target = given / timestamped_name(suffix) if is_dir else given
    target = target.resolve()
    if target.exists():
        raise UserError(f"{target} already exists: choose another --out")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def backup_sqlite(database_url: str, out: str | None = None) -> Path:
    """Copy the SQLite database to a timestamped file (in ./backups beside it by default)."""
    source = sqlite_path(database_url)
    if not source.exists():
        raise UserError(f"there is no database at {source}: run `dash init` first")
    target = output_path(out, source.parent / "backups", ".db")
    partial = target.with_name(target.name + ".partial")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    src = _read_only(source)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # one step: a consistent snapshot of the committed data
            dst.execute("PRAGMA journal_mode = DELETE")  # a single self-contained file
        finally:
            dst.close()
    finally:
        src.close()
    revision_of(partial)  # never leave a final-named backup that would not restore
    partial.replace(target)
    return target


@dataclass(frozen=True)
class RestoreResult:
    restored_from: Path
    database: Path
    revision: str
    previous_copy: Path | None  # the database that was there before, kept aside
    needs_upgrade: bool  # the backup predates the newest migration: run `dash init`


def known_revisions() -> set[str]:
    from dash.migrate import MIGRATIONS

    scripts = ScriptDirectory(str(MIGRATIONS))
    return {rev.revision for rev in scripts.walk_revisions()}


def head_revision() -> str:
    from dash.migrate import MIGRATIONS

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None
    return head


def revision_of(path: Path) -> str:
    """The migration revision of a Dash SQLite file; UserError when it is not one."""
    if not path.is_file():
        raise UserError(f"{path} is not a file")
    with path.open("rb") as fh:
        if fh.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise UserError(f"{path} is not a SQLite database")
    conn = _read_only(path)
    try:
        check = conn.execute("PRAGMA quick_check").fetchone()
        if not check or check[0] != "ok":
            raise UserError(f"{path} is damaged (quick_check: {check[0] if check else '?'})")
        has_table = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        ).fetchone()
        row = (
            conn.execute("SELECT version_num FROM alembic_version").fetchone()
            if has_table
            else None
        )
    except sqlite3.DatabaseError as exc:
        raise UserError(f"{path} cannot be read as a SQLite database: {exc}") from exc
    finally:
        conn.close()
    if row is None:
        raise UserError(f"{path} is not a Dash database (no migration version recorded)")
    revision = str(row[0])
    if revision not in known_revisions():
        raise UserError(
            f"{path} is at migration {revision}, which this version of Dash does not know: "
            "restore it with the version that made it"
        )
    return revision


def in_use_by_another_process(database: Path) -> bool:
    """True while another process has the WAL database open (e.g. `dash serve`).

    Tries for a write lock on the byte every open WAL connection holds a read lock on.
    Call it before this process opens the database: closing the probe drops this
    process's own POSIX locks on the -shm file.
    """
    shm = Path(f"{database}-shm")
    if not shm.exists():
        return False
    fd = os.open(shm, os.O_RDWR)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _SHM_DMS_BYTE)
        except OSError:
            return True
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, _SHM_DMS_BYTE)
        return False
    finally:
        os.close(fd)


def restore_sqlite(backup: str | Path, database_url: str, *, replace: bool) -> RestoreResult:
    """Replace the configured SQLite database with `backup` (see the module docstring)."""
    source = Path(backup).expanduser().resolve()
    revision = revision_of(source)
    target = sqlite_path(database_url)
    if source == target:
        raise UserError(f"{source} is the configured database itself")
    previous: Path | None = None
    if target.exists():
        if not replace:
            raise UserError(f"{target} exists: pass --yes to replace it with {source}")
        if in_use_by_another_process(target):
            raise UserError(f"{target} is in use by another process: stop `dash serve` first")
        previous = target.with_name(f"{target.name}.before-restore-{_stamp()}")
        current = sqlite3.connect(target, timeout=30)
        try:
            keep = sqlite3.connect(previous)
            try:
                current.backup(keep)
            finally:
                keep.close()
        finally:
            current.close()
    target.parent.mkdir(parents=True, exist_ok=True)
    src = _read_only(source)
    try:
        dst = sqlite3.connect(target, timeout=30)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
    return RestoreResult(source, target, revision, previous, revision != head_revision())


def _libpq_uri(url: URL) -> str:
    """The URL as libpq reads it (no SQLAlchemy driver, no password)."""
    plain = url._replace(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False)


def pg_dump_command(database_url: str, out: Path) -> list[str]:
    """pg_dump's arguments for a custom-format dump of the configured database."""
    url = make_url(database_url)
    return [
        "pg_dump",
        "--format=custom",
        "--no-owner",
        f"--file={out}",
        f"--dbname={_libpq_uri(url)}",
    ]


def pg_restore_command(database_url: str, dump: str | Path) -> list[str]:
    """pg_restore's arguments to load a dump into the configured (emptied) database."""
    url = make_url(database_url)
    return [
        "pg_restore",
        "--clean",
        "--if-exists",
        "--no-owner",
        "--single-transaction",
        f"--dbname={_libpq_uri(url)}",
        str(dump),
    ]


def backup_postgres(database_url: str, out: str | None = None) -> Path:
    """Run pg_dump into a timestamped file (./backups by default) and return its path."""
    if shutil.which("pg_dump") is None:
        raise UserError(
            "pg_dump is not installed (Debian: apt install postgresql-client); "
            "`dash backup --print-command` shows the command to run elsewhere"
        )
    target = output_path(out, Path.cwd() / "backups", ".dump")
    partial = target.with_name(target.name + ".partial")
    env = dict(os.environ)
    password = make_url(database_url).password
    if password:
        env["PGPASSWORD"] = str(password)
    done = subprocess.run(  # noqa: S603 - fixed program, arguments built from settings
        pg_dump_command(database_url, partial), env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        from dash.dbproblems import redact

        detail = [line.strip() for line in (done.stderr or "").splitlines() if line.strip()]
        shown = redact(detail[0], database_url) if detail else done.returncode
        raise UserError(f"pg_dump failed: {shown}")
    partial.replace(target)
    return target
