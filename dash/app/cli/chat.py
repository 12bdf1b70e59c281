"""`dash chat --from ADDRESS`: be the person at ADDRESS talking to the bot in a terminal.

Part of the wiring package dash.app, so it may wire in the console channel from `bots`.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from dash.app.cli.common import ready_database
from dash.errors import UserError


def chat_command(
    address: Annotated[
        str,
        typer.Option("--from", help="Who you are, e.g. +15551234567 (any text works)."),
    ],
) -> None:
    """Talk to the bot as the person at ADDRESS over the console channel (one line each)."""
    from bots.console.chat import chat
    from dash.context import AppContext
    from dash.settings import get_settings

    who = address.strip()
    if not who or len(who) > 64:
        raise UserError("--from needs an address of 1 to 64 characters, e.g. +15551234567")
    ctx = AppContext.from_settings(get_settings(), ready_database())
    if sys.stdin.isatty():
        typer.echo(f"Talking to the bot as {who}. Type a message; Ctrl-D to quit.")
    chat(ctx, who, sys.stdin)
