"""`dash export --cohort ID --what measures|pdsa|messages`: a cohort's data as CSV."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from dash.app.cli.common import ready_database


def export_command(
    cohort: Annotated[int, typer.Option(help="Cohort id.")],
    what: Annotated[str, typer.Option(help="measures, pdsa or messages.")],
) -> None:
    """Write a cohort's data as CSV on stdout, header row first."""
    from dash.exports import write_export

    db = ready_database(writes=False)
    with db.transaction() as s:
        write_export(s, cohort, what, sys.stdout)
