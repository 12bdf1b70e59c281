"""`dash worker --role tick --role delivery`: the scheduler and outbound delivery as processes.

Leader locks and the delivery supervisor, shared by `dash worker` (dash.app.cli.worker) and
`dash serve` (dash.app.server). Part of the wiring package dash.app, so it may import the
scheduler and the bots. How a deployment scales out (docs/PERFORMANCE.md, "Several processes"):

- tick: any number of processes on any number of machines. Claims take due agenda rows with
  FOR UPDATE SKIP LOCKED, so two tickers never run the same row (SQLite: one writer).
- delivery: any number of processes, but each channel account (a Telegram bot, a Twilio sender
  number) is sent from by one process at a time, its leader. Leadership is a PostgreSQL
  session advisory lock (pg_try_advisory_lock) held on a connection of its own: when the leader
  dies its connection closes, the lock is released and a standby takes over on its next look
  (`standby_seconds`). The leader's in-process limiter (bots.ratelimit) then sees every send on
  that account, so the combined rate can never pass the limit; the outbox claim (SKIP LOCKED
  plus leases) still guarantees one sender per row.

  Why not a limiter shared in the database: the provider limits are per bot, per chat and per
  group in sliding windows; a shared bucket would put a row lock on every send (a hot row
  written 30+ times a second per bot) and still could not settle a send when it lands. One
  process sends 30 messages/s without effort, so the provider, not the sender, is the limit.

On SQLite (one machine by definition) the lock is an flock on a file beside the database.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # `dash --help` imports ROLES from here without loading SQLAlchemy or asyncio
    import asyncio

    from sqlalchemy import Connection

    from dash.context import AppContext
    from dash.db import Database
    from dash.settings import Settings

log = logging.getLogger("dash.workers")

ROLES = ("tick", "delivery")
#: How often a standby looks whether a channel's leader is gone (and a leader checks its lock).
STANDBY_SECONDS = 5.0


def channel_account(settings: Settings, channel: str) -> str:
    """The account whose rate limit a send on `channel` counts against (the leadership key)."""
    from bots.registry import type_for

    try:
        return type_for(channel).account(settings)
    except KeyError:
        return channel


def lock_number(key: str) -> int:
    """A stable signed 64-bit number for `key`, as pg_try_advisory_lock(bigint) wants."""
    return int.from_bytes(hashlib.sha256(f"dash:{key}".encode()).digest()[:8], "big", signed=True)


class ChannelLock:
    """Leadership of one key across processes: advisory lock (PostgreSQL) or flock (SQLite)."""

    def __init__(self, db: Database, key: str) -> None:
        self.db = db
        self.key = key
        self._conn: Connection | None = None
        self._file: IO[bytes] | None = None
        self._held = False

    def _lock_path(self) -> Path | None:
        database = self.db.engine.url.database
        if not database or database == ":memory:":
            return None
        safe = "".join(c if c.isalnum() else "_" for c in self.key)
        return Path(f"{database}.{safe}.lock")

    def acquire(self) -> bool:
        """Become leader if nobody is; True while this process leads (never blocks)."""
        if self._held:
            return self.still_held()
        if self.db.is_sqlite:
            path = self._lock_path()
            if path is None:
                self._held = True  # an in-memory database lives in this process only
                return True
            handle = path.open("ab")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                return False
            self._file, self._held = handle, True
            return True
        from sqlalchemy import text

        conn = self.db.engine.connect()
        try:
            got = bool(
                conn.execute(
                    text("SELECT pg_try_advisory_lock(:n)"), {"n": lock_number(self.key)}
                ).scalar()
            )
            conn.commit()  # the lock is the session's; no transaction stays open
        except Exception:
            conn.invalidate()
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn, self._held = conn, True
        return True

    def still_held(self) -> bool:
        """False once the lock's connection is gone (the database then released the lock)."""
        if not self._held:
            return False
        if self._conn is None:
            return True
        from sqlalchemy import text

        try:
            self._conn.execute(text("SELECT 1"))
            self._conn.commit()
            return True
        except Exception:
            log.warning("lost the connection holding leadership of %s", self.key)
            self._drop()
            return False

    def release(self) -> None:
        if self._conn is not None:
            from sqlalchemy import text

            with contextlib.suppress(Exception):
                self._conn.execute(
                    text("SELECT pg_advisory_unlock(:n)"), {"n": lock_number(self.key)}
                )
                self._conn.commit()
        self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.invalidate()  # never back to the pool with a lock on it
                self._conn.close()
            self._conn = None
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        self._held = False


SendersFactory = Callable[["AppContext"], Mapping[str, Any]]


def _default_senders(ctx: AppContext) -> Mapping[str, Any]:
    from bots.registry import build_senders

    return build_senders(ctx)


class LedDelivery:
    """Runs bots.delivery.DeliveryWorker for the channel accounts this process leads.

    Leadership is looked at every `standby_seconds`. When the set of led channels changes the
    running worker finishes its pass and stops, and a new one starts with fresh senders and the
    same limiter (so the windows of recent sends carry over).
    """

    def __init__(
        self,
        ctx: AppContext,
        *,
        senders_factory: SendersFactory = _default_senders,
        standby_seconds: float = STANDBY_SECONDS,
        worker_options: dict[str, Any] | None = None,
    ) -> None:
        from bots.ratelimit import RateLimiter

        self.ctx = ctx
        self.senders_factory = senders_factory
        self.standby_seconds = standby_seconds
        self.worker_options = dict(worker_options or {})
        self.limiter = RateLimiter(ctx.settings.bulk_share)
        self.channels = sorted(senders_factory(ctx))
        self.locks = {
            ch: ChannelLock(ctx.db, channel_account(ctx.settings, ch)) for ch in self.channels
        }
        self.led: frozenset[str] = frozenset()

    def _look(self) -> frozenset[str]:
        led = set()
        for channel, lock in self.locks.items():
            try:
                if lock.acquire():
                    led.add(channel)
            except Exception:
                log.exception("could not ask for leadership of %s", lock.key)
        return frozenset(led)

    async def run(self, stop: asyncio.Event) -> None:
        """Lead what can be led, send for it, re-check; until `stop` is set."""
        import asyncio

        from bots.delivery import DeliveryWorker

        task: asyncio.Task[None] | None = None
        worker_stop = asyncio.Event()
        try:
            while not stop.is_set():
                led = await asyncio.to_thread(self._look)
                if led != self.led or (task is not None and task.done()):
                    if task is not None:
                        worker_stop.set()
                        await task
                        task = None
                    if led != self.led:
                        log.info(
                            "delivery leadership: %s", ", ".join(sorted(led)) or "none (standby)"
                        )
                    self.led = led
                    if led:
                        all_senders = self.senders_factory(self.ctx)
                        worker = DeliveryWorker(
                            self.ctx,
                            {ch: all_senders[ch] for ch in sorted(led)},
                            limiter=self.limiter,
                            **self.worker_options,
                        )
                        worker_stop = asyncio.Event()
                        task = asyncio.create_task(worker.run(worker_stop), name="delivery")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.standby_seconds)
        finally:
            if task is not None:
                worker_stop.set()
                with contextlib.suppress(Exception):
                    await task
            for lock in self.locks.values():
                await asyncio.to_thread(lock.release)


async def run_roles(
    ctx: AppContext,
    roles: tuple[str, ...],
    stop: asyncio.Event,
    *,
    standby_seconds: float = STANDBY_SECONDS,
    worker_options: dict[str, Any] | None = None,
) -> None:
    """Run the given roles in this process until `stop` is set."""
    import asyncio

    scheduler = None
    if "tick" in roles:
        from scheduler.runner import SchedulerService

        scheduler = SchedulerService(ctx)
        scheduler.start()
    try:
        if "delivery" in roles:
            await LedDelivery(
                ctx, standby_seconds=standby_seconds, worker_options=worker_options
            ).run(stop)
        else:
            await stop.wait()
    finally:
        if scheduler is not None:
            await asyncio.to_thread(scheduler.shutdown)


def load_role_modules(roles: tuple[str, ...]) -> None:
    """Import what the roles run now, so that settle_heap() freezes it with the rest."""
    if "tick" in roles:
        import scheduler.runner  # noqa: F401
    if "delivery" in roles:
        from bots import registry

        registry.preload()
