"""The console channel: talk to the bot in a terminal, no account or token needed.

ConsoleSender is the channel's Sender for the delivery worker. Whichever process delivers
(`dash serve`, `dash worker`, `dash dispatch` or a `dash chat` window), a console message is
"sent" once its row says so in the database: that is the mailbox. `chat` is the loop behind
`dash chat --from ADDRESS`: each line typed is an inbound message from ADDRESS, handled by
the same engine as every other channel; the window then shows every message sent to ADDRESS
that it has not shown yet (marking it "delivered"), and keeps looking while the person is
idle, so a coach's reply or a scheduled prompt sent by another process appears there too.
Messages to other addresses never print in this window: they wait for their own.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import sys
import threading
import uuid
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TextIO

from sqlalchemy import select, update

from bots.delivery import DeliveryWorker, OutgoingItem
from dash.context import AppContext
from dash.engine import handle_inbound
from dash.inbound import InboundMessage
from dash.models import Message, MessageStatus, OutboxItem
from dash.timeutil import utcnow

_counter = itertools.count(1)


@dataclass(frozen=True)
class ConsoleMessage:
    """One delivered console message."""

    address: str
    text: str
    payload: dict


#: How many sent messages a ConsoleSender remembers (a server's sender lives for days).
SENT_KEPT = 1000


class ConsoleSender:
    """Delivers console messages; `sent` keeps the latest ones in order.

    Without `out` it only accepts them: the worker then marks each row "sent", and the
    `dash chat` window of that address shows it from the database. With `out` (the demo's
    transcript) it also prints every one, each addressed to someone other than `me` headed
    by its address.
    """

    def __init__(
        self, ctx: AppContext | None = None, out: TextIO | None = None, me: str | None = None
    ) -> None:
        self.ctx = ctx
        self.out = out
        self.me = me
        self.sent: deque[ConsoleMessage] = deque(maxlen=SENT_KEPT)

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
        lines.append("[image: run chart]")  # the person's chat: no internal ids
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


#: At most this many waiting messages are printed when a window opens; older ones are
#: counted, not printed (an address that never opened a window may have a fortnight's worth).
BACKLOG_SHOWN = 50


def show_unseen(
    ctx: AppContext, address: str, out: TextIO, backlog: int | None = None
) -> int:
    """Print the console messages sent to `address` that no window has shown yet, oldest
    first (only the latest `backlog` of them when given), and mark them all "delivered";
    returns how many were printed."""
    unseen = (
        Message.channel == "console",
        Message.address == address,
        Message.direction == "out",
        Message.status == MessageStatus.SENT.value,
    )
    with ctx.db.transaction() as session:
        # Locked (SQLite: the write lock; PostgreSQL: the rows, skipping locked ones), so
        # two windows on one address never both show a message.
        rows = session.execute(
            select(Message.id, Message.text, OutboxItem.payload)
            .outerjoin(OutboxItem, OutboxItem.message_id == Message.id)
            .where(*unseen)
            .order_by(Message.id)
            .with_for_update(of=Message, skip_locked=True)
        ).all()
        if not rows:
            return 0
        # By range, not by a list of ids: a long backlog stays one short statement.
        session.execute(
            update(Message)
            .where(*unseen, Message.id <= rows[-1].id)
            .values(status=MessageStatus.DELIVERED.value, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    if backlog is not None and len(rows) > backlog:
        out.write(f"[{len(rows) - backlog} earlier messages not shown]\n")
        rows = rows[-backlog:]
    for row in rows:
        out.write(format_message(ConsoleMessage(address, row.text, dict(row.payload or {}))))
        out.write("\n")
    out.flush()
    return len(rows)


_END = object()


def _read_into(lines: Iterable[str], inbox: queue.Queue[object]) -> None:
    """Hand each typed line to the chat loop, then the end mark (on a thread of its own, so
    the loop can look for new messages while the person is not typing)."""
    try:
        for line in lines:
            inbox.put(line)
    finally:
        inbox.put(_END)


def chat(
    ctx: AppContext,
    address: str,
    lines: Iterable[str],
    out: TextIO | None = None,
    poll_seconds: float | None = None,
) -> None:
    """Read lines as messages from `address`; print what the bot sends to `address`: at the
    start, after each line, and every `poll_seconds` while no line comes."""
    out = out or sys.stdout
    poll = poll_seconds if poll_seconds is not None else ctx.settings.console_poll_seconds
    sender = ConsoleSender(ctx)
    deliver(ctx, sender)  # anything already waiting for a console address
    show_unseen(ctx, address, out, backlog=BACKLOG_SHOWN)
    inbox: queue.Queue[object] = queue.Queue()
    threading.Thread(target=_read_into, args=(lines, inbox), daemon=True).start()
    while True:
        try:
            line = inbox.get(timeout=poll)
        except queue.Empty:
            # Idle: another process (`dash serve`, `dash dispatch`) may have sent something.
            show_unseen(ctx, address, out)
            continue
        if line is _END:
            break
        text = str(line).rstrip("\n")
        if not text.strip():
            continue
        handle_inbound(ctx, inbound_from_console(address, text))
        deliver(ctx, sender)
        show_unseen(ctx, address, out)
