"""Engine, sessions and transactions for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import fcntl
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event, make_url, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dash.settings import Settings


def sqlite_file(url: str) -> Path | None:
    """The file of an on-disk SQLite URL; None for PostgreSQL and in-memory databases."""
    if not url.startswith("sqlite"):
        return None
    database = make_url(url).database
    if not database or database == ":memory:" or "mode=memory" in url:
        return None
    return Path(database).absolute()


def sqlite_read_only(path: Path) -> bool:
    """True when this user can read an existing database file but not write it: writing needs
    the file and its folder (for the -wal, -shm and journal files)."""
    return path.exists() and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))


def _read_only_connector(path: Path) -> Callable[[], sqlite3.Connection]:
    """Connections that open `path` read-only (`mode=ro`), so export and report still work."""

    def connect() -> sqlite3.Connection:
        uri = f"file:{quote(str(path))}?mode=ro"
        if not os.access(path.parent, os.W_OK) and not Path(f"{path}-wal").exists():
            # A WAL database is only readable with -shm and -wal beside it; in a folder where
            # they cannot be created, and with no writer's WAL to miss, read the file as it is.
            uri += "&immutable=1"
        return sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)

    return connect


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine tuned for our use: WAL and foreign keys on SQLite, pre-ping on PostgreSQL.

    A SQLite file this user cannot write is opened read-only, without WAL (setting it writes).
    """
    if url.startswith("sqlite"):
        path = sqlite_file(url)
        read_only = path is not None and sqlite_read_only(path)
        if read_only:
            assert path is not None
            kwargs.setdefault("creator", _read_only_connector(path))
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Python's sqlite3 opens transactions lazily; take control so BEGIN IMMEDIATE works.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys = ON")
            cur.execute("PRAGMA busy_timeout = 30000")
            if path is not None and not read_only:
                cur.execute("PRAGMA journal_mode = WAL")
                cur.execute("PRAGMA synchronous = NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # One writer at a time on SQLite: take the write lock at the start so two
            # ticks or workers never interleave a read-then-write. (Read-only: no lock to take.)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


class SqliteWriteLock:
    """One writer at a time on an SQLite file: threads queue on an RLock, processes on an flock
    of `<database>.write.lock`.

    SQLite itself makes a second writer wait in its busy handler, which sleeps in steps of up
    to 100 ms: under a burst of webhooks that turned 10 ms of work into seconds of p99, and two
    `dash serve` workers slower than one. A blocked flock wakes as soon as the holder lets go.
    """

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._thread_lock = threading.RLock()
        self._depth = 0  # nested transactions of the holding thread
        self._fd: int | None = None
        self._pid = 0

    def _file(self) -> int | None:
        if self.path is None:
            return None
        if self._fd is None or self._pid != os.getpid():  # a forked child opens its own
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                return None  # no folder (yet): SQLite itself reports the database unreachable
            self._pid = os.getpid()
        return self._fd

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._thread_lock:
            fd = self._file() if self._depth == 0 else None
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)


class Database:
    """One engine and its session factory; passed around instead of globals."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Every transaction here takes SQLite's write lock at BEGIN: queue for it up front.
        self._sqlite_writer: SqliteWriteLock | None = None
        path = sqlite_file(url)
        #: An existing SQLite file this user may read but not write (opened with mode=ro).
        self.read_only = path is not None and sqlite_read_only(path)
        if self.is_sqlite:
            database = self.engine.url.database
            on_disk = path is not None and not self.read_only
            self._sqlite_writer = SqliteWriteLock(f"{database}.write.lock" if on_disk else None)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits at the end of the block, or rolls back on error."""
        if self._sqlite_writer is None:
            with self.sessions() as session, session.begin():
                yield session
            return
        with self._sqlite_writer.held(), self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def single_statement(self) -> Iterator[Connection]:
        """A connection for one statement that is its own transaction: on PostgreSQL in
        autocommit, without the BEGIN and COMMIT round trips (an inbound message's store);
        on SQLite a transaction under the write lock, as `transaction()` but without a
        session."""
        if self._sqlite_writer is not None:
            with self._sqlite_writer.held(), self.engine.begin() as conn:
                yield conn
            return
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()


def database_from(settings: Settings) -> Database:
    return Database(settings.database_url)


def secret_key(db: Database, settings: Settings) -> str:
    """The configured secret, or the one generated on first run and kept in the database.

    Kept in the database (not a file) so every process of a deployment agrees.
    """
    if settings.secret_key:
        return settings.secret_key
    from dash.models import InstanceValue

    with db.transaction() as s:
        row = s.get(InstanceValue, "secret_key")
        if row is not None:
            return row.value
    try:
        with db.transaction() as s:
            s.add(InstanceValue(key="secret_key", value=secrets.token_urlsafe(48)))
    except IntegrityError:
        pass  # another process won the race; read theirs
    with db.transaction() as s:
        return s.execute(
            select(InstanceValue.value).where(InstanceValue.key == "secret_key")
        ).scalar_one()
