"""`dash dispatch --now ISO8601`: what the scheduler would have done up to that instant.

A composition-root module (like dash/cli.py), so it may import the scheduler and the bots: it
compiles agendas, runs every due step (sending what is within its grace period, skipping what
is stale) and then drains the outbox once through the configured channels.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

import typer

from dash.errors import UserError


def parse_instant(value: str) -> datetime:
    """An ISO 8601 instant with its UTC offset (a wall time alone is ambiguous)."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        instant = datetime.fromisoformat(text)
    except ValueError as exc:
        raise UserError(
            f"{value!r} is not an ISO 8601 instant: use e.g. 2026-12-07T09:00:00-05:00"
        ) from exc
    if instant.tzinfo is None:
        raise UserError(
            f"{value!r} has no UTC offset: add one, e.g. 2026-12-07T09:00:00-05:00 or ...Z"
        )
    return instant


def _drain(ctx) -> int | None:  # type: ignore[no-untyped-def]
    """Deliver queued outbox rows once; None when this build has no delivery worker."""
    try:
        from bots.delivery import DeliveryWorker
        from bots.registry import build_senders

        senders = build_senders(ctx)
    except ImportError:
        return None
    return int(asyncio.run(DeliveryWorker(ctx, senders).drain_once()))


def dispatch_command(
    now: Annotated[
        str,
        typer.Option("--now", help="The instant, ISO 8601 with offset: 2026-12-07T09:00-05:00."),
    ],
    send: Annotated[
        bool, typer.Option("--send/--no-send", help="Also deliver the queued messages once.")
    ] = True,
) -> None:
    """Do everything the scheduler would have done up to NOW: send what is due, skip what is
    stale, per the curriculum's rules."""
    from dash import migrate
    from dash.context import AppContext
    from dash.db import database_from
    from dash.dbproblems import ensure_writable
    from dash.settings import get_settings
    from scheduler.tick import dispatch

    instant = parse_instant(now)
    settings = get_settings()
    db = database_from(settings)
    try:
        if migrate.current_revision(db) != migrate.head_revision(db):
            raise UserError("the database is not initialised or is out of date: run `dash init`")
        ensure_writable(db)
        ctx = AppContext.from_settings(settings, db)
        report = dispatch(ctx, instant)
        typer.echo(f"dispatch at {instant.isoformat()}: {report.summary()}")
        if send:
            delivered = _drain(ctx)
            if delivered is not None:
                typer.echo(f"delivery: {delivered} message(s) handed to their channels")
    finally:
        db.dispose()


def register(app: typer.Typer) -> None:
    """Add `dash dispatch` to the command line."""
    app.command("dispatch")(dispatch_command)
