"""The console channel: talk to the bot in a terminal, no account or token needed.

ConsoleSender is the channel's Sender for the delivery worker: it "delivers" by printing (and
keeps what it sent, so the demo and tests can read it). `chat` is the loop behind
`dash chat --from ADDRESS`: each line typed is an inbound message from ADDRESS, handled by
the same engine as every other channel, then the console outbox is delivered.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TextIO

from bots.delivery import DeliveryWorker, OutgoingItem
from dash.context import AppContext
from dash.engine import handle_inbound
from dash.inbound import InboundMessage
from dash.timeutil import utcnow

_counter = itertools.count(1)


@dataclass(frozen=True)
class ConsoleMessage:
    """One delivered console message."""

    address: str
    text: str
    payload: dict


class ConsoleSender:
    """Delivers console messages by printing them; `sent` keeps every one in order.

    With `me` set (the address of the person at the keyboard), messages to anyone else are
    printed with their address, so a demo shows the leader's sign-off request too.
    """

    def __init__(
        self, ctx: AppContext | None = None, out: TextIO | None = None, me: str | None = None
    ) -> None:
        self.ctx = ctx
        self.out = out
        self.me = me
        self.sent: list[ConsoleMessage] = []

    async def send(self, item: OutgoingItem) -> str:
        message = ConsoleMessage(item.address, item.text, dict(item.payload or {}))
        self.sent.append(message)
        if self.out is not None:
            self.out.write(format_message(message, self.me) + "\n")
            self.out.flush()
        return f"console-{next(_counter)}-{uuid.uuid4().hex[:8]}"


def format_message(message: ConsoleMessage, me: str | None = None) -> str:
    """How a message looks in the terminal: buttons and charts shown as plain hints."""
    lines = [] if me is None or message.address == me else [f"[to {message.address}]"]
    lines.append(message.text)
    buttons = message.payload.get("buttons") or []
    labels = [b.get("text", "") for row in buttons for b in row if isinstance(b, dict)]
    if labels:
        lines.append("[buttons: " + " | ".join(labels) + "]")
    photo = message.payload.get("photo")
    if isinstance(photo, dict):
        lines.append(f"[image: run chart of team {photo.get('team_id')}]")
    return "\n".join(lines)


def inbound_from_console(address: str, text: str) -> InboundMessage:
    """A typed line as the engine's InboundMessage (every line a new provider id)."""
    return InboundMessage(
        channel="console",
        provider_id=f"console:{uuid.uuid4().hex}",
        address=address,
        sender=address,
        text=text.strip(),
        received_at=utcnow(),
        raw={"text": text},
    )


def deliver(ctx: AppContext, sender: ConsoleSender) -> int:
    """Send every queued console message now; returns how many were sent."""
    worker = DeliveryWorker(ctx, {"console": sender})
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(worker.drain_once())
    # Called from inside an event loop (an embedding app): drain on a thread of its own.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(worker.drain_once())).result()


def chat(ctx: AppContext, address: str, lines: Iterable[str], out: TextIO | None = None) -> None:
    """Read lines as messages from `address`; print the bot's replies after each one."""
    out = out or sys.stdout
    sender = ConsoleSender(ctx, out=out, me=address)
    deliver(ctx, sender)  # anything already waiting for this console
    for line in lines:
        text = line.rstrip("\n")
        if not text.strip():
            continue
        handle_inbound(ctx, inbound_from_console(address, text))
        deliver(ctx, sender)
