"""EXPLAIN (ANALYZE, BUFFERS) of every hot query, on a PostgreSQL population of 10,000 teams.

The population is bench_growth's (cohorts of 25 teams, each with its compiled agenda, a few
days of measure values, a thread and its sent outbox rows), then ANALYZE. The statements are
not retyped here: each hot path of the running system runs once while an SQLAlchemy
`before_cursor_execute` listener records the SQL and parameters it sends; every distinct
SELECT, UPDATE and DELETE is then explained with ANALYZE inside a transaction that is rolled
back. For each: the plan's top node, the indexes it uses, the rows the scans read against the
rows returned, and the execution time. A sequential scan of a table holding more than
`--big` rows is flagged: such a table grows with teams or messages.

Run: python bench/explain_queries.py [--teams 10000] [--big 1000] [--all]
"""

from __future__ import annotations

import argparse
import itertools
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from bench import bench_growth  # noqa: E402
from bench.common import Figure, configure, database_url  # noqa: E402
from dash import dbplans  # noqa: E402


@dataclass
class Plan:
    """What one EXPLAIN (ANALYZE, BUFFERS) said about one statement."""

    path: str
    statement: str
    top: str
    indexes: list[str]
    seq_scans: list[str]  # tables read by a sequential scan
    rows_read: int
    rows_returned: int
    ms: float
    buffers: int

    def flagged(self, sizes: dict[str, int], big: int) -> list[str]:
        return [t for t in self.seq_scans if sizes.get(t, 0) > big]


def explain(db: Any, path: str, statement: str, params: Any) -> Plan:
    """EXPLAIN (ANALYZE, BUFFERS) `statement` in a transaction rolled back."""
    entry = dbplans.explain(db, statement, params, analyze=True, buffers=True)
    top = entry["Plan"]
    indexes: set[str] = set()
    seq: set[str] = set()
    read = 0
    for node in dbplans.plan_nodes(top):
        if "Index Name" in node:
            indexes.add(node["Index Name"])
        if node["Node Type"] == "Seq Scan":
            seq.add(node["Relation Name"])
        if "Relation Name" in node:
            removed = int(node.get("Rows Removed by Filter", 0)) + int(
                node.get("Rows Removed by Index Recheck", 0)
            )
            loops = int(node.get("Actual Loops", 1) or 1)
            read += (int(node.get("Actual Rows", 0)) + removed) * loops
    buffers = int(top.get("Shared Hit Blocks", 0)) + int(top.get("Shared Read Blocks", 0))
    return Plan(
        path=path,
        statement=statement,
        top=top["Node Type"],
        indexes=sorted(indexes),
        seq_scans=sorted(seq),
        rows_read=read,
        rows_returned=int(top.get("Actual Rows", 0)),
        ms=float(entry.get("Execution Time", 0.0)),
        buffers=buffers,
    )


def table_sizes(db: Any) -> dict[str, int]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT relname, reltuples::bigint FROM pg_class "
                "WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
            )
        ).all()
    return {name: int(n) for name, n in rows}


def shorten(statement: str, width: int = 110) -> str:
    """One line: the verb, the main table and the WHERE clause, for the table."""
    flat = re.sub(r"\s+", " ", statement).strip()
    flat = re.sub(r"SELECT .*? FROM ", "SELECT … FROM ", flat, count=1)
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def hot_paths(ctx: Any, grown: bench_growth.Grown) -> list[tuple[str, Callable[[], None]]]:
    """(name, run) for each hot path; `run` changes nothing it does not roll back, except the
    inbound and tick paths, which run for real as the system would."""
    from dash.actions.queueing import queue_message
    from dash.chartdata import measure_series
    from dash.engine import handle_inbound
    from dash.inbound import InboundMessage
    from dash.models import Cohort, Measure, Person, Team
    from dash.queries.data import current_value
    from dash.queries.outbox import due_outbox
    from dash.queries.people import person_for
    from dash.timeutil import utcnow
    from dash.web.cohorts import build_rows, dash_dates
    from dash.web.teams import thread
    from dash.web.today import needs_me
    from scheduler.tick import DispatchReport, claim_due, dispatch, sync_agendas

    at = bench_growth.PROMPTS_AT
    pop = grown.pops[len(grown.pops) // 2]
    chat = str(pop.reporter_chat_ids[3])
    team_id = pop.team_ids[3]
    day = pop.start + timedelta(days=bench_growth.HISTORY_DAYS - 1)
    ids = itertools.count(1)

    def rolled_back(run: Callable[[Session], object]) -> Callable[[], None]:
        def go() -> None:
            with ctx.db.sessions() as s:
                run(s)
                s.rollback()

        return go

    def inbound(text_: str, provider_id: str | None = None) -> Callable[[], None]:
        def go() -> None:
            handle_inbound(
                ctx,
                InboundMessage(
                    channel="telegram",
                    provider_id=provider_id or f"explain-{next(ids)}",
                    address=chat,
                    sender=chat,
                    text=text_,
                    received_at=utcnow(),
                    raw={"message": {"chat": {"id": int(chat), "type": "private"}}},
                ),
            )

        return go

    def twice() -> None:  # the second delivery of one update: the (channel, provider_id) lookup
        inbound("Same update delivered twice", "explain-dup")()
        inbound("Same update delivered twice", "explain-dup")()

    def team(s: Session) -> Team:
        found = s.get(Team, team_id)
        assert found is not None
        return found

    def values(s: Session) -> None:
        for measure in s.execute(
            select(Measure).where(Measure.cohort_id == pop.cohort_id)
        ).scalars():
            current_value(s, team(s), measure, day)
            measure_series(s, team(s), measure, today=day)

    def board(s: Session) -> None:
        cohort = s.get(Cohort, pop.cohort_id)
        assert cohort is not None
        teams = list(s.execute(select(Team).where(Team.cohort_id == cohort.id)).scalars())
        build_rows(s, cohort, teams, dash_dates(cohort), day)

    def today(s: Session) -> None:
        coach = s.get(Person, pop.coach_id)
        assert coach is not None
        needs_me(s, coach, at)

    prompted = next(p for p in grown.pops[::-1] if p.cohort_id not in grown.prompted)

    def prompts_due() -> None:
        grown.prompted.add(prompted.cohort_id)
        bench_growth.add_prompts_after_history(ctx.db, prompted, at)

    return [
        ("inbound: person by Telegram id", rolled_back(lambda s: person_for(s, "telegram", chat))),
        ("inbound: person by phone", rolled_back(lambda s: person_for(s, "sms", "+15550100002"))),
        (
            "inbound: person by WhatsApp",
            rolled_back(lambda s: person_for(s, "whatsapp", "+15550100002")),
        ),
        ("inbound: duplicate delivery", twice),
        ("inbound: free text", inbound("We tried the checklist on nights, it took two minutes.")),
        ("inbound: data answer", inbound("4/9")),
        ("data: current value and series", rolled_back(values)),
        (
            "outbound: identical-message cap",
            rolled_back(
                lambda s: queue_message(s, channel="telegram", address=chat, text="Reminder")
            ),
        ),
        ("tick: agenda sync", rolled_back(lambda s: sync_agendas(s, at, DispatchReport()))),
        ("tick: (prompts made due)", prompts_due),
        ("tick: claim of due rows", rolled_back(lambda s: claim_due(s, at, worker="explain"))),
        ("tick: prompts rendered and queued", lambda: (dispatch(ctx, at), None)[1]),
        (
            "delivery: outbox claim",
            rolled_back(
                lambda s: due_outbox(s, channels=["telegram"], now=at + timedelta(hours=1))
            ),
        ),
        ("web: cohort board", rolled_back(board)),
        ("web: Today", rolled_back(today)),
        ("web: team thread", rolled_back(lambda s: thread(s, team(s)))),
    ]


def add_phones(db: Any) -> None:
    """Phone and WhatsApp numbers on every other person, so those lookups have rows to find."""
    with db.engine.begin() as conn:
        for channel in ("sms", "whatsapp"):
            conn.execute(
                text(
                    "INSERT INTO addresses (person_id, channel, address, chat_id, verified,"
                    " created_at) SELECT id, :channel, '+1555' || lpad(id::text, 7, '0'),"
                    " '+1555' || lpad(id::text, 7, '0'), TRUE, now() FROM people"
                    " WHERE id % 2 = 0"
                ),
                {"channel": channel},
            )


def run(teams: int = 10_000, big: int = 1_000, show_all: bool = False) -> list[Figure]:
    """Build, capture, explain; print the markdown table; return one Figure per hot path."""
    ctx = configure(database_url("postgresql"))
    grown = bench_growth.Grown()
    bench_growth.grow(ctx, grown, teams)
    add_phones(ctx.db)
    bench_growth.analyze(ctx.db)
    sizes = table_sizes(ctx.db)
    print("rows: " + ", ".join(f"{t} {n:,}" for t, n in sorted(sizes.items()) if n > big))
    plans: list[Plan] = []
    for name, go in hot_paths(ctx, grown):
        with dbplans.captured(ctx.db, verbs=("SELECT", "UPDATE", "DELETE", "WITH")) as seen:
            go()
        done: set[str] = set()
        for statement, params in seen:
            if statement in done:
                continue
            done.add(statement)
            plans.append(explain(ctx.db, name, statement, params))
    print(
        "| path | statement | top node | indexes | rows read → returned | ms | flag |\n"
        "|---|---|---|---|---:|---:|---|"
    )
    figures: list[Figure] = []
    for name in dict.fromkeys(p.path for p in plans):
        mine = [p for p in plans if p.path == name]
        flagged = [p for p in mine if p.flagged(sizes, big)]
        for p in mine:
            flag = ", ".join(f"Seq Scan on {t} ({sizes[t]:,} rows)" for t in p.flagged(sizes, big))
            if show_all or flag or p.ms >= 1.0:
                print(
                    f"| {p.path} | `{shorten(p.statement)}` | {p.top} | "
                    f"{', '.join(p.indexes) or '—'} | {p.rows_read:,} → {p.rows_returned:,} | "
                    f"{p.ms:.2f} | {flag} |"
                )
        figures.append(
            Figure(
                "explain",
                f"{name}: {len(mine)} statements, slowest {max(p.ms for p in mine):.2f} ms, "
                f"{sum(p.rows_read for p in mine):,} rows read, "
                f"{len(flagged)} seq scans of a big table; indexes: "
                f"{', '.join(sorted({i for p in mine for i in p.indexes})) or 'none'}",
                sum(p.ms for p in mine),
                "ms",
            )
        )
    for figure in figures:
        print(figure.line())
    ctx.db.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=1_000, help="rows above which a seq scan counts")
    parser.add_argument("--all", action="store_true", help="every statement, not only slow ones")
    args = parser.parse_args()
    run(args.teams, args.big, args.all)


if __name__ == "__main__":
    main()
