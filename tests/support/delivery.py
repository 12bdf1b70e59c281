"""Shared set-up for the channel tests: configured contexts, a served app, a worker driver.

Everything here is real: settings come from the environment as in a deployment, the app is
served by uvicorn on 127.0.0.1 (so the fake Twilio can POST status callbacks to it), and the
worker sends over HTTP to the fake provider servers.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from sqlalchemy import func, select
from starlette.applications import Starlette

from bots.delivery import DeliveryWorker, Sender
from dash.context import AppContext
from dash.db import Database
from dash.models import Message
from dash.settings import get_settings
from tests.support.people import reachable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def configure(monkeypatch: pytest.MonkeyPatch, db: Database, **env: str) -> AppContext:
    """A context whose settings include `env` (DASH_ prefix added), as a deployment sets them."""
    for key, value in env.items():
        monkeypatch.setenv(f"DASH_{key.upper()}", value)
    get_settings.cache_clear()
    return AppContext.from_settings(get_settings(), db)


def telegram_env(fake: Any) -> dict[str, str]:
    return {"telegram_token": fake.token, "telegram_api_base": fake.base_url}


def twilio_env(fake: Any) -> dict[str, str]:
    return {
        "twilio_account_sid": fake.account_sid,
        "twilio_auth_token": fake.auth_token,
        "twilio_api_base": fake.api_base,
        "twilio_sms_from": "+15550000000",
        "twilio_whatsapp_from": "whatsapp:+15550000001",
    }


def channel_app(ctx: AppContext) -> Starlette:
    """The webhook routes exactly as dash.app.server mounts them."""
    from bots import registry
    from bots.intake import Intake

    return Starlette(routes=registry.routes(ctx, Intake(ctx)))


@contextmanager
def served(app: Any, port: int) -> Iterator[str]:
    """`app` served over HTTP on 127.0.0.1:`port` in a thread; yields its origin."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def drain(worker: DeliveryWorker, **kwargs: Any) -> int:
    """One drain_once pass, from synchronous test code."""
    return asyncio.run(worker.drain_once(**kwargs))


def run_worker_until(
    worker: DeliveryWorker, done: Callable[[], bool], timeout: float = 15.0
) -> None:
    """Run the worker's real loop until `done()` (checked every 20 ms) or fail at `timeout`."""

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        deadline = time.monotonic() + timeout
        try:
            while not done():
                if time.monotonic() > deadline:
                    raise AssertionError("the worker did not get there in time")
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=10)

    asyncio.run(main())


def worker_for(ctx: AppContext, *channels: str, **kwargs: Any) -> DeliveryWorker:
    """A worker with the real senders for `channels`."""
    senders: dict[str, Sender] = {}
    for channel in channels:
        if channel == "telegram":
            from bots.telegram.sender import TelegramSender

            senders[channel] = TelegramSender(ctx)
        else:
            from bots.twilio.sender import TwilioSender

            senders[channel] = TwilioSender(ctx, channel)
    return DeliveryWorker(ctx, senders, **kwargs)


def count_messages(db: Database, **where: Any) -> int:
    with db.transaction() as s:
        query = select(func.count(Message.id))
        for key, value in where.items():
            query = query.where(getattr(Message, key) == value)
        return int(s.execute(query).scalar_one())


def add_person(db: Database, **fields: Any) -> int:
    with db.transaction() as s:
        person = reachable(**fields)
        s.add(person)
        s.flush()
        return int(person.id)
