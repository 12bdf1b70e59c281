"""Shared test set-up.

Every test runs with non-loopback sockets blocked (pytest-socket, configured in
pyproject.toml), so no test can reach the internet by accident.

The database is SQLite in a temporary folder by default; set
DASH_TEST_DATABASE_URL (as .ci/run does) to run the same tests on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from dash.context import AppContext
from dash.db import Database
from dash.models import Base
from dash.settings import Settings, get_settings

pytest_plugins = ["tests.fakes"]

TEST_DATABASE_URL = os.environ.get("DASH_TEST_DATABASE_URL", "")


@pytest.fixture(scope="session", autouse=True)
def heavy_imports_first() -> None:
    """Import the engine (a second or more on a busy machine) before any test.

    Otherwise the first test to handle a message pays for the imports inside a request and
    can hit its HTTP client's timeout, so its result would depend on which tests ran before.
    """
    import dash.engine.router  # noqa: F401


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked `postgres_only(reason=...)` is skipped with that reason unless the tests
    run on PostgreSQL: the rule in one place rather than a skipif beside every mark."""
    if TEST_DATABASE_URL.startswith("postgresql"):
        return
    for item in items:
        mark = item.get_closest_marker("postgres_only")
        if mark is not None:
            item.add_marker(pytest.mark.skip(reason=mark.kwargs.get("reason", "PostgreSQL only")))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """After a module's last test (its module fixtures closed), no event loop may be left
    marked running in the main thread: every later asyncio.run() would fail with "cannot be
    called from a running event loop", far from the test that leaked it. Fail here instead."""
    result = yield
    if nextitem is not None and getattr(nextitem, "module", None) is getattr(item, "module", None):
        return result
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return result
    asyncio._set_running_loop(None)  # so the rest of the run is not blamed for this module
    pytest.fail(f"{item.module.__name__} left an event loop running in the main thread: {loop!r}")


def _reset_postgres(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """A fresh, empty database for this test."""
    if TEST_DATABASE_URL:
        db = Database(TEST_DATABASE_URL)
        _reset_postgres(db)
        db.dispose()
        return TEST_DATABASE_URL
    return f"sqlite:///{tmp_path / 'dash.db'}"


@pytest.fixture
def settings(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Settings]:
    """Settings for a test, set through the environment exactly as a deployment would."""
    for key in list(os.environ):
        if key.startswith("DASH_") and key != "DASH_TEST_DATABASE_URL":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env or dash.db from the developer's folder
    monkeypatch.setenv("DASH_DATABASE_URL", database_url)
    monkeypatch.setenv("DASH_SECRET_KEY", "test-secret-key-not-for-production")
    monkeypatch.setenv("DASH_REPORT_DIR", str(tmp_path / "reports"))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    """The test database with every table created from the models."""
    database = Database(settings.database_url)
    Base.metadata.create_all(database.engine)
    yield database
    database.dispose()


@pytest.fixture
def ctx(settings: Settings, db: Database) -> AppContext:
    return AppContext.from_settings(settings, db)
