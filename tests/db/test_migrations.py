"""Migrations build the schema the models describe, from empty, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import inspect

from dash import migrate
from dash.db import Database
from dash.models import Base


def test_empty_to_head_matches_models_and_repeats_safely(settings) -> None:
    db = Database(settings.database_url)
    before, after = migrate.upgrade(db)
    assert before is None
    assert after == migrate.head_revision(db)
    tables = set(inspect(db.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    # The models and the migrations agree (what `alembic check` verifies).
    migrate.check(db)
    # Idempotent: a second run changes nothing.
    assert migrate.upgrade(db) == (after, after)
    db.dispose()


def test_downgrade_to_empty_and_back(settings) -> None:
    db = Database(settings.database_url)
    migrate.upgrade(db)
    migrate.downgrade(db, "base")
    assert migrate.current_revision(db) is None
    assert "teams" not in inspect(db.engine).get_table_names()
    migrate.upgrade(db)
    assert "teams" in inspect(db.engine).get_table_names()
    db.dispose()


def test_a_migrated_database_takes_messages_of_any_channel(settings) -> None:
    """A new channel is a package and a registry line: the schema does not list channels."""
    from sqlalchemy import text

    db = Database(settings.database_url)
    migrate.upgrade(db)
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO messages (direction, channel, address, text, kind, status,"
                " needs_reply, created_at, updated_at) VALUES ('out', 'pigeon', 'loft-1', 'hi',"
                " 'reply', 'queued', FALSE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        assert conn.execute(text("SELECT channel FROM messages")).scalar_one() == "pigeon"
    db.dispose()
