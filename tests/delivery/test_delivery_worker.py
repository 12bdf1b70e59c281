"""The delivery worker against the fake Telegram Bot API: sends, retries, order, leases."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from bots.delivery import DeliveryWorker, OutgoingItem
from dash.actions import outbox
from dash.actions.outbox import retry_outbox
from dash.actions.queueing import queue_message
from dash.context import AppContext
from dash.db import Database
from dash.errors import UserError
from dash.models import Message, OutboxItem, Person, Priority
from dash.queries.outbox import due_outbox
from dash.timeutil import utcnow
from tests.fakes.telegram_api import FakeTelegram
from tests.support.delivery import add_person, configure, drain, telegram_env, worker_for


@pytest.fixture
def tg(monkeypatch: pytest.MonkeyPatch, db: Database, fake_telegram: FakeTelegram) -> AppContext:
    # Per-chat pacing is tested in test_delivery_limits; here it would only slow things down.
    return configure(
        monkeypatch, db, **telegram_env(fake_telegram), telegram_per_chat_per_second="100"
    )


def queue(db: Database, chat: int | str, text: str, **kwargs: Any) -> int:
    with db.transaction() as s:
        message = queue_message(s, channel="telegram", address=str(chat), text=text, **kwargs)
        assert message is not None
        return int(message.id)


def outbox_of(db: Database, message_id: int) -> tuple[OutboxItem, Message]:
    with db.transaction() as s:
        item = s.execute(select(OutboxItem).where(OutboxItem.message_id == message_id)).scalar_one()
        return item, item.message


def test_reply_reaches_the_chat_and_records_the_provider_id(
    tg: AppContext, db: Database, fake_telegram: FakeTelegram
) -> None:
    message_id = queue(db, 7300100200, "Thanks, 7 of 9 recorded for Monday.")

    assert drain(worker_for(tg, "telegram")) == 1

    assert fake_telegram.sent_texts(7300100200) == ["Thanks, 7 of 9 recorded for Monday."]
    item, message = outbox_of(db, message_id)
    assert item.state == "sent" and item.attempts == 1 and item.sent_at is not None
    assert message.status == "sent"
    assert message.provider_id == "7300100200:1"  # chat and message id: unique across chats


def test_buttons_arrive_as_an_inline_keyboard(
    tg: AppContext, db: Database, fake_telegram: FakeTelegram
) -> None:
    buttons = [[{"text": str(n), "data": f"score:importance:{n}"} for n in range(1, 6)]]
    queue(
        db,
        42,
        "How important is this topic for your unit? Reply 1-5.",
        payload={"buttons": buttons},
    )

    drain(worker_for(tg, "telegram"))

    (call,) = fake_telegram.sent_messages(42)
    keyboard = call.params["reply_markup"]["inline_keyboard"]
    assert [b["text"] for b in keyboard[0]] == ["1", "2", "3", "4", "5"]
    assert keyboard[0][3]["callback_data"] == "score:importance:4"


def test_a_failed_send_is_retried_with_backoff_and_the_chat_keeps_its_order(
    tg: AppContext, db: Database, fake_telegram: FakeTelegram
) -> None:
    first = queue(db, 55, "first")
    queue(db, 55, "second")
    queue(db, 66, "other chat")
    fake_telegram.fail_next(1, 502)
    # One send at a time, so the failure surely hits the first send (chat 55's "first").
    worker = worker_for(tg, "telegram", concurrency=1)
    t0 = utcnow()

    drain(worker, now=t0)

    # The other chat is not held up; chat 55's second message waits behind its first.
    assert fake_telegram.sent_texts(66) == ["other chat"]
    assert fake_telegram.sent_texts(55) == []
    item, message = outbox_of(db, first)
    assert item.state == "queued" and item.attempts == 1
    assert message.status == "queued" and message.error_code == "network"
    backoff = tg.settings.backoff_base_seconds
    assert item.next_attempt_at >= t0 + timedelta(seconds=backoff)

    assert drain(worker, now=t0 + timedelta(seconds=backoff / 2)) == 0
    drain(worker, now=t0 + timedelta(seconds=backoff + 0.1))

    assert fake_telegram.sent_texts(55) == ["first", "second"]
    item, message = outbox_of(db, first)
    assert item.state == "sent" and item.attempts == 2 and message.error_code is None


def test_after_the_last_attempt_the_failure_stays_visible_until_a_person_retries(
    monkeypatch: pytest.MonkeyPatch, tg: AppContext, db: Database, fake_telegram: FakeTelegram
) -> None:
    ctx = configure(monkeypatch, db, max_attempts="2")
    message_id = queue(db, 77, "Your chart is ready")
    fake_telegram.fail_next(2, 500)
    worker = worker_for(ctx, "telegram")
    t0 = utcnow()

    drain(worker, now=t0)
    drain(worker, now=t0 + timedelta(minutes=5))

    item, message = outbox_of(db, message_id)
    assert item.state == "failed" and item.attempts == 2
    assert message.status == "failed" and message.error_code == "network"
    assert item.last_error and "Internal Server Error" in item.last_error
    assert fake_telegram.sent_texts(77) == []
    assert drain(worker, now=t0 + timedelta(hours=1)) == 0  # never again by itself

    with db.transaction() as s:
        retry_outbox(s, item.id)
    drain(worker)

    assert fake_telegram.sent_texts(77) == ["Your chart is ready"]
    assert outbox_of(db, message_id)[1].status == "sent"
    with pytest.raises(UserError, match="only failed ones"), db.transaction() as s:
        retry_outbox(s, item.id)


def test_an_unknown_chat_fails_at_once_with_the_reason(
    tg: AppContext, db: Database, fake_telegram: FakeTelegram
) -> None:
    fake_telegram.forget_chat(88)
    message_id = queue(db, 88, "hello")

    drain(worker_for(tg, "telegram"))

    item, message = outbox_of(db, message_id)
    assert item.state == "failed" and item.attempts == 1
    assert message.status == "failed" and message.error_code == "chat_not_found"
    assert "chat not found" in (message.error_detail or "").lower()


def test_a_stale_lease_is_sent_again_once_and_recorded(
    tg: AppContext, db: Database, fake_telegram: FakeTelegram
) -> None:
    message_id = queue(db, 99, "Daily measure: how many of today's patients ...")
    t0 = utcnow()
    # A worker claims the row and is killed before it records anything.
    with db.transaction() as s:
        (row,) = due_outbox(s, channels=["telegram"], now=t0)
        outbox.lease_outbox(s, row, worker_id="killed-worker", now=t0, lease_seconds=30)
    worker = worker_for(tg, "telegram")

    assert drain(worker, now=t0 + timedelta(seconds=10)) == 0  # the lease still holds
    assert drain(worker, now=t0 + timedelta(seconds=31)) == 1
    assert drain(worker, now=t0 + timedelta(seconds=120)) == 0

    assert len(fake_telegram.sent_texts(99)) == 1
    item, message = outbox_of(db, message_id)
    assert item.state == "sent" and item.attempts == 2
    assert "killed-worker" in (item.last_error or "")
    assert message.status == "sent"


def test_replies_go_before_bulk_and_bulk_keeps_to_its_share(
    monkeypatch: pytest.MonkeyPatch, tg: AppContext, db: Database, fake_telegram: FakeTelegram
) -> None:
    ctx = configure(monkeypatch, db, telegram_per_second="5", bulk_share="0.8")
    for chat in range(1, 7):
        queue(db, chat, f"Session reminder {chat}", priority=Priority.BULK, kind="prompt")
    queue(db, 500, "Thanks for your plan!")  # queued last, a reply

    drain(worker_for(ctx, "telegram"))

    assert fake_telegram.sent_texts(500) == ["Thanks for your plan!"]
    # Bulk stops once 80% of the 5-per-second limit is in use (the reply counts too):
    # the rest stays free for replies.
    bulk_sent = [c for c in fake_telegram.sent_messages() if c.params["chat_id"] != 500]
    assert len(bulk_sent) == 3


def test_bulk_alone_never_takes_the_whole_limit(
    monkeypatch: pytest.MonkeyPatch, tg: AppContext, db: Database, fake_telegram: FakeTelegram
) -> None:
    ctx = configure(monkeypatch, db, telegram_per_second="5", bulk_share="0.8")
    for chat in range(1, 8):
        queue(db, chat, f"Session reminder {chat}", priority=Priority.BULK, kind="prompt")
    worker = worker_for(ctx, "telegram")

    drain(worker)
    assert len(fake_telegram.sent_messages()) == 4
    queue(db, 500, "Thanks for your plan!")
    drain(worker)  # within the same second: the reply still fits
    assert fake_telegram.sent_texts(500) == ["Thanks for your plan!"]


def test_messages_queued_before_an_opt_out_are_not_sent(
    tg: AppContext, db: Database, fake_telegram: FakeTelegram
) -> None:
    person_id = add_person(db, name="Ana", telegram=5150)
    with db.transaction() as s:
        person = s.get(Person, person_id)
        assert person is not None
        queued = queue_message(
            s, channel="telegram", address="5150", text="Tomorrow's prompt", person=person
        )
        assert queued is not None
        message_id = queued.id
    with db.transaction() as s:
        person = s.get(Person, person_id)
        assert person is not None
        person.opted_out_at = utcnow() + timedelta(seconds=1)  # said STOP after it was queued

    drain(worker_for(tg, "telegram"))

    assert fake_telegram.sent_texts(5150) == []
    item, message = outbox_of(db, message_id)
    assert item.state == "cancelled" and message.status == "skipped"


def test_a_worker_without_a_channel_leaves_its_messages_queued(
    tg: AppContext, db: Database, fake_telegram: FakeTelegram
) -> None:
    message_id = queue(db, 1234, "hello")

    assert drain(DeliveryWorker(tg, {})) == 0

    assert outbox_of(db, message_id)[0].state == "queued"


def test_a_person_who_blocked_the_bot_is_opted_out(
    tg: AppContext, db: Database, fake_telegram: FakeTelegram
) -> None:
    person_id = add_person(db, name="Flo", telegram=6160)
    fake_telegram.block_chat(6160)
    with db.transaction() as s:
        person = s.get(Person, person_id)
        assert person is not None
        queued = queue_message(s, channel="telegram", address="6160", text="Hi", person=person)
        assert queued is not None
        message_id = queued.id

    drain(worker_for(tg, "telegram"))

    item, message = outbox_of(db, message_id)
    assert item.state == "failed" and message.error_code == "403"
    with db.transaction() as s:
        person = s.get(Person, person_id)
        assert person is not None and person.opted_out
        assert "blocked" in (person.opted_out_reason or "")
    with db.transaction() as s:  # nothing more is queued for them
        person = s.get(Person, person_id)
        assert person is not None
        assert (
            queue_message(s, channel="telegram", address="6160", text="Hi again", person=person)
            is None
        )


def test_two_workers_never_send_the_same_message(
    monkeypatch: pytest.MonkeyPatch, tg: AppContext, db: Database, fake_telegram: FakeTelegram
) -> None:
    ctx = configure(monkeypatch, db, telegram_per_second="200")
    for chat in range(1, 61):
        queue(db, chat, f"Prompt for {chat}")
    workers = [worker_for(ctx, "telegram", batch_size=10) for _ in range(2)]

    async def both() -> list[int]:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(w.run(stop)) for w in workers]
        deadline = asyncio.get_running_loop().time() + 15
        while len(fake_telegram.sent_messages()) < 60:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.gather(*tasks)
        return [c.params["chat_id"] for c in fake_telegram.sent_messages()]

    chats = asyncio.run(both())

    assert sorted(chats) == list(range(1, 61))  # each exactly once
    with db.transaction() as s:
        attempts = set(s.execute(select(OutboxItem.attempts)).scalars())
    assert attempts == {1}  # nobody sent a row twice


class _HangsFromTheFifth:
    """The real Telegram sender, except that every send from the 5th on never returns."""

    def __init__(self, ctx: AppContext, concurrency: int) -> None:
        from bots.telegram.sender import TelegramSender

        self.real = TelegramSender(ctx)
        self.calls = 0
        self.hanging = 0
        self.concurrency = concurrency
        self.all_slots_hang = asyncio.Event()

    async def send(self, item: OutgoingItem) -> str:
        self.calls += 1
        if self.calls < 5:
            return await self.real.send(item)
        self.hanging += 1
        if self.hanging == self.concurrency:
            self.all_slots_hang.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable: the event is never set")

    async def aclose(self) -> None:
        await self.real.aclose()


def test_a_worker_stopped_mid_batch_has_recorded_what_it_sent_and_resends_none_of_it(
    tg: AppContext, db: Database, fake_telegram: FakeTelegram
) -> None:
    for chat in range(1, 11):
        queue(db, chat, f"Prompt for {chat}")
    t0 = utcnow()
    sender = _HangsFromTheFifth(tg, concurrency=4)
    worker = DeliveryWorker(tg, {"telegram": sender}, batch_size=50, concurrency=4)

    async def stopped_mid_batch() -> None:
        task = asyncio.create_task(worker.drain_once(now=t0))
        # Every slot is stuck: each earlier send was recorded before its slot freed.
        await asyncio.wait_for(sender.all_slots_hang.wait(), timeout=15)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await sender.aclose()

    asyncio.run(stopped_mid_batch())

    delivered = {c.params["chat_id"] for c in fake_telegram.sent_messages()}
    assert len(delivered) == 4
    with db.transaction() as s:
        rows = list(s.execute(select(OutboxItem)).scalars())
        sent = {int(r.address) for r in rows if r.state == "sent"}
        provider_ids = {r.message.provider_id for r in rows if r.state == "sent"}
    assert sent == delivered  # nothing the chats received is left to be sent again
    assert provider_ids == {f"{chat}:1" for chat in delivered}

    # Another worker, once the stopped one's leases ran out, sends only what never arrived.
    later = t0 + timedelta(seconds=tg.settings.delivery_lease_seconds + 1)
    assert drain(worker_for(tg, "telegram"), now=later) == 6
    chats = [c.params["chat_id"] for c in fake_telegram.sent_messages()]
    assert sorted(chats) == list(range(1, 11))  # each chat got its prompt exactly once


class _RepeatsAnId:
    """The real Telegram sender, but the first two sends finish together under one id."""

    def __init__(self, ctx: AppContext) -> None:
        from bots.telegram.sender import TelegramSender

        self.real = TelegramSender(ctx)
        self.calls = 0
        self.both_out = asyncio.Event()

    async def send(self, item: OutgoingItem) -> str:
        real_id = await self.real.send(item)
        self.calls += 1
        if self.calls > 2:
            return real_id
        if self.calls == 2:
            self.both_out.set()
        await self.both_out.wait()  # finishing together, their results are written together
        return "repeated:1"

    async def aclose(self) -> None:
        await self.real.aclose()


def test_a_result_that_cannot_be_recorded_is_not_taken_as_sent_and_goes_again(
    tg: AppContext, db: Database, fake_telegram: FakeTelegram
) -> None:
    first, second = queue(db, 501, "Prompt for 501"), queue(db, 502, "Prompt for 502")
    t0 = utcnow()
    worker = DeliveryWorker(tg, {"telegram": _RepeatsAnId(tg)})

    assert drain(worker, now=t0) == 2

    # Provider ids are unique per channel: one result is written, the other cannot be. The
    # one written is not lost with it, and the other is not reported as sent.
    rows = {chat: outbox_of(db, message_id) for chat, message_id in ((501, first), (502, second))}
    states = sorted((item.state, message.status) for item, message in rows.values())
    assert states == [("sending", "sending"), ("sent", "sent")]
    (recorded,) = [chat for chat, (item, _) in rows.items() if item.state == "sent"]
    (lost,) = {501, 502} - {recorded}
    assert rows[recorded][1].provider_id == "repeated:1"

    # Its lease runs out and it is sent again: better twice than never.
    later = t0 + timedelta(seconds=tg.settings.delivery_lease_seconds + 1)
    assert drain(worker, now=later) == 1
    assert fake_telegram.sent_texts(lost) == [f"Prompt for {lost}"] * 2
    assert fake_telegram.sent_texts(recorded) == [f"Prompt for {recorded}"]
    item, message = outbox_of(db, second if lost == 502 else first)
    assert item.state == "sent" and item.attempts == 2
    assert message.status == "sent" and message.provider_id == f"{lost}:2"


def test_results_written_together_are_written_one_by_one_when_the_group_fails() -> None:
    from bots.delivery import _GroupRecorder, _Outcome

    writes: list[list[int]] = []

    def write(outcomes: list[_Outcome]) -> None:
        writes.append([o.item.outbox_id for o in outcomes])
        if len(outcomes) > 1 or outcomes[0].item.outbox_id == 2:
            raise RuntimeError("could not serialize access")

    def outcome(outbox_id: int) -> _Outcome:
        item = OutgoingItem(outbox_id, outbox_id, "telegram", str(outbox_id), "hello")
        return _Outcome(item, provider_id=f"{outbox_id}:1")

    async def main() -> list[bool]:
        recorder = _GroupRecorder(write)
        return list(await asyncio.gather(*(recorder.record(outcome(i)) for i in (1, 2, 3))))

    assert asyncio.run(main()) == [True, False, True]
    assert writes == [[1, 2, 3], [1], [2], [3]]


def test_a_lease_that_runs_out_at_once_still_sends_each_message_once(
    tg: AppContext, db: Database, fake_telegram: FakeTelegram
) -> None:
    """A full claim's successor is claimed while the first is still being handed out; with
    a lease that is over as soon as it is taken (a very slow provider, a short
    DASH_DELIVERY_LEASE_SECONDS), that claim must still pass over the rows not yet sent."""
    chats = [7300200000 + n for n in range(24)]  # under the bot's 30 a second: one pass
    for chat in chats:
        queue(db, chat, f"Prompt for {chat}")

    sent = drain(worker_for(tg, "telegram", lease_seconds=0, batch_size=8, concurrency=2))

    assert sent == 24
    assert all(fake_telegram.sent_texts(chat) == [f"Prompt for {chat}"] for chat in chats)


def test_behind_a_proxy_sends_go_through_it(monkeypatch: pytest.MonkeyPatch, db: Database) -> None:
    """Hospitals often reach the internet through a proxy set in the environment: httpx
    honours HTTP(S)_PROXY, so the send lanes keep to it there instead of the leaner path."""
    seen: list[tuple[str, bytes]] = []

    class Proxy(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.path, body))
            if self.path.endswith("/getMe"):
                result: dict[str, Any] = {"id": 123, "is_bot": True, "first_name": "Dash"}
            else:
                result = {"message_id": 7, "date": 0, "chat": {"id": 4242, "type": "private"}}
            answer = json.dumps({"ok": True, "result": result}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_: Any) -> None:
            pass

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
        ctx = configure(
            monkeypatch,
            db,
            telegram_token="123:ABC",
            telegram_api_base="http://api.telegram.test/bot",  # reached only through the proxy
        )
        queue(db, 4242, "Through the hospital's proxy")

        assert drain(worker_for(ctx, "telegram")) == 1
    finally:
        proxy.shutdown()

    sends = [
        body for path, body in seen if path == "http://api.telegram.test/bot123:ABC/sendMessage"
    ]
    assert len(sends) == 1 and b"hospital" in sends[0]


def test_a_worker_that_stops_leaves_no_connection_open(
    tg: AppContext, db: Database, fake_telegram: FakeTelegram
) -> None:
    # `dash worker` logged "Unclosed client session" for every send lane when it stopped:
    # lanes post without Bot.initialize, so Bot.shutdown skipped their aiohttp sessions.
    for n in range(4):
        queue(db, 7300100300 + n, f"Prompt {n}")
    complaints: list[str] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(
            lambda _loop, context: complaints.append(str(context.get("message")))
        )
        stop = asyncio.Event()
        task = asyncio.create_task(worker_for(tg, "telegram").run(stop))
        while len(fake_telegram.calls_to("sendMessage")) < 4:
            await asyncio.sleep(0.02)
        stop.set()
        await task
        del task  # the worker with it, as when `dash worker` exits
        gc.collect()  # an open session complains when it is collected, to this loop
        await asyncio.sleep(0)

    asyncio.run(main())
    assert len(fake_telegram.calls_to("sendMessage")) == 4
    assert complaints == []
