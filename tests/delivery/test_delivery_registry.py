"""Which channels a deployment sends on follows from its settings alone."""

from __future__ import annotations

import pytest

from bots.console.chat import ConsoleSender
from bots.registry import build_senders
from bots.telegram.sender import TelegramSender
from bots.twilio.sender import TwilioSender
from dash.db import Database
from tests.support.delivery import configure


def test_with_no_configuration_only_the_console_sends(
    monkeypatch: pytest.MonkeyPatch, db: Database
) -> None:
    senders = build_senders(configure(monkeypatch, db))

    assert set(senders) == {"console"}
    assert isinstance(senders["console"], ConsoleSender)


def test_each_configured_channel_gets_its_sender(
    monkeypatch: pytest.MonkeyPatch, db: Database
) -> None:
    ctx = configure(
        monkeypatch,
        db,
        telegram_token="123456:abc",
        twilio_account_sid="AC0123456789abcdef0123456789abcdef",
        twilio_auth_token="token",
        twilio_sms_from="+15550000000",
    )

    senders = build_senders(ctx)

    assert set(senders) == {"console", "telegram", "sms"}  # no WhatsApp number configured
    assert isinstance(senders["telegram"], TelegramSender)
    assert isinstance(senders["sms"], TwilioSender) and senders["sms"].kind == "sms"
