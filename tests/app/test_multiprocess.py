"""Several worker processes on one PostgreSQL database, sending through the fake Bot API.

Three `dash worker` processes (each both tick and delivery, as a deployment on three machines
would run them) share 1,000 due daily-prompt rows, one message per reporter (the day's measures
go in one prompt). The fake Telegram server counts every send and
answers 429 to any send over the bot's limit, so "no 429, at most the limit in any second" is
measured where Telegram would measure it. PostgreSQL only: SQLite is one machine, one writer. The test and its processes run on one
clock (tests.support.clock) the day before the population's cohort starts, whatever the date.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import func, select

from bench import population
from dash.app.workers import ChannelLock
from dash.db import Database
from dash.migrate import alembic_config
from dash.models import AgendaItem, OutboxItem
from dash.settings import Settings
from dash.timeutil import use_clock
from tests.fakes.telegram_api import FakeTelegram
from tests.support.clock import POPULATION_EVE, RunningClock
from tests.support.processes import module_command, python_path

postgres_only = pytest.mark.postgres_only(
    reason="several processes sharing one database: PostgreSQL only"
)

ROOT = Path(__file__).resolve().parents[2]
TEAMS = 500  # two measures each: 1,000 due rows, one message per reporter
#: The bot-wide limit for this run: Telegram's own order (30/s), below what one sender manages,
#: so the limit binds and the test sees whether three processes together keep to it (at 150/s
#: it never bound: the processes sent ~40-70/s, bench/bench_multiprocess.py).
LIMIT = 25


@pytest.fixture
def clock() -> Iterator[RunningClock]:
    """The test's clock, here and in the workers it starts."""
    running_clock = RunningClock(POPULATION_EVE)
    with use_clock(running_clock):
        yield running_clock


def _start_workers(
    settings: Settings, fake: FakeTelegram, clock: RunningClock, n: int, *extra: str
) -> list:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASH_")}
    env.update(clock.environ())
    env.update(
        DASH_DATABASE_URL=settings.database_url,
        DASH_SECRET_KEY="test-secret-key-not-for-production",
        DASH_TELEGRAM_TOKEN=fake.token,
        DASH_TELEGRAM_API_BASE=fake.base_url,
        DASH_TELEGRAM_PER_SECOND=str(LIMIT),
        DASH_TICK_SECONDS="1",
        DASH_DELIVERY_POLL_SECONDS="0.2",
        DASH_LOG_LEVEL="WARNING",
        PYTHONPATH=python_path(),
    )
    procs = []
    for _ in range(n):
        # A file, not a pipe: _stderr() reads it while the process runs; _stop() closes it.
        err = tempfile.TemporaryFile()  # noqa: SIM115
        proc = subprocess.Popen(
            module_command("dash.app.cli.worker", "--standby-seconds", "0.5", *extra),
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        proc.err_file = err
        procs.append(proc)
    return procs


def _stderr(proc: subprocess.Popen) -> str:
    """What the process has written to stderr so far."""
    return os.pread(proc.err_file.fileno(), 1 << 20, 0).decode(errors="replace")


def _all_running(procs: list) -> bool:
    """Every worker has started its roles (`dash worker` says so on stderr)."""
    return all("dash worker:" in _stderr(proc) for proc in procs)


def _stop(procs: list) -> list[str]:
    errors = []
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        errors.append(_stderr(proc))
        proc.err_file.close()
    return errors


def _prepare(
    db: Database, teams: int, clock: RunningClock, *, due: bool = True
) -> population.Population:
    """The population, its prompts due now (unless `due` is False), the tables marked current."""
    now = clock()
    pop = population.build(db, teams, timezone=population.midday_zone(now), compile_agendas=False)
    if due:
        assert population.add_due_prompts(db, pop, now - timedelta(seconds=30)) == 2 * teams
    cfg = alembic_config(db)
    with db.engine.begin() as conn:  # the tables came from the models; mark them current
        cfg.attributes["connection"] = conn
        command.stamp(cfg, "head")
    return pop


def _wait(predicate, timeout: float, procs: list) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not done within {timeout}s")
        for proc in procs:
            if proc.poll() not in (None, -signal.SIGKILL):
                raise AssertionError(f"a worker exited with {proc.returncode}")
        time.sleep(0.1)


def test_one_leader_per_channel_account(db: Database) -> None:
    # Two locks stand for two processes (PostgreSQL: two sessions; SQLite: two open files).
    first = ChannelLock(db, "telegram:123456")
    second = ChannelLock(db, "telegram:123456")
    other_account = ChannelLock(db, "sms:AC1:+15550000000")
    try:
        assert first.acquire()
        assert not second.acquire(), "a second process may not lead the same bot"
        assert other_account.acquire(), "another account has its own leader"
        assert first.acquire(), "the leader keeps leading"
        first.release()
        assert second.acquire(), "a standby takes over once the leader lets go"
    finally:
        for lock in (first, second, other_account):
            lock.release()


@postgres_only
def test_three_processes_send_each_prompt_once_within_the_bot_limit(
    settings: Settings, db: Database, fake_telegram: FakeTelegram, clock: RunningClock
) -> None:
    fake_telegram.enforce_limits(per_second=LIMIT, per_chat_per_second=1, per_group_per_minute=20)
    pop = _prepare(db, TEAMS, clock, due=False)

    procs = _start_workers(settings, fake_telegram, clock, 3)
    try:
        # The prompts fall due once all three tick: on a busy machine one process could start
        # seconds before the others and claim every row, and the test would show no sharing.
        _wait(lambda: _all_running(procs), 120, procs)
        due = clock() - timedelta(seconds=30)
        assert population.add_due_prompts(db, pop, due) == 2 * TEAMS
        _wait(lambda: len(fake_telegram.sent_messages()) >= TEAMS, 300, procs)
        time.sleep(1.0)  # anything sent twice would arrive now
    finally:
        errors = _stop(procs)

    sends = fake_telegram.calls_to("sendMessage")
    assert [c.status for c in sends if not c.ok] == [], "a send was refused (429) or failed"
    per_chat = Counter(int(c.params["chat_id"]) for c in sends)
    assert set(per_chat) == set(pop.reporter_chat_ids)
    assert set(per_chat.values()) == {1}, "every reporter gets the day's one prompt exactly once"
    assert fake_telegram.max_sends_per_second() <= LIMIT
    with db.transaction() as s:
        states = dict(
            s.execute(select(OutboxItem.state, func.count()).group_by(OutboxItem.state)).all()
        )
        attempts = s.execute(select(func.max(OutboxItem.attempts))).scalar_one()
        claimed_by = s.execute(
            select(AgendaItem.claimed_by)
            .where(AgendaItem.state == "done", AgendaItem.claimed_by.is_not(None))
            .distinct()
        ).all()
    assert states == {"sent": TEAMS} and attempts == 1
    assert len(claimed_by) >= 2, "the ticks shared the due rows"
    assert not any("Traceback" in e for e in errors), errors


@postgres_only
def test_a_standby_takes_over_when_the_leader_dies(
    settings: Settings, db: Database, fake_telegram: FakeTelegram, clock: RunningClock
) -> None:
    teams = 100
    pop = _prepare(db, teams, clock)
    # A slow provider keeps the first leader busy long enough to be killed mid-run.
    fake_telegram.slow(0.05)
    procs = _start_workers(settings, fake_telegram, clock, 2, "--lease-seconds", "3")
    try:
        _wait(lambda: len(fake_telegram.sent_messages()) >= 20, 120, procs)
        leader = _leader(db, procs)
        leader.send_signal(signal.SIGKILL)
        leader.wait()
        fake_telegram.slow(0)
        _wait(lambda: _all_sent(db, teams), 120, procs)
    finally:
        _stop(procs)

    per_chat = Counter(int(c.params["chat_id"]) for c in fake_telegram.sent_messages())
    assert set(per_chat) == set(pop.reporter_chat_ids), "every prompt arrived"
    # Only rows the dead leader had claimed may go twice, and each such row says so.
    twice = sum(n - 1 for n in per_chat.values())
    with db.transaction() as s:
        flagged = s.execute(
            select(func.count(OutboxItem.id)).where(
                OutboxItem.last_error.like("%expired mid-send%")
            )
        ).scalar_one()
    assert twice <= flagged


def _leader(db: Database, procs: list) -> subprocess.Popen:
    """The process whose rows are being sent (claimed_by holds host:pid:…)."""
    with db.transaction() as s:
        owners = s.execute(
            select(OutboxItem.claimed_by).where(OutboxItem.claimed_by.is_not(None))
        ).scalars()
        pids = {int(o.split(":")[1]) for o in owners if o}
    if not pids:  # between batches: whoever sent most recently is recorded on no row; retry
        time.sleep(0.05)
        return _leader(db, procs)
    (pid,) = pids
    return next(p for p in procs if p.pid == pid)


def _all_sent(db: Database, n: int) -> bool:
    with db.transaction() as s:
        return (
            s.execute(
                select(func.count(OutboxItem.id)).where(OutboxItem.state == "sent")
            ).scalar_one()
            >= n
        )
