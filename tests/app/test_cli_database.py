"""The command line when the database cannot be used: one line, exit 1, never the password.

Every command runs as a real process, as systemd runs it (`dash init` at boot writes into
the journal). The read-only case needs a user that file permissions apply to: when the tests
run as root (who may write a 0444 file), the commands run as `nobody` through setpriv.
"""

from __future__ import annotations

import csv
import io
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from dash import migrate
from dash.actions.cohorts import create_cohort
from dash.db import Database
from dash.exports import COLUMNS
from tests.support.processes import dash_command, dash_env

PASSWORD = "SuperSecretPw"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def commands(out: Path) -> dict[str, list[str]]:
    """The commands of issue 15 that printed a traceback, each with arguments that work on a
    usable database."""
    return {
        "export": ["export", "--cohort", "1", "--what", "measures"],
        "report": ["report", "--cohort", "1", "--out", str(out)],
        "dispatch": ["dispatch", "--now", "2026-12-07T09:00:00Z", "--no-send"],
        "cohort create": [
            "cohort", "create", "--topic", "vte", "--start", "2026-12-07", "--timezone", "UTC",
            "--force",  # the start is fixed; --force keeps its date check out of every run
        ],
        "coach add": ["coach", "add", "--email", "c@example.org", "--name", "C"],
        "purge": ["purge", "--cohort", "1", "--before", "2026-12-01", "--yes"],
        "serve": ["serve", "--port", str(_free_port())],
        "worker": ["worker"],
    }


def run_dash(
    args: list[str], url: str, cwd: Path, prefix: list[str] | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    env = dash_env(database_url=url, secret_key="test-secret-key-not-for-production", **extra)
    env["MPLCONFIGDIR"] = str(cwd / "mpl")  # matplotlib's cache where this user may write
    return subprocess.run(
        [*(prefix or []), *dash_command(*args)],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,  # serve or worker that do not stop here would run until killed
    )


def the_error(result: subprocess.CompletedProcess[str]) -> str:
    """The one error line of a failed command (JSON log lines aside); fails on a traceback."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == 1, output
    lines = [line for line in result.stderr.splitlines() if line.strip() and line[0] != "{"]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    return lines[0]


@pytest.mark.parametrize("name", list(commands(Path("."))))
def test_a_missing_database_folder_is_one_line_and_exit_1(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "no-such-folder"
    result = run_dash(commands(tmp_path)[name], f"sqlite:///{folder / 'dash.db'}", tmp_path)
    line = the_error(result)
    assert f"{folder} does not exist" in line and "dash init" in line


@pytest.mark.parametrize(
    ("name", "password", "spellings"),
    [
        *[(name, PASSWORD, [PASSWORD]) for name in ("init", "export", "dispatch", "serve", "worker")],
        # percent-encoded in the URL: neither spelling may show
        ("init", "Sup%3Aer%40Pw", ["Sup:er@Pw", "Sup%3Aer%40Pw", "Sup%3Aer@Pw"]),
    ],
)
def test_an_unreachable_postgresql_never_shows_its_password(
    tmp_path: Path, name: str, password: str, spellings: list[str]
) -> None:
    # Port 1 on the loopback refuses at once: the same failure as a wrong host or port.
    url = f"postgresql+psycopg://dash:{password}@127.0.0.1:1/dash"
    args = ["init"] if name == "init" else commands(tmp_path)[name]
    result = run_dash(args, url, tmp_path)
    line = the_error(result)
    for spelling in spellings:
        assert spelling not in result.stdout + result.stderr
    assert "postgresql+psycopg://dash:***@127.0.0.1:1/dash" in line
    assert "Connection refused" in line


def _unprivileged() -> list[str]:
    """The prefix that runs a command as a user whom file permissions bind (root is not)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: root may write a read-only file")
    nobody = pwd.getpwnam("nobody")
    prefix = [setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
    check = subprocess.run(
        [*prefix, sys.executable, "-c", "import dash.app.cli.main"],
        cwd="/", env=dash_env(), capture_output=True, timeout=60,
    )
    if check.returncode != 0:
        pytest.skip(f"nobody cannot run this Python and project: {check.stderr[-200:]!r}")
    return prefix


@pytest.fixture
def read_only_database() -> Iterator[tuple[str, Path]]:
    """An initialised database with one cohort: the file 0444 in a 0555 folder, in a tree
    the unprivileged user can reach (pytest's tmp_path is private to root)."""
    top = Path(tempfile.mkdtemp(prefix="dash-readonly-"))
    try:
        top.chmod(0o755)
        folder = top / "db"
        folder.mkdir()
        url = f"sqlite:///{folder / 'dash.db'}"
        db = Database(url)
        migrate.upgrade(db)
        with db.transaction() as s:
            create_cohort(s, topic="vte", start=date(2026, 12, 7), timezone="UTC")
        db.dispose()
        (folder / "dash.db").chmod(0o444)
        folder.chmod(0o555)
        work = top / "work"  # the command's own folder: reports and matplotlib's cache
        work.mkdir(mode=0o777)
        work.chmod(0o777)
        yield url, work
    finally:
        for path in (top, top / "db"):
            if path.exists():
                path.chmod(stat.S_IRWXU)
        shutil.rmtree(top, ignore_errors=True)


@pytest.mark.parametrize(
    "name", ["dispatch", "cohort create", "coach add", "purge", "serve", "worker"]
)
def test_a_read_only_database_stops_commands_that_write(read_only_database, name) -> None:
    url, work = read_only_database
    result = run_dash(commands(work)[name], url, work, _unprivileged())
    line = the_error(result)
    path = url.removeprefix("sqlite:///")
    assert f"the database {path} is read-only" in line and "check permissions" in line


def test_a_read_only_database_can_still_be_exported_and_reported(read_only_database) -> None:
    url, work = read_only_database
    prefix = _unprivileged()
    exported = run_dash(commands(work)["export"], url, work, prefix)
    assert exported.returncode == 0, exported.stderr
    assert list(csv.reader(io.StringIO(exported.stdout))) == [COLUMNS["measures"]]
    reported = run_dash(commands(work)["report"], url, work, prefix)
    assert reported.returncode == 0, reported.stderr
    written = Path(reported.stdout.strip().splitlines()[-1])
    assert written.parent == work and "cohort" in written.read_text(encoding="utf-8").lower()
