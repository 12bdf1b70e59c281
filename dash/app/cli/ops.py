"""`dash backup`, `dash restore` and `dash purge`: the operator's commands.

dash.app.cli.main adds the three `*_command` functions by name. docs/DEPLOYMENT.md and
docs/PRIVACY.md describe when to use them; the work is in dash.backup and
dash.actions.retention.
"""

from __future__ import annotations

import shlex
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from dash.app.cli.common import ready_database
from dash.errors import UserError


def _settings():  # type: ignore[no-untyped-def]
    from dash.settings import get_settings

    return get_settings()


def _shown(args: list[str]) -> str:
    return shlex.join(args)


def backup_command(
    out: Annotated[
        str | None,
        typer.Option(
            help="File to write, or a folder for a timestamped file "
            "(default: ./backups beside a SQLite database, ./backups for PostgreSQL)."
        ),
    ] = None,
    print_command: Annotated[
        bool,
        typer.Option(
            "--print-command", help="PostgreSQL: print the pg_dump command instead of running it."
        ),
    ] = False,
) -> None:
    """Back up the database while the server runs and print the backup's path."""
    from dash import backup as backups

    settings = _settings()
    if settings.is_sqlite:
        path = backups.backup_sqlite(settings.database_url, out)
        typer.echo(f"backed up {backups.sqlite_path(settings.database_url)} to:")
        typer.echo(str(path))
        return
    if print_command:
        target = Path(out) if out else Path("backups") / backups.timestamped_name(".dump")
        typer.echo("# the password comes from ~/.pgpass or PGPASSWORD, never the command line")
        typer.echo(_shown(backups.pg_dump_command(settings.database_url, target)))
        return
    path = backups.backup_postgres(settings.database_url, out)
    typer.echo("backed up with pg_dump to:")
    typer.echo(str(path))


def restore_command(
    path: Annotated[str, typer.Argument(help="A file made by `dash backup`.")],
    yes: Annotated[
        bool, typer.Option("--yes", help="Replace the existing database without asking.")
    ] = False,
) -> None:
    """Restore a backup (SQLite), or print the pg_restore command (PostgreSQL)."""
    from dash import backup as backups

    settings = _settings()
    if not settings.is_sqlite:
        typer.echo("# stop every `dash` process, then run (the password from ~/.pgpass):")
        typer.echo(_shown(backups.pg_restore_command(settings.database_url, path)))
        typer.echo("# then: dash init")
        return
    result = backups.restore_sqlite(path, settings.database_url, replace=yes)
    if result.previous_copy is not None:
        typer.echo(f"the previous database is kept at {result.previous_copy}")
    typer.echo(f"restored {result.restored_from} (migration {result.revision}) into:")
    typer.echo(str(result.database))
    if result.needs_upgrade:
        typer.echo("the backup predates this version: run `dash init` to upgrade it")


def purge_command(
    cohort: Annotated[int, typer.Option(help="Cohort id.")],
    before: Annotated[
        str, typer.Option(help="Delete messages from before this day, YYYY-MM-DD.")
    ],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a cohort's messages from before a day; counts and PDSA cycles stay."""
    from dash.actions.retention import PurgeReport
    from dash.actions.retention import purge as purge_messages

    try:
        day = date.fromisoformat(before)
    except ValueError as exc:
        raise UserError(f"{before!r} is not a date: use YYYY-MM-DD") from exc
    db = ready_database()
    with db.transaction() as s:
        preview: PurgeReport = purge_messages(s, cohort_id=cohort, before=day, dry_run=True)
    typer.echo(
        f"cohort {preview.cohort_id} ({preview.cohort_name}), {preview.teams} teams: "
        f"messages before {day.isoformat()} (before {preview.cutoff.isoformat()} UTC)"
    )
    typer.echo(
        f"  would delete {preview.messages} messages ({preview.messages_in} in, "
        f"{preview.messages_out} out), {preview.raw_payloads} raw inbound payloads, "
        f"{preview.outbox_rows} outbox rows"
    )
    typer.echo(
        f"  would keep all counts, PDSA cycles and sign-offs; {preview.measure_links} "
        f"counts lose their message link; {preview.kept_in_flight} messages still in "
        "flight are kept"
    )
    if preview.messages == 0:
        typer.echo("nothing to delete")
        return
    if not yes and not typer.confirm("delete them?", default=False):
        typer.echo("nothing deleted")
        return
    with db.transaction() as s:
        done = purge_messages(s, cohort_id=cohort, before=day)
    typer.echo(f"deleted {done.messages} messages and {done.outbox_rows} outbox rows")
