"""The real provider libraries against the fakes, end to end over loopback HTTP.

These pin down the network boundary every other test relies on: python-telegram-bot and
twilio-python must parse what the fakes answer, raise their own exceptions for the faults,
and ``bots.errors`` must classify those exceptions.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
import telegram
import telegram.error
from pytest_socket import SocketConnectBlockedError
from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from bots.errors import ErrorKind
from bots.telegram.client import make_bot
from bots.telegram.errors import classify_telegram_error
from bots.twilio.client import make_async_twilio_client, make_twilio_client, rebase_url
from bots.twilio.errors import classify_twilio_code, classify_twilio_error
from tests import fakes
from tests.fakes import load_fixture, max_in_window
from tests.fakes.signing import telegram_headers, twilio_headers, twilio_signature
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio

# Until tests/conftest.py declares pytest_plugins = ["tests.fakes"], register them here.
fake_telegram = fakes.fake_telegram
fake_twilio = fakes.fake_twilio

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) + b"\r\n--boundary\r\n"


def run(coro_fn: Any) -> Any:
    """Run one coroutine function with a started bot on a fresh loop."""
    return asyncio.run(coro_fn())


# ------------------------------------------------------------------------------------------
# Telegram


def test_ptb_get_me_send_message_and_photo(fake_telegram: FakeTelegram) -> None:
    bot = make_bot(fake_telegram.token, fake_telegram.base_url)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("4", callback_data="score:4")]])

    async def go() -> tuple[telegram.Message, telegram.Message]:
        async with bot:  # initialize() calls getMe
            assert bot.username == "dash_bot"
            text = await bot.send_message(7300100200, "7 of 9 recorded", reply_markup=keyboard)
            photo = await bot.send_photo(-1001234567890, photo=PNG, caption="Run chart")
            return text, photo

    text, photo = run(go)
    assert bot.base_url == f"{fake_telegram.base_url}{fake_telegram.token}"
    assert text.text == "7 of 9 recorded" and text.chat.type == "private"
    assert text.reply_markup == keyboard
    assert photo.chat.type == "supergroup" and photo.caption == "Run chart"
    assert photo.photo[-1].file_size == len(PNG)

    assert [c.method for c in fake_telegram.calls] == ["getMe", "sendMessage", "sendPhoto"]
    sent = fake_telegram.sent_messages(chat_id=7300100200)
    assert len(sent) == 1
    assert sent[0].params["chat_id"] == 7300100200  # decoded from the form, as Telegram does
    assert sent[0].params["reply_markup"] == {
        "inline_keyboard": [[{"text": "4", "callback_data": "score:4"}]]
    }
    upload = fake_telegram.sent_messages(chat_id=-1001234567890)[0].files["photo"]
    assert upload.data == PNG  # multipart bytes kept exactly
    assert fake_telegram.sent_texts() == ["7 of 9 recorded", "Run chart"]


def test_ptb_webhook_and_commands(fake_telegram: FakeTelegram) -> None:
    bot = make_bot(fake_telegram.token, fake_telegram.base_url)

    async def go() -> tuple[Any, Any]:
        async with bot:
            assert await bot.set_webhook(
                "https://dash.example.org/webhooks/telegram",
                secret_token="s3cret_-X",
                allowed_updates=["message", "callback_query"],
            )
            await bot.set_my_commands(
                [BotCommand("help", "How to use Dash"), BotCommand("chart", "Run chart")]
            )
            return await bot.get_webhook_info(), await bot.get_my_commands()

    info, commands = run(go)
    assert info.url == "https://dash.example.org/webhooks/telegram"
    assert fake_telegram.webhook is not None
    assert fake_telegram.webhook["secret_token"] == "s3cret_-X"
    assert fake_telegram.webhook["allowed_updates"] == ["message", "callback_query"]
    assert [c.command for c in commands] == ["help", "chart"]


def test_set_webhook_refuses_plain_http_like_telegram(fake_telegram: FakeTelegram) -> None:
    bot = make_bot(fake_telegram.token, fake_telegram.base_url)

    async def go() -> None:
        async with bot:
            await bot.set_webhook("http://127.0.0.1:8000/webhooks/telegram")

    with pytest.raises(telegram.error.BadRequest, match="(?i)https url"):
        run(go)


def test_edit_message_and_callback_answer(fake_telegram: FakeTelegram) -> None:
    bot = make_bot(fake_telegram.token, fake_telegram.base_url)

    async def go() -> telegram.Message:
        async with bot:
            keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("4", callback_data="s:4")]])
            msg = await bot.send_message(5, "Score importance 1-5", reply_markup=keyboard)
            await bot.answer_callback_query("504320520072928936", text="Thanks")
            cleared = await bot.edit_message_reply_markup(chat_id=5, message_id=msg.message_id)
            assert cleared.reply_markup is None
            edited = await bot.edit_message_text(
                "Importance: 4", chat_id=5, message_id=msg.message_id
            )
            with pytest.raises(telegram.error.BadRequest, match="(?i)not modified"):
                await bot.edit_message_text("Importance: 4", chat_id=5, message_id=msg.message_id)
            return edited  # type: ignore[return-value]

    edited = run(go)
    assert edited.text == "Importance: 4" and edited.edit_date is not None
    assert fake_telegram.calls_to("answerCallbackQuery")[0].params["text"] == "Thanks"


def test_get_updates_offsets_and_long_poll(fake_telegram: FakeTelegram) -> None:
    bot = make_bot(fake_telegram.token, fake_telegram.base_url)
    first = fake_telegram.push_update(load_fixture("telegram_private_text"))
    fake_telegram.push_update(load_fixture("telegram_callback_query") | {"update_id": first + 1})

    async def go() -> tuple[Any, Any, Any, float]:
        async with bot:
            batch = await bot.get_updates(timeout=5)
            again = await bot.get_updates(offset=batch[0].update_id + 1, timeout=5)
            started = time.monotonic()
            empty = await bot.get_updates(offset=again[-1].update_id + 1, timeout=5)
            return batch, again, empty, time.monotonic() - started

    batch, again, empty, waited = run(go)
    assert [u.update_id for u in batch] == [first, first + 1]
    assert batch[0].message.text == "7/9"
    assert [u.callback_query.data for u in again] == ["score:importance:4"]
    assert empty == ()
    assert 0.3 <= waited < 3  # long-polled briefly (max_long_poll), not the full 5 s
    assert fake_telegram.pending_updates == []


def test_get_updates_wakes_when_an_update_arrives(fake_telegram: FakeTelegram) -> None:
    fake_telegram.max_long_poll = 3.0
    bot = make_bot(fake_telegram.token, fake_telegram.base_url)
    threading.Timer(0.2, fake_telegram.push_text, args=(42, "/start JOIN-K7Q2")).start()

    async def go() -> tuple[Any, float]:
        async with bot:
            started = time.monotonic()
            return await bot.get_updates(timeout=3), time.monotonic() - started

    updates, waited = run(go)
    assert updates[0].message.text == "/start JOIN-K7Q2"
    assert updates[0].message.entities[0].type == "bot_command"
    assert waited < 2


def test_ptb_application_polls_the_fake_and_replies(fake_telegram: FakeTelegram) -> None:
    """The polling path of ``dash serve`` without https: Application + Updater + getUpdates."""
    from telegram.ext import Application, MessageHandler, filters

    async def echo(update: telegram.Update, context: Any) -> None:
        await update.message.reply_text(f"ack {update.message.text}")

    async def go() -> None:
        app = (
            Application.builder().bot(make_bot(fake_telegram.token, fake_telegram.base_url)).build()
        )
        app.add_handler(MessageHandler(filters.TEXT, echo))
        async with app:
            await app.start()
            await app.updater.start_polling(poll_interval=0, timeout=1)
            fake_telegram.push_update(load_fixture("telegram_group_text"))
            await asyncio.to_thread(
                fake_telegram.wait_for, lambda: fake_telegram.sent_messages(), 5
            )
            await app.updater.stop()
            await app.stop()

    run(go)
    assert fake_telegram.sent_texts(-1001234567890) == ["ack 8 of 9"]
    methods = [c.method for c in fake_telegram.calls]
    assert methods[:3] == ["getMe", "deleteWebhook", "getUpdates"]  # PTB clears the webhook first
    assert fake_telegram.pending_updates == []  # Updater.stop() confirmed the offset


def test_get_updates_conflicts_with_webhook(fake_telegram: FakeTelegram) -> None:
    bot = make_bot(fake_telegram.token, fake_telegram.base_url)

    async def go() -> None:
        async with bot:
            await bot.set_webhook("https://dash.example.org/webhooks/telegram")
            await bot.get_updates()

    with pytest.raises(telegram.error.Conflict) as caught:
        run(go)
    assert classify_telegram_error(caught.value).kind is ErrorKind.CONFIGURATION


def test_429_raises_retry_after_with_seconds(fake_telegram: FakeTelegram) -> None:
    bot = make_bot(fake_telegram.token, fake_telegram.base_url)

    async def go() -> None:
        async with bot:
            fake_telegram.rate_limit(retry_after=7)
            await bot.send_message(1, "hi")

    with pytest.raises(telegram.error.RetryAfter) as caught:
        run(go)
    verdict = classify_telegram_error(caught.value)
    assert verdict.kind is ErrorKind.RETRY_AFTER and verdict.retry_after == 7.0
    assert verdict.retryable
    refused = fake_telegram.calls_to("sendMessage")[0]
    assert refused.status == 429 and fake_telegram.sent_messages() == []


def test_blocked_chat_is_forbidden_and_an_opt_out(fake_telegram: FakeTelegram) -> None:
    fake_telegram.block_chat(99)
    bot = make_bot(fake_telegram.token, fake_telegram.base_url)

    async def go() -> None:
        async with bot:
            await bot.send_message(100, "still fine")
            await bot.send_message(99, "hello?")

    with pytest.raises(telegram.error.Forbidden, match="(?i)blocked by the user") as caught:
        run(go)
    verdict = classify_telegram_error(caught.value)
    assert verdict.kind is ErrorKind.OPT_OUT and not verdict.retryable
    assert len(fake_telegram.sent_messages()) == 1


@pytest.mark.parametrize(
    ("configure", "exc_type", "kind"),
    [
        (lambda tg: tg.fail_next(1, status=500), telegram.error.NetworkError, ErrorKind.TRANSIENT),
        (lambda tg: tg.fail_next(1, status=502), telegram.error.NetworkError, ErrorKind.TRANSIENT),
        (lambda tg: tg.forget_chat(5), telegram.error.BadRequest, ErrorKind.PERMANENT),
        (
            lambda tg: tg.block_chat(5, "Forbidden: bot can't initiate conversation with a user"),
            telegram.error.Forbidden,
            ErrorKind.PERMANENT,
        ),
    ],
)
def test_telegram_faults_classify(
    fake_telegram: FakeTelegram, configure: Any, exc_type: type[Exception], kind: ErrorKind
) -> None:
    bot = make_bot(fake_telegram.token, fake_telegram.base_url)

    async def go() -> None:
        async with bot:
            configure(fake_telegram)
            await bot.send_message(5, "hi")

    with pytest.raises(exc_type) as caught:
        run(go)
    assert classify_telegram_error(caught.value).kind is kind


def test_slow_server_times_out_as_transient(fake_telegram: FakeTelegram) -> None:
    bot = telegram.Bot(
        fake_telegram.token,
        base_url=fake_telegram.base_url,
        request=telegram.request.HTTPXRequest(read_timeout=0.2),
    )

    async def go() -> None:
        async with bot:
            fake_telegram.slow(1.0)
            await bot.send_message(5, "hi")

    with pytest.raises(telegram.error.TimedOut) as caught:
        run(go)
    assert classify_telegram_error(caught.value).kind is ErrorKind.TRANSIENT
    fake_telegram.slow(0)


def test_wrong_token_is_a_configuration_error(fake_telegram: FakeTelegram) -> None:
    bot = make_bot("999:wrong", fake_telegram.base_url)

    with pytest.raises(telegram.error.InvalidToken) as caught:
        run(bot.initialize)
    assert classify_telegram_error(caught.value).kind is ErrorKind.CONFIGURATION


def test_enforced_limits_answer_429_and_counters_see_bursts(
    fake_telegram: FakeTelegram,
) -> None:
    fake_telegram.enforce_limits(per_second=30, per_chat_per_second=1, per_group_per_minute=20)
    bot = make_bot(fake_telegram.token, fake_telegram.base_url)

    async def go() -> list[Any]:
        async with bot:
            return await asyncio.gather(
                *(bot.send_message(7, f"n{i}") for i in range(3)),
                *(bot.send_message(1000 + i, "to many chats") for i in range(3)),
                return_exceptions=True,
            )

    results = run(go)
    refused = [r for r in results if isinstance(r, telegram.error.RetryAfter)]
    assert len(refused) == 2  # only one per second to chat 7
    assert all(classify_telegram_error(r).retry_after == 1.0 for r in refused)
    assert fake_telegram.max_sends_per_second(chat_id=7) == 3  # attempts
    assert fake_telegram.max_sends_per_second(chat_id=7, ok_only=True) == 1
    assert fake_telegram.max_sends_per_second() == 6


def test_group_per_minute_limit(fake_telegram: FakeTelegram) -> None:
    fake_telegram.enforce_limits(per_second=None, per_chat_per_second=None, per_group_per_minute=3)
    bot = make_bot(fake_telegram.token, fake_telegram.base_url)

    async def go() -> list[Any]:
        async with bot:
            return [
                await asyncio.gather(bot.send_message(-42, "x"), return_exceptions=True)
                for _ in range(4)
            ]

    results = [r[0] for r in run(go)]
    assert isinstance(results[-1], telegram.error.RetryAfter)
    assert fake_telegram.max_sends_per_minute(-42, ok_only=True) == 3


def test_fail_next_counts_down(fake_telegram: FakeTelegram) -> None:
    bot = make_bot(fake_telegram.token, fake_telegram.base_url)

    async def go() -> list[Any]:
        out: list[Any] = []
        async with bot:
            fake_telegram.fail_next(2, status=500, methods=["sendMessage"])
            for i in range(3):
                try:
                    out.append(await bot.send_message(1, f"try {i}"))
                except telegram.error.NetworkError as exc:
                    out.append(exc)
        return out

    out = run(go)
    assert [type(o) for o in out] == [
        telegram.error.NetworkError,
        telegram.error.NetworkError,
        telegram.Message,
    ]
    assert [c.status for c in fake_telegram.calls_to("sendMessage")] == [500, 500, 200]


def test_wait_for_returns_when_condition_holds(fake_telegram: FakeTelegram) -> None:
    bot = make_bot(fake_telegram.token, fake_telegram.base_url)

    def later() -> None:
        time.sleep(0.2)
        run(lambda: _send(bot, 3, "late"))

    threading.Thread(target=later).start()
    calls = fake_telegram.wait_for(lambda: fake_telegram.sent_messages(chat_id=3), timeout=5)
    assert calls[0].params["text"] == "late"
    with pytest.raises(AssertionError, match="not met"):
        fake_telegram.wait_for(lambda: fake_telegram.sent_messages(chat_id=4), timeout=0.1)


async def _send(bot: telegram.Bot, chat_id: int, text: str) -> None:
    async with bot:
        await bot.send_message(chat_id, text)


def test_max_in_window() -> None:
    assert max_in_window([], 1.0) == 0
    assert max_in_window([0.0, 0.5, 0.99, 1.0, 1.5], 1.0) == 3
    assert max_in_window([0.0, 1.0, 2.0], 1.0) == 1


# ------------------------------------------------------------------------------------------
# Twilio


def test_twilio_sms_create_and_fetch(fake_twilio: FakeTwilio) -> None:
    client = make_twilio_client(
        fake_twilio.account_sid, fake_twilio.auth_token, fake_twilio.api_base
    )
    message = client.messages.create(
        to="+15551230001",
        from_="+15550000000",
        body="Day 3: how many of today's patients had a risk assessment?",
        status_callback="http://127.0.0.1:9/webhooks/twilio/status",
    )
    assert message.sid.startswith("SM") and len(message.sid) == 34
    assert message.status == "queued" and message.error_code is None
    assert message.to == "+15551230001" and message.from_ == "+15550000000"
    assert message.num_media == "0" and message.num_segments == "1"

    fetched = client.messages(message.sid).fetch()
    assert fetched.body == message.body

    call = fake_twilio.sent_messages(to="+15551230001")[0]
    assert call.params["From"] == "+15550000000"
    assert call.params["StatusCallback"] == "http://127.0.0.1:9/webhooks/twilio/status"
    auth = call.request.headers["authorization"]
    assert auth.startswith("Basic ")
    assert fake_twilio.calls_to("Messages.fetch")[0].ok


def test_twilio_whatsapp_media_and_template(fake_twilio: FakeTwilio) -> None:
    client = make_twilio_client(
        fake_twilio.account_sid, fake_twilio.auth_token, fake_twilio.api_base
    )
    chart = client.messages.create(
        to="whatsapp:+5215512345678",
        from_="whatsapp:+15550000001",
        body="Your run chart",
        media_url=["http://127.0.0.1:8000/m/1.png", "http://127.0.0.1:8000/m/2.png"],
    )
    template = client.messages.create(
        to="whatsapp:+5215512345678",
        from_="whatsapp:+15550000001",
        content_sid="HX0123456789abcdef0123456789abcdef",
        content_variables='{"1": "Ana", "2": "5 West"}',
    )
    assert chart.num_media == "2"
    assert template.status == "queued"
    calls = fake_twilio.sent_messages(to="whatsapp:+5215512345678")
    assert calls[0].params["MediaUrl"] == [
        "http://127.0.0.1:8000/m/1.png",
        "http://127.0.0.1:8000/m/2.png",
    ]
    assert FakeTwilio.parsed_content_variables(calls[1]) == {"1": "Ana", "2": "5 West"}


def test_twilio_bad_credentials_are_401(fake_twilio: FakeTwilio) -> None:
    client = make_twilio_client(fake_twilio.account_sid, "wrong-token", fake_twilio.api_base)
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to="+15551230001", from_="+15550000000", body="x")
    assert caught.value.status == 401 and caught.value.code == 20003
    assert classify_twilio_error(caught.value).kind is ErrorKind.CONFIGURATION
    assert fake_twilio.sent_messages() == []


def test_twilio_opt_out_is_21610(fake_twilio: FakeTwilio) -> None:
    fake_twilio.opt_out("+15551230001")
    client = make_twilio_client(
        fake_twilio.account_sid, fake_twilio.auth_token, fake_twilio.api_base
    )
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to="+15551230001", from_="+15550000000", body="Day 4 prompt")
    assert caught.value.status == 400 and caught.value.code == 21610
    verdict = classify_twilio_error(caught.value)
    assert verdict.kind is ErrorKind.OPT_OUT and verdict.code == "21610"

    fake_twilio.opt_in("+15551230001")
    assert client.messages.create(to="+15551230001", from_="+15550000000", body="ok").sid


def test_twilio_whatsapp_window_closed(fake_twilio: FakeTwilio) -> None:
    fake_twilio.whatsapp_session_closed("whatsapp:+5215512345678")
    client = make_twilio_client(
        fake_twilio.account_sid, fake_twilio.auth_token, fake_twilio.api_base
    )
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(
            to="whatsapp:+5215512345678", from_="whatsapp:+15550000001", body="free form"
        )
    assert caught.value.code == 63016
    assert classify_twilio_error(caught.value).kind is ErrorKind.WINDOW_CLOSED
    # A template still goes out; SMS to the same number is not affected.
    assert client.messages.create(
        to="whatsapp:+5215512345678",
        from_="whatsapp:+15550000001",
        content_sid="HX0123456789abcdef0123456789abcdef",
    ).sid
    assert client.messages.create(to="+5215512345678", from_="+15550000000", body="sms").sid


def test_twilio_window_closed_async_mode_and_status_callback(fake_twilio: FakeTwilio) -> None:
    received: list[tuple[dict[str, list[str]], str]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            received.append((parse_qs(body), self.headers["X-Twilio-Signature"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{hook.server_address[1]}/webhooks/twilio/status"
    try:
        fake_twilio.whatsapp_session_closed("+5215512345678", mode="async")
        client = make_twilio_client(
            fake_twilio.account_sid, fake_twilio.auth_token, fake_twilio.api_base
        )
        msg = client.messages.create(
            to="whatsapp:+5215512345678",
            from_="whatsapp:+15550000001",
            body="free form",
            status_callback=url,
        )
        assert msg.status == "queued"  # accepted first, as Twilio does
        assert client.messages(msg.sid).fetch().error_code == 63016
        assert fake_twilio.send_status_callback(msg.sid) == 204
    finally:
        hook.shutdown()
        hook.server_close()
    form, signature = received[0]
    flat = {k: v[0] for k, v in form.items()}
    assert flat["MessageStatus"] == "failed" and flat["ErrorCode"] == "63016"
    assert RequestValidator(fake_twilio.auth_token).validate(url, flat, signature)
    assert classify_twilio_code(flat["ErrorCode"]).kind is ErrorKind.WINDOW_CLOSED


@pytest.mark.parametrize(
    ("configure", "status", "code", "kind"),
    [
        (lambda tw: tw.rate_limit(), 429, 20429, ErrorKind.RETRY_AFTER),
        (lambda tw: tw.fail_next(1, status=500), 500, 20500, ErrorKind.TRANSIENT),
        (lambda tw: tw.fail_next(1, status=503), 503, 20500, ErrorKind.TRANSIENT),
    ],
)
def test_twilio_faults_classify(
    fake_twilio: FakeTwilio, configure: Any, status: int, code: int, kind: ErrorKind
) -> None:
    configure(fake_twilio)
    client = make_twilio_client(
        fake_twilio.account_sid, fake_twilio.auth_token, fake_twilio.api_base
    )
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to="+15551230001", from_="+15550000000", body="x")
    assert (caught.value.status, caught.value.code) == (status, code)
    assert classify_twilio_error(caught.value).kind is kind
    # The fault is used up: the next send goes through.
    assert client.messages.create(to="+15551230001", from_="+15550000000", body="x").sid


def test_twilio_validation_errors(fake_twilio: FakeTwilio) -> None:
    client = make_twilio_client(
        fake_twilio.account_sid, fake_twilio.auth_token, fake_twilio.api_base
    )
    cases = [
        ({"to": "555-0101", "from_": "+15550000000", "body": "x"}, 21211),
        ({"to": "whatsapp:+15551230001", "from_": "+15550000000", "body": "x"}, 21910),
        ({"to": "+15551230001", "from_": "+15550000000", "body": "x" * 1601}, 21617),
    ]
    for kwargs, code in cases:
        with pytest.raises(TwilioRestException) as caught:
            client.messages.create(**kwargs)
        assert caught.value.code == code
        assert classify_twilio_error(caught.value).kind is ErrorKind.PERMANENT


def test_twilio_enforced_rate_per_sender(fake_twilio: FakeTwilio) -> None:
    fake_twilio.enforce_rate(per_second=1)
    client = make_twilio_client(
        fake_twilio.account_sid, fake_twilio.auth_token, fake_twilio.api_base
    )
    client.messages.create(to="+15551230001", from_="+15550000000", body="one")
    client.messages.create(to="+15551230002", from_="+15550000009", body="other sender")
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to="+15551230003", from_="+15550000000", body="two")
    assert caught.value.code == 20429
    assert fake_twilio.max_sends_per_second(from_="+15550000000") == 2
    assert fake_twilio.max_sends_per_second(from_="+15550000000", ok_only=True) == 1


def test_twilio_network_failure_is_transient() -> None:
    with socket.socket() as probe:  # a loopback port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_twilio_client("AC" + "0" * 32, "t", f"http://127.0.0.1:{port}")
    with pytest.raises(Exception) as caught:
        client.messages.create(to="+15551230001", from_="+15550000000", body="x")
    assert classify_twilio_error(caught.value).kind is ErrorKind.TRANSIENT


def test_async_twilio_client_uses_the_same_seam(fake_twilio: FakeTwilio) -> None:
    async def go() -> str:
        client = make_async_twilio_client(
            fake_twilio.account_sid, fake_twilio.auth_token, fake_twilio.api_base
        )
        try:
            message = await client.messages.create_async(
                to="+15551230001", from_="+15550000000", body="async"
            )
            return str(message.sid)
        finally:
            await client.http_client.session.close()

    sid = asyncio.run(go())
    assert sid in fake_twilio.messages


def test_rebase_url_keeps_path_and_query() -> None:
    base = "http://127.0.0.1:9999"
    assert (
        rebase_url("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?PageSize=5", base)
        == "http://127.0.0.1:9999/2010-04-01/Accounts/AC1/Messages.json?PageSize=5"
    )
    assert rebase_url("https://api.dublin.ie1.twilio.com/x", base) == "http://127.0.0.1:9999/x"
    assert rebase_url("https://messaging.twilio.com/v1/Services", base + "/msg/") == (
        "http://127.0.0.1:9999/msg/v1/Services"
    )
    assert rebase_url("https://example.com/x", base) == "https://example.com/x"
    assert rebase_url("https://eviltwilio.com/x", base) == "https://eviltwilio.com/x"


# ------------------------------------------------------------------------------------------
# Signing helpers and the socket guard


def test_twilio_signature_matches_the_validator() -> None:
    params = load_fixture("twilio_sms_inbound")
    url = "https://dash.example.org/webhooks/twilio"
    signature = twilio_signature("tok", url, params)
    assert RequestValidator("tok").validate(url, params, signature)
    assert not RequestValidator("other").validate(url, params, signature)
    assert twilio_headers("tok", url, params)["X-Twilio-Signature"] == signature


def test_telegram_headers() -> None:
    assert telegram_headers("s")["X-Telegram-Bot-Api-Secret-Token"] == "s"
    assert "X-Telegram-Bot-Api-Secret-Token" not in telegram_headers(None)


def test_fixtures_are_copied_into_the_repo() -> None:
    assert load_fixture("telegram_start_deep_link")["message"]["text"] == "/start JOIN-K7Q2"
    assert load_fixture("twilio_whatsapp_inbound.json")["From"].startswith("whatsapp:+")


def test_non_loopback_connections_are_blocked() -> None:
    # TEST-NET-1 (RFC 5737): never routed, and pytest-socket refuses before any packet leaves.
    # The error is a RuntimeError, not an OSError: code catching OSError will not swallow it.
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("192.0.2.1", 443), timeout=0.5)
    with pytest.raises(SocketConnectBlockedError):
        urllib.request.urlopen("http://192.0.2.1/", timeout=0.5)  # noqa: S310


def test_non_loopback_blocked_for_httpx_via_ptb() -> None:
    bot = make_bot("1:x", "http://192.0.2.1/bot")
    # PTB wraps httpx/anyio's ExceptionGroup around the blocked connect in a NetworkError.
    with pytest.raises(telegram.error.NetworkError, match="SocketConnectBlockedError"):
        run(bot.initialize)


@pytest.fixture
def two_servers() -> Iterator[tuple[FakeTelegram, FakeTwilio]]:
    with FakeTelegram() as tg, FakeTwilio() as tw:
        yield tg, tw


def test_servers_use_distinct_free_ports(two_servers: tuple[FakeTelegram, FakeTwilio]) -> None:
    tg, tw = two_servers
    assert tg.port != tw.port
    assert tg.base_url.startswith("http://127.0.0.1:") and tg.base_url.endswith("/bot")
    assert tw.api_base == f"http://127.0.0.1:{tw.port}"
