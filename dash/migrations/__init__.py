"""Alembic migrations; `dash init` runs them (dash.migrate)."""
