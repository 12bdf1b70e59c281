"""`dash report --cohort ID [--out DIR]`: write a cohort's printable HTML report.

The lead mounts it with `register(app)` in dash/cli.py. The path goes on the last line of
output so scripts (and `dash demo`) can pick it up; an unknown cohort is a user error (exit 1).
"""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the `report` command to the `dash` command line."""

    @app.command("report")
    def report(
        cohort: Annotated[int, typer.Option(help="Cohort id.")],
        out: Annotated[
            str | None,
            typer.Option(help="Folder to write into (default: the report_dir setting)."),
        ] = None,
    ) -> None:
        """Write the cohort's report (HTML with run charts, PDSA logs and progress per team)
        and print its path."""
        from dash.cli import _ready_database
        from dash.report import write_report
        from dash.settings import get_settings

        db = _ready_database(writes=False)
        folder = out or get_settings().report_dir
        with db.transaction() as session:
            path = write_report(session, cohort, folder)
        typer.echo(f"report for cohort {cohort} written to:")
        typer.echo(str(path))
