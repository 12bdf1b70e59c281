"""`dash init`: create or upgrade the configured database."""

from __future__ import annotations

import typer

from dash.app.cli.common import database
from dash.errors import UserError


def init_command() -> None:
    """Create or upgrade the database to the newest migration (safe to repeat)."""
    from dash import migrate
    from dash.db import secret_key
    from dash.settings import get_settings

    settings = get_settings()
    db = database()
    try:
        before, after = migrate.upgrade(db)
    except Exception as exc:  # the database URL is wrong or unreachable, or a migration failed
        from dash.dbproblems import database_problem, masked_url, one_line

        problem = database_problem(exc, settings.database_url)
        raise UserError(
            problem
            or f"cannot migrate {masked_url(settings.database_url)}: "
            f"{exc.__class__.__name__}: {one_line(exc, settings.database_url)}"
        ) from exc
    secret_key(db, settings)
    if before == after:
        typer.echo(
            f"database {db.engine.url.render_as_string(hide_password=True)} is up to date ({after})"
        )
    else:
        typer.echo(
            f"database {db.engine.url.render_as_string(hide_password=True)} "
            f"upgraded from {before or 'empty'} to {after}"
        )
