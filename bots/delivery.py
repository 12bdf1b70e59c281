"""The delivery worker: turns outbox rows into provider sends, politely and exactly once-ish.

It claims due rows under a lease, sends each through its channel's Sender within the rate
limits (bots.ratelimit), records the provider's id, and decides what a failure means using
bots.errors: retry later (backoff, or the provider's retry_after), follow a migrated chat,
record an opt-out, or give up visibly so a person can press retry (retry_outbox).

A process killed mid-send leaves its rows "sending"; once the lease expires another pass
sends them again (the attempt count and the row's note record it). One chat's messages go
out one at a time in order; different chats go out concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from bots.channel import ChannelType
from bots.errors import DeliveryError, ErrorKind
from bots.ratelimit import RateLimiter, Ticket, channel_limit, limits_for
from dash.actions import outbox, undelivered
from dash.actions.people import group_gone
from dash.context import AppContext
from dash.models import Message, OutboxItem, OutboxState, Person, Priority
from dash.queries.outbox import due_outbox
from dash.timeutil import utcnow

log = logging.getLogger("bots.delivery")

#: A send that takes longer than this is abandoned as a timeout (well inside the lease,
#: DASH_DELIVERY_LEASE_SECONDS: how long a claimed row belongs to one worker).
SEND_TIMEOUT_SECONDS = 45.0
#: Sends in flight at once per worker (each holds its slot until its result is committed, so
#: this is also the most a crash can send twice). A slot's turn is a round trip plus a group
#: commit, so more slots make larger groups; docs/PERFORMANCE.md has the measurements.
MAX_CONCURRENT_SENDS = 16
#: The shortest rest between passes while rate-limited (the limiter's own granularity).
MIN_LIMITED_PAUSE_SECONDS = 0.002
#: Under a rate limit a claim takes the places that free within this long, each send
#: waiting for its own: one claim serves a quarter second of sends, and each goes the
#: moment its place frees instead of one pass (a transaction) per freed place.
CLAIM_AHEAD_SECONDS = 0.25
#: How long a channel rests after the provider rejected our credentials or sender.
CONFIGURATION_PAUSE_SECONDS = 60.0


@dataclass(frozen=True)
class OutgoingItem:
    """One claimed outbox row with what a sender needs, detached from the database."""

    outbox_id: int
    message_id: int
    channel: str
    address: str
    text: str
    payload: dict[str, Any] = field(default_factory=dict)
    priority: int = Priority.REPLY
    attempts: int = 1
    person_id: int | None = None
    team_id: int | None = None
    language: str = "en"
    #: When the person last wrote from this address (channels with a reply window read it).
    last_inbound_at: datetime | None = None


def last_inbound(person: Person | None, channel: str, address: str) -> datetime | None:
    """When `person` last wrote from the address a message to them goes to."""
    for row in person.addresses if person is not None else ():
        if row.channel == channel and address in (row.chat_id, row.address):
            return row.last_inbound_at
    return None


class SendFailed(Exception):
    """Raised by a Sender with the provider failure already classified (bots.errors)."""

    def __init__(self, error: DeliveryError) -> None:
        super().__init__(f"{error.kind}: {error.detail}")
        self.error = error


@runtime_checkable
class Sender(Protocol):
    """A channel's way out. Returns the provider's id for the message, raises SendFailed."""

    async def send(self, item: OutgoingItem) -> str: ...


@dataclass
class _Outcome:
    item: OutgoingItem
    provider_id: str | None = None
    error: DeliveryError | None = None


class _GroupRecorder:
    """Records finished sends together: whatever finished while one write ran goes in the next.

    `record()` returns once the outcome is committed, so the caller's slot is not reused
    before its result is in the database (the crash-duplicate bound stays the sends in
    flight), while one transaction and one thread hop serve many sends under load.

    A group whose write raises is written again one outcome at a time, so one bad result
    (or a passing database error) does not cost the others theirs; an outcome that still
    cannot be written is reported as not recorded: its row stays "sending" and is sent
    again when its lease runs out (better twice than never).
    """

    def __init__(self, write: Callable[[list[_Outcome]], None]) -> None:
        self._write = write
        self._waiting: list[tuple[_Outcome, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, outcome: _Outcome) -> bool:
        """Queue `outcome` for the next write; True once committed, False if it could not be."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((outcome, done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_all())
        return await asyncio.shield(done)

    async def _write_all(self) -> None:
        batch: list[tuple[_Outcome, asyncio.Future[bool]]] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                outcomes = [outcome for outcome, _ in batch]
                try:
                    await asyncio.to_thread(self._write, outcomes)
                    written = [True] * len(batch)
                except Exception:
                    log.exception("recording %s results together failed", len(batch))
                    written = await asyncio.to_thread(self._write_each, outcomes)
                for (_, done), ok in zip(batch, written, strict=True):
                    if not done.done():
                        done.set_result(ok)
                batch = []
        finally:
            self._writer = None
            # Cancelled mid-write: whether it committed is unknown, so nothing is reported
            # as recorded (the rows' leases decide).
            for _, done in batch + self._waiting:
                if not done.done():
                    done.set_result(False)
            self._waiting = []

    def _write_each(self, outcomes: list[_Outcome]) -> list[bool]:
        written: list[bool] = []
        for outcome in outcomes:
            try:
                self._write([outcome])
                written.append(True)
            except Exception:
                # The lease runs out and the row is sent again: better twice than never.
                log.exception("recording the result of outbox %s failed", outcome.item.outbox_id)
                written.append(False)
        return written

    async def close(self) -> None:
        """Wait for a write in progress (a cancelled drain must not leave one behind)."""
        writer = self._writer
        if writer is not None:
            await asyncio.gather(writer, return_exceptions=True)


@contextlib.contextmanager
def _settled_on_error(chosen: list[tuple[OutboxItem, Person | None, Ticket]]) -> Iterator[None]:
    """A claim that fails leaves its rows unleased: their tickets, never sent, must not hold
    their places in the rate limits until IN_FLIGHT_HOLD_SECONDS runs out."""
    try:
        yield
    except BaseException:
        for _, _, ticket in chosen:
            ticket.settle()
        raise


def _queued_before_stop(row: OutboxItem, person: Person | None) -> bool:
    """Whether `row` was queued before its person said STOP: it is never sent."""
    return (
        person is not None
        and person.opted_out_at is not None
        and row.created_at < person.opted_out_at
    )


@dataclass
class _Claim:
    """A claim under way, and how many sends had finished when it started."""

    task: asyncio.Task[list[tuple[OutgoingItem, Ticket]]]
    finished_before: int


class _Drain:
    """One `drain_once` pass: its sends in flight, the claims it starts, its recorder."""

    def __init__(self, worker: DeliveryWorker, now: datetime | None) -> None:
        self.worker = worker
        self.now = now
        self.gate = asyncio.Semaphore(worker.concurrency)
        self.in_flight: set[asyncio.Task[None]] = set()
        self.sending: set[int] = set()  # outbox ids of `in_flight`
        self.recorder = _GroupRecorder(lambda outcomes: worker._record_many(outcomes, now))
        self.finished = 0  # sends whose result is recorded; one may make a chat's next due
        self.total = 0  # send attempts started
        self._ahead: _Claim | None = None

    def claim(self, also: frozenset[int] = frozenset()) -> _Claim:
        """The next claim, started now, passing over our sends and `also` (rows claimed but
        not yet sent)."""
        task = asyncio.create_task(
            asyncio.to_thread(
                self.worker._claim, self.now or utcnow(), frozenset(self.sending) | also
            )
        )
        return _Claim(task, self.finished)

    def claim_ahead(self, also: frozenset[int]) -> None:
        """Start the next claim now, for the loop to take once this batch is handed out."""
        self._ahead = self.claim(also)

    def take_claim_ahead(self) -> _Claim | None:
        ahead, self._ahead = self._ahead, None
        return ahead

    async def start_send(self, item: OutgoingItem, ticket: Ticket) -> None:
        """Send `item` once a slot is free; the slot frees when its result is recorded."""
        await self.gate.acquire()
        task = asyncio.create_task(self.worker._send_and_record(item, ticket, self.recorder))
        self.in_flight.add(task)
        self.sending.add(item.outbox_id)
        self.total += 1
        task.add_done_callback(lambda _task: self._finished(_task, item.outbox_id))

    def _finished(self, task: asyncio.Task[None], outbox_id: int) -> None:
        self.in_flight.discard(task)
        self.sending.discard(outbox_id)
        self.gate.release()
        self.finished += 1

    async def wait_for_a_send(self) -> None:
        await asyncio.wait(self.in_flight, return_when=asyncio.FIRST_COMPLETED)

    async def close(self) -> None:
        """Cancelled (the worker is stopping): the sends still out are abandoned, and their
        rows are sent again when the lease runs out, as are a claim's ahead."""
        ahead = self.take_claim_ahead()
        if ahead is not None:
            ahead.task.cancel()
            await asyncio.gather(ahead.task, return_exceptions=True)
        for task in list(self.in_flight):
            task.cancel()
        if self.in_flight:
            await asyncio.gather(*self.in_flight, return_exceptions=True)
        await self.recorder.close()


def backoff_seconds(attempts: int, base: float, maximum: float) -> float:
    """Exponential backoff after `attempts` failed tries: base, 2·base, 4·base … capped."""
    return float(min(maximum, base * (2 ** max(0, attempts - 1))))


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class DeliveryWorker:
    """Sends what the outbox holds through `senders` (channel name → Sender)."""

    def __init__(
        self,
        ctx: AppContext,
        senders: Mapping[str, Sender],
        *,
        worker_id: str | None = None,
        limiter: RateLimiter | None = None,
        lease_seconds: float | None = None,
        batch_size: int = 50,
        concurrency: int = MAX_CONCURRENT_SENDS,
    ) -> None:
        self.ctx = ctx
        self.senders = dict(senders)
        self.worker_id = worker_id or default_worker_id()
        self.limiter = limiter or RateLimiter(ctx.settings.bulk_share)
        self.lease_seconds = (
            lease_seconds if lease_seconds is not None else ctx.settings.delivery_lease_seconds
        )
        self.batch_size = batch_size
        self._limited = False
        self._limited_for = float("inf")
        self._skipped = 0  # rows the last claim passed over for their chat's or group's limit
        self.concurrency = concurrency

    # -- the loop --------------------------------------------------------------------------
    async def drain_once(self, now: datetime | None = None) -> int:
        """Send everything that is due and allowed by the rate limits right now.

        Returns how many send attempts were made. `now` (default: the clock) decides what
        is due and when retries fall; the rate limits always use real time.

        At most `concurrency` sends are in flight, and each one's result is recorded before
        its slot frees, so a process killed mid-pass resends at most those in flight
        (tests/faults/test_faults_kill.py). The next claim runs while the sends of the previous
        one are still out (and, after a full claim, while it is still being handed out), so
        the pipe does not drain between claims; the rows in flight are "sending", and
        `due_outbox` never hands out a chat's next message while an earlier one is live, so
        one chat's messages still go one at a time, in order.
        """
        self._limited = False
        self._limited_for = float("inf")
        drain = _Drain(self, now)
        try:
            while True:
                claim = drain.take_claim_ahead() or drain.claim()
                batch = await claim.task
                if not batch:
                    if drain.in_flight:
                        # A finished send may make its chat's next message due.
                        await drain.wait_for_a_send()
                        continue
                    if drain.finished != claim.finished_before:
                        continue  # a send finished while that claim read: look again
                    return drain.total
                if len(batch) >= self.batch_size:
                    # Probably more waiting: claim it while this batch goes out, so the
                    # sends do not stop for the claim's round trips.
                    drain.claim_ahead(frozenset(item.outbox_id for item, _ in batch))
                for item, ticket in batch:
                    await drain.start_send(item, ticket)
        finally:
            await drain.close()

    async def _send_and_record(
        self, item: OutgoingItem, ticket: Ticket, recorder: _GroupRecorder
    ) -> None:
        outcome = await self._send(item, ticket)
        if not await recorder.record(outcome):
            log.warning(
                "outbox %s: result not recorded; sent again after its lease", item.outbox_id
            )

    async def run(self, stop: asyncio.Event) -> None:
        """Drain, rest, repeat until `stop` is set; a failing pass is logged, not fatal."""
        poll = self.ctx.settings.delivery_poll_seconds
        try:
            while not stop.is_set():
                try:
                    await self.drain_once()
                except Exception:
                    log.exception("delivery pass failed; trying again shortly")
                self.limiter.forget_idle()
                delay = self.pause_after_pass(poll)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
        finally:
            await self.close()

    async def close(self) -> None:
        """Release the senders' connections (those that hold any)."""
        for sender in self.senders.values():
            closer = getattr(sender, "aclose", None)
            if closer is not None:
                try:
                    await closer()
                except Exception:
                    log.exception("closing sender %r failed", sender)

    # -- claim -----------------------------------------------------------------------------
    def _claim(
        self, now: datetime, sending: frozenset[int] = frozenset()
    ) -> list[tuple[OutgoingItem, Ticket]]:
        """Lease up to `batch_size` due rows, each with its rate-limit ticket already taken.

        `sending` are this worker's own sends still out: their lease may have run out while
        they waited for a slot (a short DASH_DELIVERY_LEASE_SECONDS, a slow provider), and
        taking them again would send them twice.
        """
        full, room = self._channels_at_their_limit()
        channels = sorted(set(self.senders) - full)
        if not channels:
            return []
        want = min(self.batch_size, room)
        # Look past the rows skipped last time (a chat or group at its own limit), so they do
        # not hide the rest. Every row fetched is locked, so no more than that.
        fetch = want + min(3 * want, self._skipped)
        chosen: list[tuple[OutboxItem, Person | None, Ticket]] = []
        with _settled_on_error(chosen), self.ctx.db.transaction() as session:
            rows = due_outbox(
                session, channels=channels, now=now, limit=fetch, passing_over=sending
            )
            # Each row's person in one query, not one lazy load per row (held here: the
            # session's identity map keeps only weak references).
            persons = self._load(
                session, Person, {row.person_id for row in rows}, joinedload(Person.addresses)
            )
            skipped = self._choose(session, rows, persons, full, want, chosen)
            claimed = self._lease(session, now, chosen)
        self._skipped = skipped
        return claimed

    def _channels_at_their_limit(self) -> tuple[set[str], int]:
        """The channels whose own limit (the bot's, the number's) is used up, and how many
        rows the others may send now.

        Such a channel sends nothing now: not asking for its rows spares the query and one
        limiter check per row. The others are asked for as many rows as their limits let go,
        not a full batch: under a provider's limit a pass that may send 3 must not load and
        lock 200."""
        full: set[str] = set()
        room = 0
        for channel in self.senders:
            limit = channel_limit(self.ctx.settings, channel)
            if limit is None:
                room += self.batch_size
                continue
            headroom = self.limiter.headroom(limit, within=CLAIM_AHEAD_SECONDS)
            if headroom == 0:
                full.add(channel)
                self._note_limited(self.limiter.wait_time([limit]))
            room += headroom
        return full, room

    def _choose(
        self,
        session: Any,
        rows: list[OutboxItem],
        persons: dict[int, Person],
        full: set[str],
        want: int,
        chosen: list[tuple[OutboxItem, Person | None, Ticket]],
    ) -> int:
        """Append to `chosen` up to `want` of `rows` with a rate-limit ticket taken; cancel
        those queued before their person said STOP. Returns how many the limits passed over
        (a channel found full on the way joins `full`)."""
        skipped = 0
        for row in rows:
            if row.channel in full:
                continue
            person = persons.get(row.person_id) if row.person_id else None
            if _queued_before_stop(row, person):
                outbox.record_failure(
                    session,
                    row.id,
                    code="opted_out",
                    detail="the person opted out before this was sent",
                    state=OutboxState.CANCELLED.value,
                )
                continue
            limits = limits_for(self.ctx.settings, row.channel, row.address)
            bulk = row.priority == Priority.BULK
            ticket = self.limiter.try_acquire(limits, bulk=bulk, within=CLAIM_AHEAD_SECONDS)
            if ticket is None:
                skipped += 1
                self._note_limited(self.limiter.wait_time(limits, bulk=bulk))
                if limits and self.limiter.headroom(limits[0], within=CLAIM_AHEAD_SECONDS) == 0:
                    full.add(row.channel)
                continue
            chosen.append((row, person, ticket))
            if len(chosen) >= want:
                break
        return skipped

    def _lease(
        self,
        session: Any,
        now: datetime,
        chosen: list[tuple[OutboxItem, Person | None, Ticket]],
    ) -> list[tuple[OutgoingItem, Ticket]]:
        """Lease the `chosen` rows to this worker and detach them with their texts."""
        if not chosen:
            return []
        outbox.lease_many(
            session,
            [row for row, _, _ in chosen],
            worker_id=self.worker_id,
            now=now,
            lease_seconds=self.lease_seconds,
        )
        # The texts of the rows taken only, in one query.
        texts: dict[int, str] = {
            message_id: text
            for message_id, text in session.execute(
                select(Message.id, Message.text).where(
                    Message.id.in_({row.message_id for row, _, _ in chosen})
                )
            )
        }
        return [
            (self._detach(row, texts[row.message_id], person), ticket)
            for row, person, ticket in chosen
        ]

    def _note_limited(self, wait: float) -> None:
        """A row waits for the rate limits: the next pass comes when the soonest may go."""
        self._limited = True
        self._limited_for = min(self._limited_for, wait)

    @property
    def limited(self) -> bool:
        """The last pass left due rows waiting for the rate limits."""
        return self._limited

    def pause_after_pass(self, poll: float) -> float:
        """Seconds to rest after a pass: `poll`, or less when a rate-limited row frees sooner.

        Waking exactly when the limits allow (not on a coarse tick) is what lets the worker
        keep a provider's full rate: each window's slots are reused as soon as they free.
        """
        if not self._limited:
            return poll
        return min(poll, max(MIN_LIMITED_PAUSE_SECONDS, self._limited_for))

    @staticmethod
    def _load(session: Any, model: Any, ids: set[int | None], *options: Any) -> dict[int, Any]:
        """Rows of `model` by id, in one query."""
        wanted = {i for i in ids if i is not None}
        if not wanted:
            return {}
        query = select(model).where(model.id.in_(wanted)).options(*options)
        return {obj.id: obj for obj in session.scalars(query).unique()}

    @staticmethod
    def _detach(row: OutboxItem, text: str, person: Person | None) -> OutgoingItem:
        return OutgoingItem(
            outbox_id=row.id,
            message_id=row.message_id,
            channel=row.channel,
            address=row.address,
            text=text,
            payload=dict(row.payload or {}),
            priority=row.priority,
            attempts=row.attempts,
            person_id=row.person_id,
            team_id=row.team_id,
            language=person.language if person is not None else "en",
            last_inbound_at=last_inbound(person, row.channel, row.address),
        )

    # -- send ------------------------------------------------------------------------------
    async def _send(self, item: OutgoingItem, ticket: Ticket) -> _Outcome:
        sender = self.senders[item.channel]
        try:
            delay = ticket.delay()
            if delay > 0:  # a place reserved under the rate limits, freeing this soon
                await asyncio.sleep(delay)
            async with asyncio.timeout(SEND_TIMEOUT_SECONDS):  # no extra task, unlike wait_for
                provider_id = await sender.send(item)
        except SendFailed as exc:
            return _Outcome(item, error=exc.error)
        except TimeoutError:
            return _Outcome(
                item, error=DeliveryError(ErrorKind.TRANSIENT, "the send timed out", "timeout")
            )
        except Exception as exc:  # a bug must fail this message visibly, not the worker
            log.exception("sender for %s crashed on outbox %s", item.channel, item.outbox_id)
            return _Outcome(
                item,
                error=DeliveryError(
                    ErrorKind.PERMANENT, f"{type(exc).__name__}: {exc}", "unexpected"
                ),
            )
        finally:
            ticket.settle()
        return _Outcome(item, provider_id=str(provider_id))

    # -- record ----------------------------------------------------------------------------
    def _record_many(self, outcomes: list[_Outcome], now: datetime | None) -> None:
        """Record finished sends in one transaction (raises if it cannot be committed).

        Accepted sends, nearly all of them, are written with two statements
        (outbox.record_sent_many); failures go one by one through `_record_failure`.
        """
        with self.ctx.db.transaction() as session:
            outbox.record_sent_many(
                session,
                [
                    outbox.SentResult(o.item.outbox_id, o.item.message_id, o.provider_id or "")
                    for o in outcomes
                    if o.error is None
                ],
                utcnow(),
            )
            at = now or utcnow()
            for outcome in outcomes:
                if outcome.error is not None:
                    self._record_failure(session, outcome.item, outcome.error, at)

    def _record_failure(
        self, session: Any, item: OutgoingItem, error: DeliveryError, now: datetime
    ) -> None:
        """What a failed send means: retry later, follow the chat, opt out, or give up visibly."""
        settings = self.ctx.settings
        log.warning(
            "outbox %s to %s:%s failed (%s %s): %s",
            item.outbox_id,
            item.channel,
            item.address,
            error.kind,
            error.code,
            error.detail,
        )
        if error.kind == ErrorKind.OPT_OUT:
            self._refused(session, item, error)
            outbox.record_failure(session, item.outbox_id, code=error.code, detail=error.detail)
            return
        if error.kind == ErrorKind.CHAT_MIGRATED and error.new_address:
            outbox.record_retry(
                session,
                item.outbox_id,
                retry_at=now,
                code=error.code,
                detail=error.detail,
                new_address=error.new_address,
            )
            return
        if error.kind == ErrorKind.RETRY_AFTER:
            wait = error.retry_after or 1.0
            if not channel_type(item.channel).flood_control_per_chat:
                self.limiter.pause(item.channel, wait)  # the whole sender was too fast
            # Flood control is the provider pacing us, not a failure: wait it out for as long
            # as the message is still timely, however many answers that takes.
            row = session.get(OutboxItem, item.outbox_id)
            waited = now - row.created_at if row is not None else timedelta(0)
            if waited < timedelta(minutes=settings.rate_limited_retry_minutes):
                outbox.record_retry(
                    session,
                    item.outbox_id,
                    retry_at=now + timedelta(seconds=wait),
                    code=error.code,
                    detail=error.detail,
                )
                return
        elif error.kind in (ErrorKind.TRANSIENT, ErrorKind.CONFIGURATION):
            if error.kind == ErrorKind.CONFIGURATION:
                self.limiter.pause(item.channel, CONFIGURATION_PAUSE_SECONDS)
            if item.attempts < settings.max_attempts:
                wait = backoff_seconds(
                    item.attempts, settings.backoff_base_seconds, settings.backoff_max_seconds
                )
                outbox.record_retry(
                    session,
                    item.outbox_id,
                    retry_at=now + timedelta(seconds=wait),
                    code=error.code,
                    detail=error.detail,
                )
                return
        elif error.kind == ErrorKind.WINDOW_CLOSED:
            # Sent again where the channel's fallback reaches the same address, else failed
            # with whoever asked for it told.
            fallback = channel_type(item.channel).fallback
            enabled = self.ctx.channels if self.ctx.channels is not None else self.senders
            undelivered.window_closed(
                session,
                item.outbox_id,
                fallback=fallback if fallback in enabled else None,
                code=error.code,
                detail=error.detail,
            )
            return
        # PERMANENT, or out of attempts: kept visible for a person to retry.
        outbox.record_failure(session, item.outbox_id, code=error.code, detail=error.detail)

    def _refused(self, session: Any, item: OutgoingItem, error: DeliveryError) -> None:
        """The provider says this chat refused us: a person opts out, a group is unlinked."""
        from dash.actions.optout import mark_opted_out

        person = session.get(Person, item.person_id) if item.person_id else None
        if person is not None:
            mark_opted_out(session, person, reason=f"{item.channel} {error.code}: {error.detail}")
            return
        group_gone(session, item.channel, item.address)


def channel_type(name: str) -> ChannelType:
    """The registered type of channel `name`; a plain one (no limits, no groups) otherwise."""
    from bots.registry import type_for

    try:
        return type_for(name)
    except KeyError:
        return ChannelType()
