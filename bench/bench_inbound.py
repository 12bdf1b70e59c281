"""Inbound: signed webhooks through the real routes to a stored message and a queued reply.

The app (dash.server.create_app, no background workers) runs under uvicorn in its own process
on 127.0.0.1; an httpx client posts Telegram updates and Twilio SMS, signed exactly as the
providers sign them, from people of 200 enrolled teams ("we tried the checklist on nights": the
message is stored, acknowledged and flagged for the coach). Two phases per database:
  throughput: N messages with 32 in flight, messages/s;
  latency: 50 messages/s for a few seconds, p50/p99.
The reference is a bare Starlette endpoint on the same uvicorn settings (the framework's limit).

Run: python bench/bench_inbound.py [--db sqlite|postgresql] [--count N]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from sqlalchemy import func, select, update
from twilio.request_validator import RequestValidator

from bench import population  # noqa: E402
from bench.common import (  # noqa: E402
    Figure,
    configure,
    database_url,
    free_port,
    load_average,
    percentile,
    server_process,
)

TOKEN = "123456:BENCH-telegram-token_abcdefghijk"
TWILIO_SID = "AC" + "0" * 32
TWILIO_TOKEN = "bench-twilio-auth-token"
SMS_FROM = "+15550000000"
TEAMS = 200
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
        return "/webhooks/twilio", headers, httpx.QueryParams(params).__str__().encode()


def phone_of(chat: int) -> str:
    return f"+1202{chat % 10_000_000:07d}"


async def _post(client: httpx.AsyncClient, load: Load, n: int, bare: bool) -> float:
    path, headers, body = load.request(n)
    started = time.perf_counter()
    response = await client.post(path, headers=headers, content=body)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"{path} answered {response.status_code}: {response.text[:200]}")
    return elapsed


async def throughput(origin: str, load: Load, count: int, bare: bool, limit: float) -> float:
    """Messages per second with 32 in flight (stops at `limit` seconds)."""
    sem = asyncio.Semaphore(32)
    async with httpx.AsyncClient(base_url=origin, timeout=30) as client:
        await _post(client, load, 0, bare)  # warm-up

        async def one(n: int) -> None:
            async with sem:
                await _post(client, load, n, bare)

        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(one(n) for n in range(count))), limit)
        return count / (time.perf_counter() - started)


async def latency(origin: str, load: Load, rate: float, seconds: float, bare: bool) -> list[float]:
    """Each request's latency when sent at a steady `rate` per second."""
    async with httpx.AsyncClient(base_url=origin, timeout=30) as client:
        await _post(client, load, 1, bare)
        tasks = []
        started = time.perf_counter()
        for n in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(_post(client, load, n, bare)))
        return list(await asyncio.wait_for(asyncio.gather(*tasks), seconds + 30))


def run(kind: str, count: int = 2000, seconds: float = 6.0) -> list[Figure]:
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
    from dash.models import Message, Person

    with ctx.db.transaction() as s:
        for chat in pop.reporter_chat_ids:
            s.execute(
                update(Person)
                .where(Person.telegram_user_id == chat)
                .values(phone_e164=phone_of(chat))
            )
    load = Load(origin, pop.reporter_chat_ids, ctx.telegram_webhook_secret)
    figures: list[Figure] = []
    results: dict[str, dict[str, Any]] = {}
    for which in ("bare", "dash"):
        with server_process(which, port):
            rate = asyncio.run(throughput(origin, load, count, which == "bare", 120))
            lat = asyncio.run(latency(origin, load, 50, seconds, which == "bare"))
        results[which] = {"rate": rate, "p50": percentile(lat, 50), "p99": percentile(lat, 99)}
    with ctx.db.transaction() as s:
        stored = s.execute(
            select(func.count(Message.id)).where(Message.direction == "in")
        ).scalar_one()
        replies = s.execute(
            select(func.count(Message.id)).where(Message.direction == "out")
        ).scalar_one()
    expected = count + 1 + int(50 * seconds) + 1
    d, b = results["dash"], results["bare"]
    figures.append(
        Figure(
            "inbound",
            f"{kind}: webhook messages stored and answered per second (32 in flight)",
            d["rate"],
            "msg/s",
            b["rate"],
            "bare Starlette endpoint",
            ">= 300 msg/s",
            d["rate"] >= 300,
        )
    )
    figures.append(
        Figure(
            "inbound",
            f"{kind}: p50 latency at 50 msg/s",
            d["p50"] * 1000,
            "ms",
            b["p50"] * 1000,
            "bare Starlette endpoint",
        )
    )
    figures.append(
        Figure(
            "inbound",
            f"{kind}: p99 latency at 50 msg/s",
            d["p99"] * 1000,
            "ms",
            b["p99"] * 1000,
            "bare Starlette endpoint",
            "< 100 ms",
            d["p99"] * 1000 < 100,
        )
    )
    figures.append(
        Figure(
            "inbound",
            f"{kind}: inbound messages stored / sent (replies queued: {replies})",
            stored,
            "rows",
            expected,
            "messages posted",
        )
    )
    ctx.db.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], action="append")
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    print(f"load average {load_average()}")
    for kind in args.db or ["sqlite", "postgresql"]:
        for figure in run(kind, args.count):
            print(figure.line(), flush=True)


if __name__ == "__main__":
    main()
