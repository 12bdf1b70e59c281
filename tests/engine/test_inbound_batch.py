"""Messages that arrive together are stored and processed together, and nobody can tell.

A busy webhook hands what arrived while the previous batch ran to dash.engine's
handle_inbound_many (bots/intake.py): one INSERT, one processing transaction. Each person must
get exactly the replies they would get one message at a time; a repeat still counts once; a
message that breaks costs only itself; a payload that is not the provider's is refused alone.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from itertools import count

import httpx
import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from bench import population
from bots.intake import Intake
from dash.context import AppContext
from dash.db import Database
from dash.engine import handle_inbound, handle_inbound_many
from dash.inbound import InboundMessage
from dash.models import Message, Team
from dash.timeutil import utcnow
from tests.fakes.telegram_api import FakeTelegram
from tests.support.delivery import channel_app, configure, free_port, served, telegram_env
from tests.support.engine import Chat, enrol, make_cohort
from tests.support.webhooks import Poster, telegram_update

_ids = count(1)


def console(address: str, text: str, provider_id: str | None = None) -> InboundMessage:
    return InboundMessage(
        channel="console",
        provider_id=provider_id or f"batch-{next(_ids)}",
        address=address,
        sender=address,
        text=text,
        received_at=utcnow(),
        raw={"text": text},
    )


def enrolment_script(code: str, unit: str) -> list[str]:
    """A key contact's whole enrolment, each step answering the bot's last question."""
    return [f"JOIN {code}", "Maria Lopez", "St Mary's Hospital", unit, "5", "4", "3", "4", "5"]


def thread(db: Database, address: str) -> list[tuple[str, str]]:
    """(direction, text) of everything to and from `address`, in order: messages in first
    (a batch stores them all before it answers any), then the replies."""
    with db.transaction() as s:
        rows = s.execute(
            select(Message.direction, Message.text)
            .where(Message.address == address)
            .order_by(Message.direction, Message.id)
        ).all()
    return [(d, t) for d, t in rows]


def test_a_conversation_sent_in_one_batch_gets_the_replies_it_gets_one_by_one(
    ctx: AppContext, db: Database
) -> None:
    code = make_cohort(ctx).enrolment_code
    calm_kc, calm_leader = "+15551230001", "+15551230002"
    batch_kc, batch_leader = "+15551239001", "+15551239002"
    for text in [
        *enrolment_script(code, "5 West"),
        "Ana Ruiz, Chief Nursing Officer",
        calm_leader,
    ]:
        handle_inbound(ctx, console(calm_kc, text))
    handle_inbound(ctx, console(calm_leader, "yes"))

    # Every step at once, and the leader's YES right behind the request it answers.
    batch = [
        console(batch_kc, text)
        for text in [
            *enrolment_script(code, "5 East"),
            "Ana Ruiz, Chief Nursing Officer",
            batch_leader,
        ]
    ]
    results = handle_inbound_many(ctx, [*batch, console(batch_leader, "yes")])

    assert [r.duplicate for r in results] == [False] * (len(batch) + 1)

    def same(texts: list[tuple[str, str]], unit: str, leader: str) -> list[tuple[str, str]]:
        masked = []
        for direction, text in texts:
            text = text.replace(unit, "UNIT").replace(leader, "LEADER")
            text = re.sub(r"team code is \S+", "team code is CODE", text)
            text = re.sub(r"JOIN [A-Z0-9]{6}\b", "JOIN CODE", text)
            masked.append((direction, re.sub(r"/signoff/\S+", "/signoff/LINK", text)))
        return masked

    calm = same(thread(db, calm_kc), "5 West", calm_leader)
    assert any("team code is CODE" in text for _, text in calm), "the calm team was enrolled"
    assert same(thread(db, batch_kc), "5 East", batch_leader) == calm
    assert same(thread(db, batch_leader), "5 East", batch_leader) == same(
        thread(db, calm_leader), "5 West", calm_leader
    )


def test_a_new_members_first_messages_in_one_batch_get_the_replies_they_get_one_by_one(
    ctx: AppContext, db: Database
) -> None:
    """The batch remembers each sender, their question and their teams (remember_people): a
    person who joins, is asked their name, answers, reports and asks for help within one
    batch must see each step's effect, as one message at a time does."""
    chat = Chat(ctx)
    cohort = make_cohort(ctx)
    calm_team = enrol(chat, cohort, kc="+15551231001", leader="+15551231002", unit="5 West")
    batch_team = enrol(chat, cohort, kc="+15551232001", leader="+15551232002", unit="6 East")

    def script(code: str) -> list[str]:
        return [f"JOIN {code}", "Ana Ruiz", "we tried the checklist on nights", "3/4", "3/4"]

    calm, batched = "+15551231009", "+15551232009"
    for text in [*script(str(calm_team.join_code)), "help", "5 of 9 yesterday", "STOP"]:
        handle_inbound(ctx, console(calm, text))
    handle_inbound_many(
        ctx,
        [
            console(batched, text)
            for text in [*script(str(batch_team.join_code)), "help", "5 of 9 yesterday", "STOP"]
        ],
    )

    def masked(address: str, team: Team) -> list[tuple[str, str]]:
        return [
            (d, t.replace(str(team.join_code), "CODE").replace(team.name, "TEAM"))
            for d, t in thread(db, address)
        ]

    expected = masked(calm, calm_team)
    assert len([d for d, _ in expected if d == "out"]) >= 6, expected
    assert masked(batched, batch_team) == expected


def test_a_repeat_inside_a_batch_counts_once(ctx: AppContext, db: Database) -> None:
    chat = Chat(ctx)
    first = console("+15551230007", "hello", provider_id="twice")
    again = console("+15551230007", "hello", provider_id="twice")
    other = console("+15551230008", "hello")

    results = handle_inbound_many(ctx, [first, again, other])

    assert results[0].message_id == results[1].message_id
    assert [r.duplicate for r in results] == [False, True, False]
    assert [d for d, _ in thread(db, "+15551230007")].count("in") == 1
    assert len(chat.replies("+15551230007")) == 1, "answered once"
    assert len(chat.replies("+15551230008")) == 1


def test_identical_replies_are_never_held_inside_a_batch_or_one_by_one(
    ctx: AppContext, db: Database
) -> None:
    """Replies of a batch are written together at its end; like replies one by one, none is
    held by the cap on identical text (it holds only scheduled messages)."""
    for text in ["hello?"] * 5:
        handle_inbound(ctx, console("+15551230011", text))
    handle_inbound_many(ctx, [console("+15551230012", text) for text in ["hello?"] * 5])

    def statuses(address: str) -> list[str]:
        with db.transaction() as s:
            return list(
                s.execute(
                    select(Message.status)
                    .where(Message.address == address, Message.direction == "out")
                    .order_by(Message.id)
                ).scalars()
            )

    calm = statuses("+15551230011")
    assert calm == ["queued"] * 5
    assert statuses("+15551230012") == calm


def test_a_message_that_breaks_costs_only_itself(ctx: AppContext, db: Database) -> None:
    code = make_cohort(ctx).enrolment_code
    # "join" from an SMS address that is no phone number: a broken adapter's message, which
    # the database refuses when the sender is made a person (its E.164 check).
    broken = InboundMessage(
        channel="sms",
        provider_id="SM-broken",
        address="not-a-phone",
        sender="not-a-phone",
        text=f"JOIN {code}",
        received_at=utcnow(),
        raw={"Body": f"JOIN {code}"},
    )
    handle_inbound(ctx, broken)
    assert _kept_for_the_coach(db, "SM-broken"), "the same message alone fails too"

    chat = Chat(ctx)
    fine = [console(f"+1555123{n:04d}", f"JOIN {code}") for n in range(3)]
    broken_again = InboundMessage(**{**broken.__dict__, "provider_id": "SM-broken-2"})
    results = handle_inbound_many(ctx, [fine[0], broken_again, fine[1], fine[2]])

    assert all(r.message_id is not None for r in results)
    assert _kept_for_the_coach(db, "SM-broken-2")
    for message in fine:
        assert "What is your name?" in chat.text(message.address)


def _kept_for_the_coach(db: Database, provider_id: str) -> bool:
    with db.transaction() as s:
        message = s.execute(select(Message).where(Message.provider_id == provider_id)).scalar_one()
        return message.error_code == "processing_failed" and message.needs_reply


def test_messages_submitted_together_share_two_commits(ctx: AppContext, db: Database) -> None:
    commits = 0

    def committed(_: object) -> None:
        nonlocal commits
        commits += 1

    messages = [console(f"+1555124{n:04d}", "we tried the checklist") for n in range(40)]
    intake = Intake(ctx)
    chat = Chat(ctx)

    async def burst() -> list[object]:
        return await asyncio.gather(*(intake.submit(partial(lambda m: m, m)) for m in messages))

    event.listen(db.engine, "commit", committed)
    try:
        results = asyncio.run(burst())
    finally:
        event.remove(db.engine, "commit", committed)

    assert [inbound for inbound, _ in results] == messages
    assert len({result.message_id for _, result in results}) == 40
    assert all(len(chat.replies(m.address)) == 1 for m in messages)
    # One for the INSERT of all 40 (none on PostgreSQL: it commits by itself), one for the
    # processing: one by one, that was 80.
    assert commits <= 2, commits


@pytest.fixture
def tg(monkeypatch: pytest.MonkeyPatch, db: Database, fake_telegram: FakeTelegram) -> AppContext:
    return configure(monkeypatch, db, **telegram_env(fake_telegram))


def test_a_burst_over_http_is_answered_each_alone_and_a_bad_update_refused_alone(
    tg: AppContext, db: Database
) -> None:
    updates = [
        telegram_update(5000 + n, 720_000 + n, f"day {n}: checklist done") for n in range(30)
    ]
    bad = telegram_update(5999, 720_999, "fine")
    bad["message"]["chat"]["id"] = "not-an-id"
    with served(channel_app(tg), free_port()) as origin, httpx.Client(timeout=60) as client:
        poster = Poster(tg, client, origin)
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(poster.telegram, [*updates[:15], bad, *updates[15:]]))

    codes = [a.status_code for a in answers]
    assert codes == [200] * 15 + [400] + [200] * 15
    stored = thread_counts(db)
    assert stored == {str(720_000 + n): (1, 1) for n in range(30)}, "each stored and answered once"


def thread_counts(db: Database) -> dict[str, tuple[int, int]]:
    """address: (messages in, replies out)."""
    counts: dict[str, tuple[int, int]] = {}
    with db.transaction() as s:
        for address, direction in s.execute(select(Message.address, Message.direction)):
            inbound, outbound = counts.get(address, (0, 0))
            counts[address] = (inbound + (direction == "in"), outbound + (direction == "out"))
    return counts


@pytest.mark.postgres_only(reason="only PostgreSQL lets two batches write at once")
def test_two_batches_that_deadlock_each_get_every_message_answered(
    ctx: AppContext, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Two lanes each take a burst of the same two people, in opposite orders: each batch
    locks its first person, then waits for the other's. PostgreSQL breaks the deadlock by
    failing one; that batch must then go one message at a time, not answer 5xx."""
    first, second = (str(c) for c in population.build(db, 2).reporter_chat_ids)
    chat = Chat(ctx)
    met = threading.Barrier(2, timeout=10)
    flushes = threading.local()

    def after_first_flush(*_: object) -> None:
        flushes.count = getattr(flushes, "count", 0) + 1
        if flushes.count == 1:  # each batch holds its first person's row now
            met.wait()

    def batch(a: str, b: str) -> list[object]:
        return list(handle_inbound_many(ctx, [telegram(a, "checklist done"), telegram(b, "ok")]))

    event.listen(Session, "after_flush", after_first_flush)
    try:
        with caplog.at_level(logging.INFO, "dash.engine"), ThreadPoolExecutor(2) as pool:
            results = [pool.submit(batch, first, second), pool.submit(batch, second, first)]
            done = [r.result(timeout=60) for r in results]
    finally:
        event.remove(Session, "after_flush", after_first_flush)

    assert all(len(d) == 2 for d in done)
    assert "one by one" in caplog.text, "the two batches did not deadlock: nothing was tested"
    assert len(chat.replies(first, "telegram")) == 2
    assert len(chat.replies(second, "telegram")) == 2


def telegram(chat: str, text: str) -> InboundMessage:
    return InboundMessage(
        channel="telegram",
        provider_id=f"update-{next(_ids)}",
        address=chat,
        sender=chat,
        text=text,
        received_at=utcnow(),
        raw={"message": {"chat": {"id": int(chat), "type": "private"}, "text": text}},
    )
