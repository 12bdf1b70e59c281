"""`dash serve`: the dashboard, webhooks, scheduler and delivery in one or more processes.

The app itself is built by dash.app.server; this module reads the options, migrates the
database and hands the app to uvicorn.
"""

from __future__ import annotations

from typing import Annotated

import typer

from dash.app.cli.common import database
from dash.errors import UserError


def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    role: Annotated[
        list[str] | None,
        typer.Option(
            "--role",
            help="web, tick, delivery (repeat; default DASH_SERVE_ROLES, all three). Webhooks "
            "and /healthz are always served.",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Processes sharing the port, each running the roles (default DASH_SERVE_WORKERS).",
        ),
    ] = None,
) -> None:
    """Run the dashboard, webhooks, scheduler and outbound delivery."""
    import os

    import uvicorn

    from dash import migrate
    from dash.app.server import create_app, parse_roles
    from dash.context import AppContext
    from dash.dbproblems import ensure_writable
    from dash.heap import settle_heap
    from dash.links import local_base_url
    from dash.logs import configure_logging
    from dash.settings import get_settings

    settings = get_settings()
    try:
        roles = parse_roles(role or settings.serve_roles)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    processes = workers or settings.serve_workers
    configure_logging(settings.log_level)
    db = database()
    ensure_writable(db)
    migrate.upgrade(db)  # a fresh machine works with no set-up step
    own = local_base_url(host, port)
    if "public_url" in settings.model_fields_set:
        links = f"links use DASH_PUBLIC_URL {settings.public_url}"
    else:
        # Links this server writes (log-in, sign-off, charts) must name its own port, in
        # this process and in the workers it starts, which read the environment afresh.
        os.environ["DASH_PUBLIC_URL"] = own
        get_settings.cache_clear()
        settings = get_settings()
        links = f"links use {own} (DASH_PUBLIC_URL is not set)"
    typer.echo(
        f"Improvement Dash on {own}; {links}; "
        f"roles: {', '.join(roles)}; processes: {processes}"
    )
    if processes == 1:
        from bots.registry import enabled_names, reply_windows

        ctx = AppContext.from_settings(settings, db, channels=enabled_names(settings))
        ctx.reply_windows = reply_windows(enabled_names(settings))
        app_ = create_app(ctx, roles=roles)
        settle_heap()
        uvicorn.run(app_, host=host, port=port, log_config=None, access_log=False)
        return
    db.dispose()
    # Each worker reads its settings afresh: pass the roles chosen here down to them.
    os.environ["DASH_SERVE_ROLES"] = ",".join(roles)
    uvicorn.run(
        "dash.app.server:app_from_settings",
        factory=True,
        workers=processes,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
    )
