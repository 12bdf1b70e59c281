"""What `dash serve` does with Telegram at start: menu, then webhook (https) or long polling."""

from __future__ import annotations

import asyncio
import json

import pytest

from bots.telegram.polling import COMMANDS, TelegramService
from bots.telegram.webhook import webhook_secret
from dash.db import Database
from tests.fakes.telegram_api import FakeTelegram
from tests.support.delivery import configure, count_messages, telegram_env


def commands_for(fake: FakeTelegram, language: str = "") -> list[str]:
    key = json.dumps([{"type": "default"}, language], sort_keys=True)
    return [c["command"] for c in fake.commands.get(key, [])]


def test_https_public_url_sets_the_webhook_with_its_secret(
    monkeypatch: pytest.MonkeyPatch, db: Database, fake_telegram: FakeTelegram
) -> None:
    ctx = configure(
        monkeypatch, db, **telegram_env(fake_telegram), public_url="https://dash.example.org"
    )

    async def main() -> None:
        channel = TelegramService(ctx)
        await channel.start(asyncio.Event())
        await channel.close()

    asyncio.run(main())

    assert fake_telegram.webhook is not None
    assert fake_telegram.webhook["url"] == "https://dash.example.org/webhooks/telegram"
    assert fake_telegram.webhook["secret_token"] == webhook_secret(ctx)
    assert commands_for(fake_telegram) == list(COMMANDS)
    assert commands_for(fake_telegram, "es") == list(COMMANDS)
    assert fake_telegram.calls_to("getUpdates") == []


def test_polling_receives_an_update_from_get_updates(
    monkeypatch: pytest.MonkeyPatch, db: Database, fake_telegram: FakeTelegram
) -> None:
    ctx = configure(monkeypatch, db, **telegram_env(fake_telegram))  # http public URL
    fake_telegram.webhook = {"url": "https://old.example.org/webhooks/telegram"}  # left over
    update_id = fake_telegram.push_text(7300100200, "HELP", first_name="Ana")

    async def main() -> None:
        stop = asyncio.Event()
        channel = TelegramService(ctx)
        await channel.start(stop)
        deadline = asyncio.get_running_loop().time() + 10
        while count_messages(db, direction="in") == 0:
            assert asyncio.get_running_loop().time() < deadline, "no update was stored"
            await asyncio.sleep(0.05)
        stop.set()
        await channel.close()

    asyncio.run(main())

    assert fake_telegram.webhook is None  # deleted so getUpdates may run
    assert count_messages(db, direction="in", provider_id=f"u{update_id}") == 1
    assert commands_for(fake_telegram) == list(COMMANDS)
