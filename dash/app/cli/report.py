"""`dash report --cohort ID [--out DIR]`: write a cohort's printable HTML report.

dash.app.cli.main adds `report_command` as `dash report`. The path goes on the last line of
output so scripts (and `dash demo`) can pick it up; an unknown cohort is a user error (exit 1).
"""

from __future__ import annotations

from typing import Annotated

import typer

from dash.app.cli.common import ready_database


def report_command(
    cohort: Annotated[int, typer.Option(help="Cohort id.")],
    out: Annotated[
        str | None,
        typer.Option(help="Folder to write into (default: the report_dir setting)."),
    ] = None,
) -> None:
    """Write the cohort's report (HTML with run charts, PDSA logs and progress per team)
    and print its path."""
    from dash.report import write_report
    from dash.settings import get_settings

    db = ready_database(writes=False)
    folder = out or get_settings().report_dir
    with db.transaction() as session:
        path = write_report(session, cohort, folder)
    typer.echo(f"report for cohort {cohort} written to:")
    typer.echo(str(path))
