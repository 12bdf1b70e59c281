"""Several processes on one PostgreSQL database: 10,000 due prompts, one bot, three workers.

5,000 enrolled teams have both daily prompts due at once (10,000 prompts to 5,000 chats). The
fake Bot API (a process of its own) answers 429 to any send above the bot's limit (300/s, and
1/s per chat); the workers are told the same limit with bulk share 1.0, so the floor is
10,000 / 300 = 33 s. THREE `dash worker --role tick --role delivery` processes run against the
same database until every prompt was sent; the reference is ONE such process in the same run.
Optionally the same with three `dash serve --role tick --role delivery` processes.

Reported per run: prompts sent exactly once (duplicates counted at the fake by chat + text and
in the outbox), the most sends in any second against the limit, 429s, the time from start to
the last arrival against the floor, and how the work was shared: agenda rows ticked per process
(agenda_items.claimed_by) and outbox rows seen mid-send per process (sampled claimed_by).

Run: python bench/bench_multiprocess.py [--teams 5000] [--limit 300] [--serve]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select  # noqa: E402

from bench import population  # noqa: E402
from bench.common import (  # noqa: E402
    PG_URL,
    ROOT,
    FakeProvider,
    Figure,
    child_env,
    configure,
    free_port,
    load_average,
    stamp_head,
)

FAKE_FLAG = "--fake-provider"


# -- the fake Bot API, in a process of its own ---------------------------------------------------
def _fake_main(per_second: float) -> None:
    """Serve the fake Bot API until SIGTERM; then print what arrived as one JSON line."""
    from tests.fakes.telegram_api import FakeTelegram

    class PrunedFake(FakeTelegram):
        """The fake, forgetting admitted sends older than any limit's window (60 s): its flood
        check otherwise scans every send so far, which at 10,000 sends makes the fake slow."""

        def _flood_check(self, chat: int | str) -> Any:
            horizon = time.monotonic() - 61.0
            if self._admitted and self._admitted[0][0] < horizon:
                self._admitted = [a for a in self._admitted if a[0] >= horizon]
            return super()._flood_check(chat)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with PrunedFake() as fake:
        fake.enforce_limits(per_second=per_second, per_chat_per_second=1, per_group_per_minute=20)
        print(json.dumps({"base_url": fake.base_url, "token": fake.token}), flush=True)
        done.wait()
        sends = fake.calls_to("sendMessage")
        ok = [c for c in sends if c.ok]
        by_chat_text = Counter(
            (str(c.params.get("chat_id")), str(c.params.get("text"))) for c in ok
        )
        print(
            json.dumps(
                {
                    "attempts": len(sends),
                    "accepted": len(ok),
                    "refused": sum(1 for c in sends if c.status == 429),
                    "failed_other": sum(1 for c in sends if not c.ok and c.status != 429),
                    "duplicates": sum(n - 1 for n in by_chat_text.values() if n > 1),
                    "chats": len({chat for chat, _ in by_chat_text}),
                    "max_per_second": fake.max_sends_per_second(),
                    "max_per_second_ok": fake.max_sends_per_second(ok_only=True),
                    "first": min((c.at for c in ok), default=0.0),
                    "last": max((c.at for c in ok), default=0.0),
                }
            ),
            flush=True,
        )


def fake_process(per_second: float) -> FakeProvider:
    """This module in --fake-provider mode, as a context manager (bench.common.FakeProvider)."""
    return FakeProvider(
        [sys.executable, str(Path(__file__).resolve()), FAKE_FLAG, str(per_second)],
        stop_timeout=120,
    )


# -- the workers --------------------------------------------------------------------------------
def _command(kind: str) -> list[str]:
    """`dash worker` or `dash serve` running tick + delivery, as a deployment would start it."""
    roles = ["--role", "tick", "--role", "delivery"]
    if kind == "worker":
        return [sys.executable, "-m", "dash.app.cli.worker", "--standby-seconds", "1", *roles]
    port = str(free_port())
    return [
        sys.executable,
        "-c",
        "from dash.app.cli.main import main; main()",
        "serve",
        "--port",
        port,
        *roles,
    ]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process (a load-independent cost figure)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pid_of(worker_id: str | None) -> int | None:
    parts = (worker_id or "").split(":")
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


def scenario(processes: int, kind: str, teams: int, limit: float, time_limit: float) -> dict:
    """One run: a fresh population, `processes` processes of `kind`, until all is sent."""
    from dash.models import AgendaItem, Message, OutboxItem
    from dash.timeutil import utcnow

    ctx = configure(PG_URL)
    db = ctx.db
    stamp_head(db)
    now = utcnow()
    pop = population.build(db, teams, timezone=population.midday_zone(now), compile_agendas=False)
    due = population.add_due_prompts(db, pop, now - timedelta(seconds=30))
    result: dict[str, Any] = {"processes": processes, "kind": kind, "due": due}
    with fake_process(limit) as fake:
        env = child_env(  # on top of configure's database, secret key and log level
            telegram_token=fake.token,
            telegram_api_base=fake.base_url,
            telegram_per_second=str(limit),
            telegram_per_chat_per_second="1",
            bulk_share="1.0",
            tick_seconds="1",
            delivery_poll_seconds="0.2",
        )
        started = time.monotonic()
        procs = [
            subprocess.Popen(
                _command(kind),
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for _ in range(processes)
        ]
        index = {p.pid: n for n, p in enumerate(procs)}
        sending_seen: Counter[int] = Counter()
        sent = 0
        try:
            while time.monotonic() - started < time_limit:
                with db.transaction() as s:
                    sent = s.execute(
                        select(func.count(OutboxItem.id)).where(OutboxItem.state == "sent")
                    ).scalar_one()
                    for owner in s.execute(
                        select(OutboxItem.claimed_by).where(OutboxItem.state == "sending")
                    ).scalars():
                        pid = _pid_of(owner)
                        if pid in index:
                            sending_seen[index[pid]] += 1
                if sent >= due or any(p.poll() is not None for p in procs):
                    break
                time.sleep(0.5)
            result["drained_after"] = time.monotonic() - started
            time.sleep(2.0)  # anything sent twice would arrive now
            result["cpu_seconds"] = [
                _cpu_seconds(p.pid) if p.poll() is None else float("nan") for p in procs
            ]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            errors = []
            for p in procs:
                try:
                    _, err = p.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    _, err = p.communicate()
                errors.append(err.decode(errors="replace"))
    stats = fake.stats
    with db.transaction() as s:
        ticked = Counter(
            index.get(_pid_of(owner) or -1, -1)
            for owner in s.execute(
                select(AgendaItem.claimed_by).where(AgendaItem.state == "done")
            ).scalars()
        )
        states = dict(
            s.execute(select(OutboxItem.state, func.count()).group_by(OutboxItem.state)).all()
        )
        resent = s.execute(
            select(func.count(OutboxItem.id)).where(OutboxItem.attempts > 1)
        ).scalar_one()
        queued_twice = sum(
            n - 1
            for n in s.execute(
                select(func.count())
                .where(Message.direction == "out")
                .group_by(Message.address, Message.text)
                .having(func.count() > 1)
            ).scalars()
        )
    db.dispose()
    result.update(
        stats=stats,
        sent=sent,
        states=states,
        resent=int(resent),
        queued_twice=int(queued_twice),
        ticked=[ticked.get(n, 0) for n in range(processes)],
        sending_seen=[sending_seen.get(n, 0) for n in range(processes)],
        span=(stats["last"] - started) if stats["accepted"] else float("nan"),
        first=(stats["first"] - started) if stats["accepted"] else float("nan"),
        errors=sum("Traceback" in e for e in errors),
        exit_codes=[p.returncode for p in procs],
        floor=due / limit,
    )
    return result


def _describe(r: dict) -> str:
    return (
        f"{r['processes']} x dash {r['kind']}: {r['stats']['accepted']:,} of {r['due']:,} "
        f"accepted, {r['stats']['duplicates']} duplicates at the fake (chat + text), "
        f"{r['queued_twice']} queued twice, {r['resent']} outbox rows sent more than once, "
        f"{r['stats']['refused']} refused with 429, at most {r['stats']['max_per_second']} "
        f"sends in a second; agenda rows ticked per process {r['ticked']}; outbox rows seen "
        f"mid-send per process {r['sending_seen']}; worker CPU "
        f"{[round(c, 1) for c in r['cpu_seconds']]} s; first arrival {r['first']:.1f} s, last "
        f"{r['span']:.1f} s after start (floor {r['floor']:.0f} s); {r['errors']} tracebacks"
    )


def run(
    teams: int = 5000,
    limit: float = 300,
    processes: int = 3,
    serve: bool = False,
    time_limit: float = 900,
) -> list[Figure]:
    """The reference (one worker), then `processes` workers (and `dash serve`s if asked)."""
    one = scenario(1, "worker", teams, limit, time_limit)
    print(_describe(one), flush=True)
    runs = [scenario(processes, "worker", teams, limit, time_limit)]
    print(_describe(runs[0]), flush=True)
    if serve:
        runs.append(scenario(processes, "serve", teams, limit, time_limit))
        print(_describe(runs[-1]), flush=True)
    figures = []
    for r in runs:
        n, kind, due, stats = r["processes"], r["kind"], r["due"], r["stats"]
        once = stats["accepted"] == due and stats["chats"] == due // 2
        dup = stats["duplicates"] + r["queued_twice"]
        figures += [
            Figure(
                "multi-process",
                f"{n} x `dash {kind}`: {due:,} due prompts, duplicates (fake: chat + text; "
                f"outbox: queued twice; {stats['accepted']:,} accepted, {r['resent']} rows "
                f"resent; ticked per process {r['ticked']})",
                dup,
                "sends",
                one["stats"]["duplicates"] + one["queued_twice"],
                "1 process",
                "every prompt exactly once",
                dup == 0 and once and r["resent"] == 0,
            ),
            Figure(
                "multi-process",
                f"{n} x `dash {kind}`: most sends in any second ({stats['refused']} refused "
                f"with 429; 1 process: {one['stats']['max_per_second']}, "
                f"{one['stats']['refused']} refused)",
                stats["max_per_second"],
                "sends",
                limit,
                "the bot limit",
                "never above the limit, no 429",
                stats["max_per_second"] <= limit and stats["refused"] == 0,
            ),
            Figure(
                "multi-process",
                f"{n} x `dash {kind}`: start to last prompt arrived (first after "
                f"{r['first']:.0f} s; floor {r['floor']:.0f} s; worker CPU "
                f"{sum(r['cpu_seconds']):.0f} s, 1 process: {sum(one['cpu_seconds']):.0f} s, "
                f"first after {one['first']:.0f} s)",
                r["span"],
                "s",
                one["span"],
                "1 process, same prompts",
            ),
        ]
    return figures


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == FAKE_FLAG:
        _fake_main(float(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=5000)
    parser.add_argument("--limit", type=float, default=300)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--serve", action="store_true", help="also `dash serve` processes")
    parser.add_argument("--time-limit", type=float, default=900, help="seconds per run")
    args = parser.parse_args()
    print(f"load average {load_average()}", flush=True)
    for figure in run(args.teams, args.limit, args.processes, args.serve, args.time_limit):
        print(figure.line(), flush=True)
    print(f"load average {load_average()}", flush=True)


if __name__ == "__main__":
    main()
