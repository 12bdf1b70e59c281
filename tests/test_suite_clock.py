"""The suite's clock (tests/conftest.py, tests.support.clock): the tests and the `dash`
processes they start agree on what day it is, whatever day the suite runs."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

from dash.db import Database
from dash.timeutil import utcnow
from tests.support.clock import SUITE_START
from tests.support.processes import dash_command, dash_env, prepare_database


def test_the_suite_starts_on_its_fixed_instant() -> None:
    # Running on from SUITE_START at real pace: well within a day of it for any run.
    assert SUITE_START <= utcnow() < SUITE_START + timedelta(hours=6)


def test_a_dash_process_a_test_starts_reads_the_suites_day(tmp_path: Path) -> None:
    week_ago = utcnow().date() - timedelta(days=7)
    url = f"sqlite:///{tmp_path / 'dash.db'}"
    db = Database(url)
    prepare_database(db)
    db.dispose()
    env = dash_env(
        database_url=url,
        secret_key="test-secret-key-not-for-production",
    )
    env["MPLCONFIGDIR"] = str(tmp_path / "mpl")
    result = subprocess.run(
        dash_command(
            "cohort", "create", "--topic", "vte", "--start", week_ago.isoformat(),
            "--timezone", "UTC", "--force",  # TESTS_SUITE_START may make it no session day
        ),
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    # On the wall clock the process would count the days from the real date instead.
    assert f"--start {week_ago.isoformat()} is 7 day(s) ago" in result.stdout + result.stderr
