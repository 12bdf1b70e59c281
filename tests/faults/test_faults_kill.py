"""SIGKILL in the middle of a fan-out and of an inbound burst; after a restart nothing is lost.

Real processes (`dash worker`, `dash dispatch`, `dash serve`) are killed with SIGKILL, as a
machine losing power would stop them, then started again. The fake Telegram Bot API (in this
process, on 127.0.0.1) sees every send. Afterwards:

- every due prompt, and every reply to every inbound message, has arrived;
- a message arrives at most twice, and only if its outbox row records a second attempt (the
  dead process may have sent it just before dying: at-least-once, recorded);
- every inbound update is stored once, and each person reads what a calm conversation gives.

The delivery lease is set to 5 s (DASH_DELIVERY_LEASE_SECONDS) so the restart takes over the
dead process's rows within seconds instead of a minute.

The fan-out tests and the processes they start run on one clock (tests.support.clock) that
starts at noon the day before the population's cohort begins, so every coach digest is still
ahead and the due prompts are the only work, on whatever date the suite runs.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from bench import population
from bots.delivery import MAX_CONCURRENT_SENDS
from dash.db import Database
from dash.models import AgendaItem, Message, OutboxItem
from dash.settings import Settings
from dash.timeutil import use_clock
from tests.fakes.signing import telegram_headers
from tests.fakes.telegram_api import FakeTelegram
from tests.support.clock import POPULATION_EVE, RunningClock
from tests.support.delivery import free_port
from tests.support.figures import record
from tests.support.processes import (
    DashProcess,
    dash_env,
    healthy,
    prepare_database,
    running,
    wait_until,
)
from tests.support.webhooks import TELEGRAM_PATH, telegram_update

TEAMS = 80  # one daily prompt each, naming both measures (two agenda rows)


def deployment_env(settings: Settings, fake: FakeTelegram, **extra: str) -> dict[str, str]:
    return dash_env(
        database_url=settings.database_url,
        secret_key="test-secret-key-not-for-production",
        telegram_token=fake.token,
        telegram_api_base=fake.base_url,
        telegram_per_second="60",
        telegram_per_chat_per_second="60",
        delivery_lease_seconds="5",
        delivery_poll_seconds="0.1",
        tick_seconds="1",
        backoff_base_seconds="0.2",
        **extra,
    )


def outbox_states(db: Database) -> Counter[str]:
    with db.transaction() as s:
        return Counter(
            dict(s.execute(select(OutboxItem.state, func.count()).group_by(OutboxItem.state)).all())
        )


def all_sent(db: Database, at_least: int) -> Callable[[], bool]:
    def check() -> bool:
        states = outbox_states(db)
        return states.get("sent", 0) >= at_least and set(states) == {"sent"}

    return check


def flagged_rows(db: Database) -> int:
    """Outbox rows sent again because the process holding them died mid-send."""
    with db.transaction() as s:
        return int(
            s.execute(
                select(func.count(OutboxItem.id)).where(
                    OutboxItem.attempts >= 2, OutboxItem.last_error.like("%expired mid-send%")
                )
            ).scalar_one()
        )


def doubled_and_flagged(db: Database, fake: FakeTelegram) -> tuple[int, int]:
    """(prompts that arrived twice, outbox rows whose lease expired mid-send).

    Each reporter's two prompts differ, so a repeated text is a repeated message. Fails if
    anything arrived three times or more.
    """
    arrivals = Counter(
        (str(c.params["chat_id"]), str(c.params.get("text"))) for c in fake.sent_messages()
    )
    assert max(arrivals.values()) <= 2, arrivals.most_common(3)
    return sum(1 for n in arrivals.values() if n == 2), flagged_rows(db)


@pytest.fixture
def clock() -> Iterator[RunningClock]:
    """The fan-out tests' clock, here and in the processes they start."""
    running_clock = RunningClock(POPULATION_EVE)
    with use_clock(running_clock):
        yield running_clock


def prompts_population(db: Database, clock: RunningClock) -> population.Population:
    prepare_database(db)
    now = clock()
    pop = population.build(db, TEAMS, timezone=population.midday_zone(now), compile_agendas=False)
    assert population.add_due_prompts(db, pop, now - timedelta(seconds=30)) == 2 * TEAMS
    return pop


def check_every_prompt_arrived(
    db: Database, fake: FakeTelegram, pop: population.Population
) -> None:
    per_chat = Counter(int(c.params["chat_id"]) for c in fake.sent_messages())
    texts = {chat: {str(c.params["text"]) for c in fake.sent_messages(chat)} for chat in per_chat}
    assert set(per_chat) == set(pop.reporter_chat_ids), "a reporter got no prompt"
    assert all(len(t) == 1 for t in texts.values()), "a reporter got the day's prompt twice"
    with db.transaction() as s:
        states = Counter(s.execute(select(AgendaItem.state)).scalars())
    # Later steps the tick compiled stay pending; the due prompts are all done, none skipped.
    assert states["done"] == 2 * TEAMS and not states.keys() & {"claimed", "skipped"}, states


def test_a_worker_killed_mid_fan_out_loses_nothing_after_restart(
    settings: Settings,
    db: Database,
    fake_telegram: FakeTelegram,
    tmp_path: Path,
    clock: RunningClock,
) -> None:
    pop = prompts_population(db, clock)
    fake_telegram.slow(0.05)  # sends take a little while, so the kill lands mid-fan-out
    env = deployment_env(settings, fake_telegram)
    args = ["dash.app.cli.worker", "--standby-seconds", "0.3"]
    first = DashProcess(args, env, tmp_path / "worker-1.log", clock).start()
    try:
        wait_until(lambda: len(fake_telegram.sent_messages()) >= 20, 60, "first sends", first)
        first.kill()
    finally:
        first.stop()
    sent_before = len(fake_telegram.sent_messages())
    assert sent_before < TEAMS, "the fan-out finished before the kill: nothing was tested"
    fake_telegram.slow(0)

    restarted = time.monotonic()
    with running(args, env, tmp_path / "worker-2.log", clock) as second:
        wait_until(all_sent(db, TEAMS), 60, "every prompt sent after restart", second)
    recovery = time.monotonic() - restarted

    check_every_prompt_arrived(db, fake_telegram, pop)
    doubled, flagged = doubled_and_flagged(db, fake_telegram)
    assert doubled <= flagged, "a message arrived twice without a recorded second attempt"
    assert doubled <= MAX_CONCURRENT_SENDS, "more resent than were in flight at the kill"
    record(
        "SIGKILL mid fan-out (dash worker)",
        queued=TEAMS,
        delivered_before_kill=sent_before,
        delivered=TEAMS,
        lost=0,
        duplicated=doubled,
        flagged_rows=flagged,
        recovery_seconds=round(recovery, 2),
    )


def test_dispatch_killed_mid_fan_out_is_finished_by_the_next_dispatch(
    settings: Settings,
    db: Database,
    fake_telegram: FakeTelegram,
    tmp_path: Path,
    clock: RunningClock,
) -> None:
    pop = prompts_population(db, clock)
    fake_telegram.slow(0.05)
    env = deployment_env(settings, fake_telegram)
    now = clock().isoformat()
    first = DashProcess(
        ["dash", "dispatch", "--now", now], env, tmp_path / "d1.log", clock
    ).start()
    try:
        wait_until(lambda: len(fake_telegram.sent_messages()) >= 20, 60, "first sends", first)
        first.kill()
    finally:
        first.stop()
    sent_before = len(fake_telegram.sent_messages())
    assert sent_before < TEAMS, "dispatch finished before the kill: nothing was tested"
    fake_telegram.slow(0)

    restarted = time.monotonic()
    runs = 0
    while not all_sent(db, TEAMS)():
        runs += 1
        assert runs <= 10, f"still not all sent after {runs} runs: {outbox_states(db)}"
        time.sleep(1.0)  # the dead run's leases (5 s) run out
        again = DashProcess(
            ["dash", "dispatch", "--now", clock().isoformat()],
            env,
            tmp_path / f"d{runs + 1}.log",
            clock,
        ).start()
        assert again.proc is not None
        assert again.proc.wait(timeout=60) == 0, again.output()
    recovery = time.monotonic() - restarted

    check_every_prompt_arrived(db, fake_telegram, pop)
    doubled, flagged = doubled_and_flagged(db, fake_telegram)
    assert doubled <= flagged
    assert doubled <= MAX_CONCURRENT_SENDS, "more resent than were in flight at the kill"
    record(
        "SIGKILL mid fan-out (dash dispatch)",
        queued=TEAMS,
        delivered_before_kill=sent_before,
        delivered=TEAMS,
        lost=0,
        duplicated=doubled,
        flagged_rows=flagged,
        dispatch_runs_after_restart=runs,
        recovery_seconds=round(recovery, 2),
    )


# -- dash serve killed during an inbound burst ------------------------------------------------

BURST_PEOPLE = 40
WEBHOOK_SECRET = "burst-test-webhook-secret"
TEXTS = ["hello", "JOIN NOSUCHCODE", "HELP"]


class Provider:
    """Telegram's side of the webhook: posts each update until it is answered 200."""

    def __init__(self, origin: str, secret: str) -> None:
        self.url = origin + TELEGRAM_PATH
        self.headers = telegram_headers(secret)
        self.refused = 0  # connection refused or reset while the server was down
        self.errors = 0  # 5xx answers

    def deliver(self, update: dict[str, object], deadline: float) -> None:
        with httpx.Client(timeout=10) as client:
            while time.monotonic() < deadline:
                try:
                    answer = client.post(self.url, json=update, headers=self.headers)
                except httpx.TransportError:
                    self.refused += 1
                    time.sleep(0.1)
                    continue
                if answer.status_code == 200:
                    return
                assert answer.status_code >= 500, answer.text
                self.errors += 1
                time.sleep(0.1)
        raise AssertionError(f"update {update['update_id']} never accepted")


@pytest.fixture
def serve(
    settings: Settings, db: Database, fake_telegram: FakeTelegram, tmp_path: Path
) -> Iterator[tuple[str, Callable[[str], DashProcess]]]:
    prepare_database(db)
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    env = deployment_env(
        settings, fake_telegram, public_url=origin, telegram_webhook_secret=WEBHOOK_SECRET
    )
    started: list[DashProcess] = []

    def start(name: str) -> DashProcess:
        process = DashProcess(
            ["dash", "serve", "--port", str(port)], env, tmp_path / f"{name}.log"
        ).start()
        started.append(process)
        wait_until(lambda: healthy(origin), 60, f"{name} healthy", process)
        return process

    yield origin, start
    for process in started:
        process.stop()


def test_serve_killed_during_an_inbound_burst_loses_and_doubles_nothing(
    serve: tuple[str, Callable[[str], DashProcess]],
    settings: Settings,
    db: Database,
    fake_telegram: FakeTelegram,
) -> None:
    origin, start = serve
    provider = Provider(origin, WEBHOOK_SECRET)
    first = start("serve-1")

    # A calm conversation first: what every person should read.
    calm_user = 720_000
    for n, text in enumerate(TEXTS):
        provider.deliver(telegram_update(n + 1, calm_user, text), time.monotonic() + 30)
    wait_until(
        lambda: len(fake_telegram.sent_messages(calm_user)) >= len(TEXTS), 30, "calm replies"
    )
    time.sleep(0.5)
    calm = fake_telegram.sent_texts(calm_user)
    calm_counts = Counter(calm)

    # The burst: each person's messages in order, people in parallel; kill mid-way.
    deadline = time.monotonic() + 90

    def person(p: int) -> None:
        for n, text in enumerate(TEXTS):
            provider.deliver(telegram_update(1000 * p + n, 720_000 + p, text), deadline)

    with ThreadPoolExecutor(max_workers=BURST_PEOPLE) as pool:
        futures = [pool.submit(person, p) for p in range(1, BURST_PEOPLE + 1)]
        wait_until(lambda: _inbound(db) >= len(TEXTS) + 10, 30, "burst under way", interval=0.01)
        first.kill()
        stored_at_kill = _inbound(db)
        time.sleep(0.5)
        restarted = time.monotonic()
        second = start("serve-2")
        for future in futures:
            future.result()
        accepted = time.monotonic()
        expected = len(TEXTS) * (BURST_PEOPLE + 1)
        wait_until(lambda: _inbound(db, processed=True) == expected, 30, "all processed", second)
        wait_until(
            lambda: all(
                not calm_counts - Counter(fake_telegram.sent_texts(720_000 + p))
                for p in range(1, BURST_PEOPLE + 1)
            ),
            60,
            "every reply delivered",
            second,
        )
        wait_until(lambda: set(outbox_states(db)) == {"sent"}, 30, "outbox drained", second)
    recovered = time.monotonic()

    assert stored_at_kill < expected, "the burst was over before the kill: nothing was tested"
    with db.transaction() as s:
        per_update = Counter(
            s.execute(select(Message.provider_id).where(Message.direction == "in")).scalars()
        )
    assert len(per_update) == expected and set(per_update.values()) == {1}
    doubled = 0
    for p in range(1, BURST_PEOPLE + 1):
        got = fake_telegram.sent_texts(720_000 + p)
        assert list(dict.fromkeys(got)) == list(dict.fromkeys(calm)), f"person {p}: {got}"
        extra = Counter(got) - calm_counts
        assert all(n <= 1 for n in extra.values()), f"person {p} got a reply 3 times: {got}"
        doubled += sum(extra.values())
    flagged = flagged_rows(db)
    assert doubled <= flagged, "a reply arrived twice without a recorded second attempt"
    assert doubled <= MAX_CONCURRENT_SENDS
    record(
        "SIGKILL during an inbound burst (dash serve)",
        updates=expected,
        stored_at_kill=stored_at_kill,
        stored=expected,
        lost=0,
        stored_twice=0,
        replies_duplicated=doubled,
        provider_retries_refused=provider.refused,
        provider_retries_5xx=provider.errors,
        seconds_to_accept_all_after_restart=round(accepted - restarted, 2),
        seconds_to_deliver_all_after_restart=round(recovered - restarted, 2),
    )


def _inbound(db: Database, processed: bool = False) -> int:
    with db.transaction() as s:
        query = select(func.count(Message.id)).where(Message.direction == "in")
        if processed:
            query = query.where(Message.status == "processed")
        return int(s.execute(query).scalar_one())
