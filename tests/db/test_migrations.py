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
