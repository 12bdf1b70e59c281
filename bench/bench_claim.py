"""Outbox claim cost against the size of the waiting backlog.

N queued outbox rows wait (two per chat, so half of them wait behind their chat's first),
beside 2 N sent rows of history; one claim (`dash.queries.outbox.due_outbox`, 200 rows, as
the delivery worker asks) is timed in a rolled-back transaction. Figures: CPU of this process
(time.process_time) and wall time per claim, median of the repeats, and SQL statements per
claim. A claim that does not depend on the backlog costs the same at 100 and 10,000 rows.

Run: python bench/bench_claim.py [--db sqlite|postgresql] [--sizes 100,1000,10000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, text  # noqa: E402

from bench.common import StatementCounter, configure, database_url  # noqa: E402


def fill(ctx: object, waiting: int) -> None:
    """`waiting` queued rows (two per chat) and twice as many sent ones, by executemany."""
    from dash.models import Message, OutboxItem
    from dash.timeutil import utcnow

    db = ctx.db  # type: ignore[attr-defined]
    now = utcnow()
    sent = 2 * waiting
    total = sent + waiting
    messages = [
        {
            "id": i + 1,
            "direction": "out",
            "channel": "telegram",
            "address": str(700_000_000 + (i // 2)),
            "text": "What did you measure today?",
            "status": "sent" if i < sent else "queued",
            "created_at": now - timedelta(minutes=5),
        }
        for i in range(total)
    ]
    rows = [
        {
            "id": i + 1,
            "message_id": i + 1,
            "channel": "telegram",
            "address": m["address"],
            "priority": 1,
            "state": "sent" if i < sent else "queued",
            "payload": {},
            "next_attempt_at": now - timedelta(minutes=5),
            "created_at": now - timedelta(minutes=5),
        }
        for i, m in enumerate(messages)
    ]
    with db.engine.begin() as conn:
        conn.execute(insert(Message), messages)
        conn.execute(insert(OutboxItem), rows)
        if db.engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE outbox"))
        else:
            conn.execute(text("ANALYZE"))


def measure(kind: str, waiting: int, repeats: int) -> tuple[float, float, float, int]:
    """(median CPU ms, median wall ms, statements per claim, rows claimed) for one size."""
    from dash.queries.outbox import due_outbox
    from dash.timeutil import utcnow

    ctx = configure(database_url(kind))
    fill(ctx, waiting)
    db = ctx.db  # type: ignore[attr-defined]
    cpu: list[float] = []
    wall: list[float] = []
    got = 0
    with StatementCounter(db.engine) as counter:
        for _ in range(repeats):
            with db.sessions() as s:
                c0, w0 = time.process_time(), time.perf_counter()
                got = len(due_outbox(s, channels=["telegram"], now=utcnow(), limit=200))
                cpu.append(time.process_time() - c0)
                wall.append(time.perf_counter() - w0)
                s.rollback()
    db.engine.dispose()
    return (
        statistics.median(cpu) * 1000,
        statistics.median(wall) * 1000,
        counter.count / repeats,
        got,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    print(f"{args.db}: one claim of 200 rows (median of {args.repeats})")
    print("| rows waiting | CPU ms | wall ms | statements | rows claimed |")
    print("|---:|---:|---:|---:|---:|")
    for size in (int(s) for s in args.sizes.split(",")):
        cpu, wall, statements, got = measure(args.db, size, args.repeats)
        print(f"| {size:,} | {cpu:.1f} | {wall:.1f} | {statements:.0f} | {got} |")


if __name__ == "__main__":
    main()
