"""Inbound: signed webhooks through the real routes to a stored message and a queued reply.

The app (dash.app.server.create_app, no background workers) runs under uvicorn on 127.0.0.1, with
one and then two worker processes (`dash serve --workers`); a lean HTTP/1.1 client
(bench/loadgen.py) posts Telegram updates and Twilio SMS, signed exactly as the providers sign
them, from people of 200 enrolled teams ("we tried the checklist on nights": the message is
stored, acknowledged and flagged for the coach). Two phases per database and process count:
  throughput: N messages with 32 in flight, messages/s;
  latency: 50 messages/s for a few seconds, p50/p99.
The reference is a bare Starlette endpoint on the same uvicorn settings (the framework's limit).
On PostgreSQL two diagnostics follow (`commit_diagnostics`): the fsync latency of the database's
disk, and the latency phase once more with commits that do not wait for that disk.

Run: python bench/bench_inbound.py [--db sqlite|postgresql] [--count N] [--workers 1 --workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from bench import loadgen, population  # noqa: E402
from bench.common import (  # noqa: E402
    Figure,
    configure,
    database_url,
    free_port,
    load_average,
    percentile,
    server_process,
)
from bots.telegram.webhook import webhook_secret  # noqa: E402

TOKEN = "123456:BENCH-telegram-token_abcdefghijk"
TWILIO_SID = "AC" + "0" * 32
TWILIO_TOKEN = "bench-twilio-auth-token"
SMS_FROM = "+15550000000"
TEAMS = 200
#: Requests sent before the clock starts, so every worker process has compiled its statements
#: and templates (one request used to warm only the process that took it).
WARM_UP = 200
_ids = itertools.count(1)


class Load:
    """Builds signed requests, alternating Telegram and Twilio, from the population's reporters."""

    def __init__(self, origin: str, chats: list[int], secret: str) -> None:
        self.origin = origin
        self.chats = chats
        self.secret = secret
        self.validator = RequestValidator(TWILIO_TOKEN)

    def request(self, n: int) -> tuple[str, dict[str, str], bytes]:
        k = next(_ids)
        chat = self.chats[n % len(self.chats)]
        text = f"We tried the checklist on nights ({k})"
        if n % 2 == 0:
            update_ = {
                "update_id": 10_000_000 + k,
                "message": {
                    "message_id": k,
                    "from": {"id": chat, "is_bot": False, "first_name": "Rita"},
                    "chat": {"id": chat, "type": "private", "first_name": "Rita"},
                    "date": int(time.time()),
                    "text": text,
                },
            }
            headers = {
                "Content-Type": "application/json",
                "X-Telegram-Bot-Api-Secret-Token": self.secret,
            }
            return "/webhooks/telegram", headers, json.dumps(update_).encode()
        params = {
            "MessageSid": f"SM{k:032x}",
            "AccountSid": TWILIO_SID,
            "From": phone_of(chat),
            "To": SMS_FROM,
            "Body": text,
            "NumMedia": "0",
        }
        url = self.origin + "/webhooks/twilio"
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": self.validator.compute_signature(url, params),
        }
        return "/webhooks/twilio", headers, urlencode(params).encode()


def phone_of(chat: int) -> str:
    return f"+1202{chat % 10_000_000:07d}"


def _requests(load: Load, host: str, start: int, count: int) -> list[bytes]:
    """`count` signed requests, built before the clock starts."""
    return [
        loadgen.encode(loadgen.Request(*load.request(n)), host) for n in range(start, start + count)
    ]


async def _send(pool: loadgen.Pool, raw: bytes) -> float:
    status, body, elapsed = await pool.send(raw)
    if status != 200:
        raise RuntimeError(f"answered {status}: {body[:200]!r}")
    return elapsed


async def throughput(port: int, requests: list[bytes], limit: float) -> float:
    """Messages per second with 32 in flight (stops at `limit` seconds), after the first
    WARM_UP of `requests` (sent the same way, not timed) have warmed every process."""
    pool = loadgen.Pool("127.0.0.1", port)

    async def send_all(queue: Iterator[bytes]) -> None:
        async def worker() -> None:
            for raw in queue:
                await _send(pool, raw)

        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(32))), limit)

    await send_all(iter(requests[:WARM_UP]))
    started = time.perf_counter()
    await send_all(iter(requests[WARM_UP:]))
    rate = (len(requests) - WARM_UP) / (time.perf_counter() - started)
    pool.close()
    return rate


async def latency(port: int, requests: list[bytes], rate: float, limit: float) -> list[float]:
    """Each request's latency when sent at a steady `rate` per second."""
    pool = loadgen.Pool("127.0.0.1", port)
    await _send(pool, requests[0])
    tasks = []
    started = time.perf_counter()
    for n, raw in enumerate(requests[1:]):
        await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(_send(pool, raw)))
    result = list(await asyncio.wait_for(asyncio.gather(*tasks), limit))
    pool.close()
    return result


def run(
    kind: str, count: int = 2000, seconds: float = 6.0, workers: tuple[int, ...] = (1, 2)
) -> list[Figure]:
    """Figures for each number of uvicorn processes in `workers` (bare endpoint alike)."""
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    env = {
        "telegram_token": TOKEN,
        "telegram_api_base": "http://127.0.0.1:9/bot",  # never called: no buttons pressed
        "twilio_account_sid": TWILIO_SID,
        "twilio_auth_token": TWILIO_TOKEN,
        "twilio_sms_from": SMS_FROM,
        "public_url": origin,
    }
    ctx = configure(database_url(kind), **env)
    pop = population.build(ctx.db, TEAMS, compile_agendas=False)
    from dash.models import Address, Message

    with ctx.db.transaction() as s:
        for row in s.execute(
            select(Address).where(
                Address.channel == "telegram",
                Address.address.in_([str(c) for c in pop.reporter_chat_ids]),
            )
        ).scalars():
            phone = phone_of(int(row.address or 0))
            s.add(Address(person_id=row.person_id, channel="sms", address=phone, chat_id=phone))
    load = Load(origin, pop.reporter_chat_ids, webhook_secret(ctx))
    figures: list[Figure] = []
    host = f"127.0.0.1:{port}"
    posted = 0
    for processes in workers:
        label = f"{kind}, {processes} process{'es' if processes > 1 else ''}"
        results: dict[str, dict[str, Any]] = {}
        for which in ("bare", "dash"):
            burst = _requests(load, host, 0, count + WARM_UP)
            steady = _requests(load, host, count + WARM_UP, int(50 * seconds) + 1)
            with server_process(which, port, workers=processes):
                rate = asyncio.run(throughput(port, burst, 120))
                lat = asyncio.run(latency(port, steady, 50, seconds + 30))
            results[which] = {"rate": rate, "p50": percentile(lat, 50), "p99": percentile(lat, 99)}
        posted += len(burst) + len(steady)
        d, b = results["dash"], results["bare"]
        figures += [
            Figure(
                "inbound",
                f"{label}: webhook messages stored and answered per second (32 in flight)",
                d["rate"],
                "msg/s",
                b["rate"],
                "bare Starlette endpoint",
                ">= 300 msg/s",
                d["rate"] >= 300,
            ),
            Figure(
                "inbound",
                f"{label}: p50 latency at 50 msg/s",
                d["p50"] * 1000,
                "ms",
                b["p50"] * 1000,
                "bare Starlette endpoint",
            ),
            Figure(
                "inbound",
                f"{label}: p99 latency at 50 msg/s",
                d["p99"] * 1000,
                "ms",
                b["p99"] * 1000,
                "bare Starlette endpoint",
                "< 100 ms",
                d["p99"] * 1000 < 100,
            ),
        ]
    if kind == "postgresql":
        start = count + WARM_UP + int(50 * seconds) + 1  # after every request made above
        figures += commit_diagnostics(ctx, load, host, port, start, seconds)
        posted += int(50 * seconds) + 1
    with ctx.db.transaction() as s:
        stored = s.execute(
            select(func.count(Message.id)).where(Message.direction == "in")
        ).scalar_one()
        replies = s.execute(
            select(func.count(Message.id)).where(Message.direction == "out")
        ).scalar_one()
    figures.append(
        Figure(
            "inbound",
            f"{kind}: inbound messages stored / sent (replies queued: {replies})",
            stored,
            "rows",
            posted,
            "messages posted",
        )
    )
    ctx.db.dispose()
    return figures


def commit_diagnostics(
    ctx: Any, load: Load, host: str, port: int, start: int, seconds: float
) -> list[Figure]:
    """Why PostgreSQL's p99 moves from run to run: the disk's fsync tail, and the latency
    phase again with commits that do not wait for it (`synchronous_commit=off`, a diagnostic
    only: a message acknowledged to the provider must be on disk, so it is never deployed)."""
    from sqlalchemy import text

    with ctx.db.transaction() as s:
        try:
            folder = Path(s.execute(text("SHOW data_directory")).scalar_one()).parent
        except Exception:  # not a superuser: measure where temporary files go
            folder = Path(tempfile.gettempdir())
    syncs = fdatasync_latencies(folder, 5.0)
    steady = _requests(load, host, start, int(50 * seconds) + 1)
    with server_process("dash", port, env={"PGOPTIONS": "-c synchronous_commit=off"}):
        lat = asyncio.run(latency(port, steady, 50, seconds + 30))
    return [
        Figure(
            "inbound",
            f"postgresql's disk ({folder}): fdatasync p99 over 5 s, 100/s (max "
            f"{max(syncs) * 1000:,.0f} ms)",
            percentile(syncs, 99) * 1000,
            "ms",
            percentile(syncs, 50) * 1000,
            "fdatasync p50",
        ),
        Figure(
            "inbound",
            "postgresql, 1 process, diagnostic: commits not waiting for the disk "
            "(synchronous_commit=off, never deployed): p99 latency at 50 msg/s",
            percentile(lat, 99) * 1000,
            "ms",
            percentile(lat, 50) * 1000,
            "its p50",
        ),
    ]


def fdatasync_latencies(folder: Path, seconds: float) -> list[float]:
    """An 8 KB write and fdatasync every 10 ms in `folder`: what a durable commit waits for."""
    fd, name = tempfile.mkstemp(prefix="dash-bench-fsync-", dir=folder)
    times: list[float] = []
    try:
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            os.pwrite(fd, b"x" * 8192, (n % 128) * 8192)
            started = time.perf_counter()
            os.fdatasync(fd)
            times.append(time.perf_counter() - started)
            n += 1
            time.sleep(0.01)
    finally:
        os.close(fd)
        os.unlink(name)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], action="append")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument(
        "--workers", type=int, action="append", help="uvicorn processes (repeat; default 1 and 2)"
    )
    args = parser.parse_args()
    print(f"load average {load_average()}")
    for kind in args.db or ["sqlite", "postgresql"]:
        for figure in run(kind, args.count, workers=tuple(args.workers or (1, 2))):
            print(figure.line(), flush=True)


if __name__ == "__main__":
    main()
