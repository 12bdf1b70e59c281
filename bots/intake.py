"""Webhook messages that arrive together are stored and processed together.

Each webhook request hands its payload to the process's Intake and waits for its own result.
An Intake runs at most `lanes` batches at a time, each in a worker thread: whatever arrived
while the previous batch ran goes next, as one batch (dash.engine.handle_inbound_many: one
INSERT for the batch, one transaction to process it). Nothing waits to fill a batch, so a
lone message goes at once; under a burst, commits and thread hand-offs are shared. This is
the group commit that databases do for their own log, done one level up.

A request still answers only after its message is committed and processed, so a provider is
told "received" exactly when it was, and a database failure still answers 5xx to every
request of the batch, which the providers deliver again.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError

from dash.context import AppContext
from dash.engine import InboundResult, handle_inbound, handle_inbound_many
from dash.inbound import InboundMessage

#: Reads a provider's payload in the worker thread: the message, None for an update that
#: carries none, or ValueError for a payload that is not the provider's.
Reader = Callable[[], InboundMessage | None]

#: What became of one payload: its message and result, or what reading or handling it raised.
_Outcome = tuple[InboundMessage | None, InboundResult | None] | Exception

#: Most messages in one batch: a batch's transaction holds its rows' locks until it commits.
MAX_BATCH = 64


@dataclass
class _Job:
    read: Reader
    future: asyncio.Future[tuple[InboundMessage | None, InboundResult | None]]


@dataclass
class _Loop:
    """One event loop's queue: futures belong to the loop that made them."""

    waiting: list[_Job] = field(default_factory=list)
    running: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class Intake:
    """Stores and processes webhook messages in batches; see the module docstring."""

    def __init__(self, ctx: AppContext, lanes: int | None = None) -> None:
        self.ctx = ctx
        # SQLite has one writer: a second lane would only queue on its lock.
        self.lanes = lanes or (1 if ctx.db.is_sqlite else 2)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Loop] = (
            weakref.WeakKeyDictionary()
        )

    async def submit(self, read: Reader) -> tuple[InboundMessage | None, InboundResult | None]:
        """The message `read` returns, stored and processed, and what became of it.

        Raises what `read` raised for this payload, or the database error of its batch.
        """
        loop = asyncio.get_running_loop()
        state = self._loops.setdefault(loop, _Loop())
        job = _Job(read, loop.create_future())
        state.waiting.append(job)
        if state.running < self.lanes:
            state.running += 1
            task = loop.create_task(self._drain(state))
            state.tasks.add(task)
            task.add_done_callback(state.tasks.discard)
        return await job.future

    async def _drain(self, state: _Loop) -> None:
        try:
            while state.waiting:
                batch = state.waiting[:MAX_BATCH]
                del state.waiting[:MAX_BATCH]
                try:
                    outcomes = await asyncio.to_thread(self._run, [job.read for job in batch])
                except Exception as exc:  # the database: every request of the batch says 5xx
                    for job in batch:
                        if not job.future.done():
                            job.future.set_exception(exc)
                    continue
                for job, outcome in zip(batch, outcomes, strict=True):
                    if job.future.done():  # the request went away; its message is kept
                        continue
                    if isinstance(outcome, Exception):
                        job.future.set_exception(outcome)
                    else:
                        job.future.set_result(outcome)
        finally:
            state.running -= 1

    def _run(self, reads: list[Reader]) -> list[_Outcome]:
        """In a worker thread: read each payload, then store and process the messages."""
        outcomes: list[_Outcome] = []
        for read in reads:
            try:
                outcomes.append((read(), None))
            except Exception as exc:  # this payload's own problem (the route says 400)
                outcomes.append(exc)
        messages = [o[0] for o in outcomes if isinstance(o, tuple) and o[0] is not None]
        try:
            results: list[InboundResult | Exception] = list(handle_inbound_many(self.ctx, messages))
        except SQLAlchemyError:
            raise
        except Exception:  # something in one message: find which, as handle_inbound would
            results = [self._one(inbound) for inbound in messages]
        done = iter(results)
        return [
            _finished(outcome[0], next(done))
            if isinstance(outcome, tuple) and outcome[0] is not None
            else outcome
            for outcome in outcomes
        ]

    def _one(self, inbound: InboundMessage) -> InboundResult | Exception:
        try:
            return handle_inbound(self.ctx, inbound)
        except SQLAlchemyError:
            raise
        except Exception as exc:
            return exc


def _finished(inbound: InboundMessage | None, result: InboundResult | Exception) -> _Outcome:
    return result if isinstance(result, Exception) else (inbound, result)
