"""Engine, sessions and transactions for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dash.settings import Settings


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine tuned for our use: WAL and foreign keys on SQLite, pre-ping on PostgreSQL."""
    if url.startswith("sqlite"):
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
            if ":memory:" not in url and url not in ("sqlite://", "sqlite:///"):
                cur.execute("PRAGMA journal_mode = WAL")
                cur.execute("PRAGMA synchronous = NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # One writer at a time on SQLite: take the write lock at the start so two
            # ticks or workers never interleave a read-then-write.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


class Database:
    """One engine and its session factory; passed around instead of globals."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer, and every transaction here takes the write lock at BEGIN.
        # Threads of one process queue on this lock instead of in SQLite's busy handler,
        # which sleeps in steps of up to 100 ms: under a burst of webhooks that turned 10 ms
        # of work into seconds of p99 latency. Other processes still meet the busy timeout.
        self._sqlite_writer = threading.RLock() if self.is_sqlite else None

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
        with self._sqlite_writer, self.sessions() as session, session.begin():
            yield session

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
