"""What the command modules share: the configured database, ready for a command, and the
parsing of dates and times typed on the command line."""

from __future__ import annotations

from datetime import date, time
from typing import TYPE_CHECKING

from dash.errors import UserError

if TYPE_CHECKING:  # `dash --help` loads no SQLAlchemy
    from dash.db import Database


def database() -> Database:
    """The configured database, as it is (`dash init` and `dash serve` migrate it)."""
    from dash.db import database_from
    from dash.settings import get_settings

    return database_from(get_settings())


def ready_database(*, writes: bool = True) -> Database:
    """The database, migrated to the newest revision (commands other than init need it).

    A command that `writes` stops here, before any work, if the file is read-only for us."""
    from dash import migrate
    from dash.dbproblems import ensure_writable

    db = database()
    if migrate.current_revision(db) != migrate.head_revision(db):
        raise UserError("the database is not initialised or is out of date: run `dash init`")
    if writes:
        ensure_writable(db)
    return db


def parse_date(value: str) -> date:
    """A YYYY-MM-DD day; a UserError that says the format otherwise."""
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise UserError(f"{value!r} is not a date: use YYYY-MM-DD") from exc


def parse_time(value: str) -> time:
    """A 24-hour HH:MM; a UserError that says the format otherwise."""
    try:
        return time.fromisoformat(value)
    except ValueError as exc:
        raise UserError(f"{value!r} is not a time: use HH:MM (24-hour)") from exc
