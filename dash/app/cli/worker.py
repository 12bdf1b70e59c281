"""`dash worker --role tick --role delivery`: the scheduler and outbound delivery as processes.

The work is in dash.app.workers (leader locks, the delivery supervisor); this module is the
command, and `python -m dash.app.cli.worker` runs it on its own (the tests and benchmarks
start workers that way).
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING, Annotated

import typer

from dash.app.workers import ROLES, STANDBY_SECONDS, load_role_modules, run_roles
from dash.errors import UserError

if TYPE_CHECKING:
    from dash.context import AppContext


def worker_command(
    role: Annotated[
        list[str] | None,
        typer.Option("--role", help="tick or delivery; repeat for both (the default is both)."),
    ] = None,
    standby_seconds: Annotated[
        float,
        typer.Option(help="How often a standby delivery process checks whether to take over."),
    ] = STANDBY_SECONDS,
    lease_seconds: Annotated[
        float | None,
        typer.Option(
            help="How long a claimed outbox row belongs to this process mid-send "
            "(default: the delivery worker's own setting)."
        ),
    ] = None,
) -> None:
    """Run the scheduler tick and/or outbound delivery without the web app. Start as many as
    you like: ticks share the work, and each channel account sends from one process at a time."""
    import asyncio

    from dash import migrate
    from dash.context import AppContext
    from dash.db import database_from
    from dash.dbproblems import ensure_writable
    from dash.heap import settle_heap
    from dash.logs import configure_logging
    from dash.settings import get_settings

    roles = tuple(dict.fromkeys(role or ROLES))
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise UserError(f"unknown role {unknown[0]!r}: use tick or delivery")
    settings = get_settings()
    configure_logging(settings.log_level)
    db = database_from(settings)
    try:
        if migrate.current_revision(db) != migrate.head_revision(db):
            raise UserError("the database is not initialised or is out of date: run `dash init`")
        ensure_writable(db)
        from bots.registry import enabled_names, reply_windows

        ctx = AppContext.from_settings(settings, db, channels=enabled_names(settings))
        ctx.reply_windows = reply_windows(enabled_names(settings))
        load_role_modules(roles)
        settle_heap()
        typer.echo(f"dash worker: {', '.join(roles)} (stop with Ctrl-C or SIGTERM)", err=True)
        asyncio.run(_until_signalled(ctx, roles, standby_seconds, lease_seconds))
    finally:
        db.dispose()


async def _until_signalled(
    ctx: AppContext, roles: tuple[str, ...], standby_seconds: float, lease_seconds: float | None
) -> None:
    import asyncio

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_roles(
        ctx,
        roles,
        stop,
        standby_seconds=standby_seconds,
        worker_options={} if lease_seconds is None else {"lease_seconds": lease_seconds},
    )


def main() -> None:
    """`python -m dash.app.cli.worker [--role …]`: the worker command on its own."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(worker_command)
    try:
        app()
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    except Exception as exc:
        from dash.dbproblems import configured_database_problem

        problem = configured_database_problem(exc)
        if problem is None:
            raise
        typer.echo(f"error: {problem}", err=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
