"""A channel is one ChannelType: registering one is all the server and the worker need.

The pigeon channel below is defined here and nowhere else; the server mounts its webhook,
the engine answers its messages, and the worker sends its rows within its limits, with no
change to core code.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.testclient import TestClient

from bots import registry
from bots.channel import ChannelType
from bots.delivery import DeliveryWorker, OutgoingItem, SendFailed
from bots.errors import DeliveryError, ErrorKind
from bots.intake import Intake
from bots.ratelimit import Limit
from dash.actions.queueing import queue_message
from dash.app.server import create_app
from dash.context import AppContext
from dash.db import Database
from dash.inbound import InboundMessage
from dash.models import Message, OutboxItem
from dash.settings import Settings
from dash.timeutil import utcnow

PIGEON_PATH = "/webhooks/pigeon"


class PigeonSender:
    """Keeps what it was given; a loft named "closed:…" refuses us."""

    def __init__(self) -> None:
        self.sent: list[OutgoingItem] = []

    async def send(self, item: OutgoingItem) -> str:
        if item.address.startswith("closed:"):
            raise SendFailed(DeliveryError(ErrorKind.RETRY_AFTER, "slow down", "429", 30.0))
        self.sent.append(item)
        return f"pigeon-{len(self.sent)}"


class PigeonType(ChannelType):
    name = "pigeon"
    label = "Pigeon"

    def __init__(self) -> None:
        self.sender = PigeonSender()

    def enabled(self, settings: Settings) -> bool:
        return True

    def routes(self, ctx: AppContext, intake: Intake) -> list[BaseRoute]:
        async def webhook(request: Request) -> Response:
            data = json.loads(await request.body())
            message = InboundMessage(
                channel=self.name,
                provider_id=str(data["id"]),
                address=data["loft"],
                sender=data["loft"],
                text=data["text"],
                received_at=utcnow(),
                raw=data,
            )
            _, result = await intake.submit(lambda: message)
            return JSONResponse({"duplicate": bool(result and result.duplicate)})

        return [Route(PIGEON_PATH, webhook, methods=["POST"])]

    def make_sender(self, ctx: AppContext) -> PigeonSender:
        return self.sender

    def limits(self, settings: Settings, address: str) -> list[Limit]:
        return [Limit.per_minute(self.name, 2)]  # two birds a minute, whatever the loft

    def masked(self, address: str) -> str:
        return f"Pigeon loft {address[-2:]}"


@pytest.fixture
def pigeon(monkeypatch: pytest.MonkeyPatch) -> PigeonType:
    channel_type = PigeonType()
    monkeypatch.setattr(registry, "CHANNEL_TYPES", [*registry.CHANNEL_TYPES, channel_type])
    return channel_type


def _queue(ctx: AppContext, address: str, text: str) -> None:
    with ctx.db.transaction() as session:
        queue_message(session, channel="pigeon", address=address, text=text)


def test_a_registered_channel_is_served_answered_and_sent(
    pigeon: PigeonType, ctx: AppContext, db: Database
) -> None:
    app = create_app(ctx, background=False)
    with TestClient(app) as client:
        answer = client.post(PIGEON_PATH, json={"id": 1, "loft": "loft-17", "text": "hello"})
        again = client.post(PIGEON_PATH, json={"id": 1, "loft": "loft-17", "text": "hello"})
    assert answer.status_code == 200 and again.json() == {"duplicate": True}

    senders = registry.build_senders(ctx)
    assert senders["pigeon"] is pigeon.sender
    asyncio.run(DeliveryWorker(ctx, senders).drain_once())

    # The engine answered the stranger on the channel and address they wrote from.
    assert [item.address for item in pigeon.sender.sent] == ["loft-17"]
    assert pigeon.sender.sent[0].text
    with db.transaction() as session:
        states = session.execute(
            select(OutboxItem.state).where(OutboxItem.channel == "pigeon")
        ).scalars()
        assert set(states) == {"sent"}
        inbound = session.execute(
            select(Message).where(Message.channel == "pigeon", Message.direction == "in")
        ).scalar_one()
        assert inbound.text == "hello"


def test_the_worker_keeps_a_registered_channels_limits_and_flood_control(
    pigeon: PigeonType, ctx: AppContext, db: Database
) -> None:
    for n in range(3):
        _queue(ctx, f"loft-{n}", f"message {n}")
    worker = DeliveryWorker(ctx, registry.build_senders(ctx))

    asyncio.run(worker.drain_once())

    assert len(pigeon.sender.sent) == 2  # its own limit: two a minute
    assert worker.limited

    _queue(ctx, "closed:loft", "too fast")
    other = DeliveryWorker(ctx, registry.build_senders(ctx))
    asyncio.run(other.drain_once())
    # Not flood control per chat: a 429 rests the whole channel.
    assert other.limiter.headroom(Limit.per_minute("pigeon", 1000)) == 0


def test_the_dashboard_shows_an_address_the_way_its_channel_does(pigeon: PigeonType) -> None:
    assert registry.address_label("pigeon", "loft-17") == "Pigeon loft 17"
    assert registry.address_label("whatsapp", "+447700900123") == "WhatsApp …0123"
    assert registry.address_label("telegram", "@ward7") == "Telegram @ward7"
    assert registry.address_label("telegram", "") == "Telegram"
    assert registry.address_label("nowhere", "x") == "nowhere"


def test_the_registry_names_the_enabled_channels_in_preference_order(ctx: AppContext) -> None:
    assert registry.enabled_names(ctx.settings) == ("console",)
    configured = ctx.settings.model_copy(
        update={
            "telegram_token": "1:x",
            "twilio_account_sid": "AC" + uuid.uuid4().hex,
            "twilio_auth_token": "t",
            "twilio_sms_from": "+15550000000",
        }
    )
    assert registry.enabled_names(configured) == ("telegram", "sms", "console")
