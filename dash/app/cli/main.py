"""The `dash` command line: the root group, and every command added by name from its module
in dash.app.cli.

Exit status: 0 on success, 1 on a user error (one line on stderr), 2 on usage errors.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from dash.app.cli import (
    chat,
    coaches,
    cohorts,
    curriculum,
    database,
    demo,
    dispatch,
    export,
    ops,
    report,
    serve,
    worker,
)
from dash.errors import UserError


class DashGroup(TyperGroup):
    """Turns a UserError or a database that cannot be used (missing, read-only, unreachable)
    anywhere below into one line on stderr and exit status 1."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        except Exception as exc:
            from dash.dbproblems import configured_database_problem

            problem = configured_database_problem(exc)
            if problem is None:
                raise
            typer.echo(f"error: {problem}", err=True)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=DashGroup,
    help="Improvement Dash: run two-week improvement sprints for hospital unit teams over chat.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
cohort_app = typer.Typer(help="Create and inspect cohorts.", no_args_is_help=True)
coach_app = typer.Typer(help="Manage coach accounts.", no_args_is_help=True)

# Every command, added by name from the module that holds it; `dash --help` lists them in
# this order (CONTRACT.md). The modules import their heavy parts inside the commands, so
# registering them all costs `dash --help` little.
app.command("init")(database.init_command)
app.command("export")(export.export_command)
app.command("serve")(serve.serve_command)
app.command("chat")(chat.chat_command)
app.command("demo")(demo.demo_command)
app.command("dispatch")(dispatch.dispatch_command)
app.command("report")(report.report_command)
app.command("backup")(ops.backup_command)
app.command("restore")(ops.restore_command)
app.command("purge")(ops.purge_command)
app.command("worker")(worker.worker_command)
app.add_typer(cohort_app, name="cohort")
cohort_app.command("create")(cohorts.create_command)
cohort_app.command("list")(cohorts.list_command)
cohort_app.command("show")(cohorts.show_command)
app.add_typer(coach_app, name="coach")
coach_app.command("add")(coaches.add_command)
coach_app.command("remove")(coaches.remove_command)
app.add_typer(curriculum.app, name="curriculum", help="List, validate and show curricula.")


def main() -> None:
    app(prog_name="dash")


__all__ = ["app", "main"]
