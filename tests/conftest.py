"""Shared test set-up.

Every test runs with non-loopback sockets blocked (pytest-socket, configured in
pyproject.toml), so no test can reach the internet by accident.

The database is SQLite in a temporary folder by default; set
DASH_TEST_DATABASE_URL (as .ci/run does) to run the same tests on PostgreSQL.

The tests run in parallel (pytest-xdist, `-n auto` in pyproject.toml). Each worker has a
PostgreSQL database of its own, named after DASH_TEST_DATABASE_URL's with the worker's id
(dash_test_gw0, ...) and created on first use; `-n 0` runs everything in one process on
DASH_TEST_DATABASE_URL's database itself.

The whole suite runs on one injected clock (`suite_clock`), so no test's "today" depends on
the date it runs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, create_mock_engine, make_url, text

from dash.context import AppContext
from dash.db import Database, sqlite_file
from dash.models import Base
from dash.settings import Settings, get_settings
from dash.timeutil import use_clock
from tests.support.clock import SUITE_START, RunningClock

pytest_plugins = ["tests.fakes"]


def worker_database_url(base: str, worker: str) -> str:
    """The PostgreSQL database of one xdist worker: the base's name with the worker's id
    (gw0, gw1, ...) appended, so parallel workers never reset each other's tables."""
    if not base.startswith("postgresql") or not worker:
        return base
    url = make_url(base)
    return url.set(database=f"{url.database}_{worker}").render_as_string(hide_password=False)


#: This process's test database on PostgreSQL ("" on SQLite).
TEST_DATABASE_URL = worker_database_url(
    os.environ.get("DASH_TEST_DATABASE_URL", ""), os.environ.get("PYTEST_XDIST_WORKER", "")
)


@pytest.fixture(scope="session", autouse=True)
def suite_clock() -> Iterator[RunningClock]:
    """utcnow() for the whole run: SUITE_START, moving on at real pace from the first test.

    One clock for the session, not one per test, so time never runs backwards between tests
    (state a test leaves, such as a login throttle's window, ages as it would in real use). A
    test that needs another instant nests its own use_clock; the `dash` processes tests start
    read the same clock (tests.support.processes)."""
    clock = RunningClock(SUITE_START)
    with use_clock(clock):
        yield clock


@pytest.fixture(scope="session", autouse=True)
def heavy_imports_first() -> None:
    """Import the engine (a second or more on a busy machine) before any test.

    Otherwise the first test to handle a message pays for the imports inside a request and
    can hit its HTTP client's timeout, so its result would depend on which tests ran before.
    """
    import dash.engine.router  # noqa: F401


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto` (pyproject.toml): a worker per CPU, or none when the run names a single test
    file, where starting the workers (each imports the whole app) costs more than it saves."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own hook reads it
    files = {str(arg).split("::", 1)[0] for arg in config.args}
    if len(files) == 1 and Path(next(iter(files))).is_file():
        return 0
    return len(os.sched_getaffinity(0))


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


@pytest.fixture(autouse=True)
def no_log_handler_on_a_closed_stream() -> Iterator[None]:
    """A command run in-process (typer's CliRunner) logs through a root handler on the
    runner's stderr, closed when the command returns. Left in place, every later log record
    prints "--- Logging error ---" into whatever stderr a later test captures, so a test's
    output would depend on which tests ran before it in the same process."""
    yield
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.StreamHandler) and getattr(handler.stream, "closed", False):
            root.removeHandler(handler)


def _reset_postgres(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))


@pytest.fixture(scope="session")
def postgres_database() -> str:
    """This worker's PostgreSQL database, created from DASH_TEST_DATABASE_URL's if missing."""
    base = os.environ.get("DASH_TEST_DATABASE_URL", "")
    if base != TEST_DATABASE_URL:
        name = make_url(TEST_DATABASE_URL).database
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            found = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
            if found is None:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    return TEST_DATABASE_URL


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database for this test."""
    if TEST_DATABASE_URL:
        url: str = request.getfixturevalue("postgres_database")
        db = Database(url)
        _reset_postgres(db)
        db.dispose()
        return url
    return f"sqlite:///{tmp_path / 'dash.db'}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file with every table created from the models, made once per worker: a
    test's `db` is a copy of it, much cheaper than a create_all of its own."""
    path = tmp_path_factory.mktemp("template") / "dash.db"
    database = Database(f"sqlite:///{path}")
    Base.metadata.create_all(database.engine)
    database.dispose()  # the last connection out checkpoints the WAL into the file
    assert not Path(f"{path}-wal").exists()
    return path


@pytest.fixture(scope="session")
def create_tables_sql() -> str:
    """What create_all sends to an empty PostgreSQL schema, compiled once and sent in one
    round trip per test instead of a has_table query and a statement per table."""
    statements: list[str] = []

    def collect(sql: object, *_: object, **__: object) -> None:
        statements.append(str(sql.compile(dialect=engine.dialect)).strip())  # type: ignore[attr-defined]

    engine = create_mock_engine(make_url(TEST_DATABASE_URL), collect)
    Base.metadata.create_all(engine, checkfirst=False)
    return ";\n".join(statements)


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


def _empty_postgres_schema(database: Database) -> bool:
    """True for a PostgreSQL database whose public schema holds nothing yet."""
    if database.is_sqlite:
        return False
    with database.engine.connect() as conn:
        return not conn.exec_driver_sql(
            "SELECT EXISTS (SELECT FROM pg_class WHERE relnamespace = 'public'::regnamespace)"
            " OR EXISTS (SELECT FROM pg_type WHERE typnamespace = 'public'::regnamespace)"
        ).scalar()


@pytest.fixture
def db(settings: Settings, request: pytest.FixtureRequest) -> Iterator[Database]:
    """The test database with every table created from the models."""
    path = sqlite_file(settings.database_url)
    if path is not None and not path.exists():
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        database = Database(settings.database_url)
    else:
        database = Database(settings.database_url)
        if settings.database_url == TEST_DATABASE_URL and _empty_postgres_schema(database):
            with database.engine.begin() as conn:
                conn.exec_driver_sql(request.getfixturevalue("create_tables_sql"))
        else:  # a fixture before this one made tables already (`dash init`, say)
            Base.metadata.create_all(database.engine)
    yield database
    database.dispose()


@pytest.fixture
def ctx(settings: Settings, db: Database) -> AppContext:
    return AppContext.from_settings(settings, db)
