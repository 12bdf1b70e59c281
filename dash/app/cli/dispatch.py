"""`dash dispatch --now ISO8601`: what the scheduler would have done up to that instant.

Part of the wiring package dash.app, so it may import the scheduler and the bots: it
compiles agendas, runs every due step (sending what is within its grace period, skipping what
is stale) and then drains the outbox once through the configured channels.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    import asyncio

    try:
        from bots.delivery import DeliveryWorker
        from bots.registry import build_senders

        senders = build_senders(ctx)
    except ImportError:
        return None
    return int(asyncio.run(DeliveryWorker(ctx, senders).drain_once()))


#: Rows `dash dispatch` lists before it only counts the rest.
TABLE_ROWS = 20
#: Characters of a message's first line shown in the table.
FIRST_WORDS = 50


@dataclass(frozen=True)
class QueuedRow:
    """One message a dispatch queued, as the table shows it."""

    who: str
    kind: str
    status: str
    text: str


def _last_message_id(ctx) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from dash.models import Message

    with ctx.db.transaction() as s:
        return int(s.execute(select(func.max(Message.id))).scalar_one() or 0)


def _queued_since(ctx, after_id: int) -> list[QueuedRow]:  # type: ignore[no-untyped-def]
    """The outbound messages written after message `after_id`, oldest first."""
    from sqlalchemy import select

    from dash.models import Message, Person

    with ctx.db.transaction() as s:
        rows = s.execute(
            select(Message.address, Message.channel, Message.kind, Message.status, Message.text,
                   Person.name)
            .outerjoin(Person, Person.id == Message.person_id)
            .where(Message.id > after_id, Message.direction == "out")
            .order_by(Message.id)
        ).all()  # fmt: skip
    return [
        QueuedRow(
            who=f"{name} ({address})" if name else f"{address} ({channel})",
            kind=kind,
            status=status,
            text=text,
        )
        for address, channel, kind, status, text, name in rows
    ]


def first_words(text: str, limit: int = FIRST_WORDS) -> str:
    """The start of a message's first line, cut at a word with an ellipsis when longer."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    if len(line) <= limit:
        return line
    cut = line[: limit - 1].rsplit(" ", 1)[0] or line[: limit - 1]
    return cut.rstrip(" ,.;:") + "…"


def queued_table(rows: list[QueuedRow], limit: int = TABLE_ROWS) -> list[str]:
    """Lines of the table of what a dispatch queued: who, kind, status and first words."""
    if not rows:
        return ["nothing queued"]
    shown = [("to", "kind", "status", "first words")] + [
        (r.who, r.kind, r.status, first_words(r.text)) for r in rows[:limit]
    ]
    widths = [max(len(row[i]) for row in shown) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in shown
    ]
    if len(rows) > limit:
        lines.append(f"... and {len(rows) - limit} more (all: dash export --what messages)")
    return lines


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
        from bots.registry import enabled_names, reply_windows

        ctx = AppContext.from_settings(settings, db, channels=enabled_names(settings))
        ctx.reply_windows = reply_windows(enabled_names(settings))
        before = _last_message_id(ctx)
        report = dispatch(ctx, instant)
        typer.echo(f"dispatch at {instant.isoformat()}: {report.summary()}")
        if send:
            delivered = _drain(ctx)
            if delivered is not None:
                typer.echo(f"delivery: {delivered} message(s) handed to their channels")
        for line in queued_table(_queued_since(ctx, before)):
            typer.echo(line)
    finally:
        db.dispose()
