"""The lookups every inbound message, tick and page make go through the index meant for them.

PostgreSQL only (the plans are its planner's). The statements are captured from the real code
paths (an SQLAlchemy listener), never retyped, then explained. Point lookups on a unique key
are explained as they are, with sequential scans allowed: the plan must name the unique index
(a planner that walks the table for one row means the index is gone). The per-cohort and
per-team reads of a small population are explained with sequential scans disabled, since on
tiny tables a planner rightly prefers them; a sequential scan then still appears only when no
index can serve the query. tests/db/test_indexes.py covers the thread, Today and claim queries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bench import bench_claim, bench_growth, population
from dash.actions.queueing import Draft, queue_many, queue_message
from dash.context import AppContext
from dash.db import Database
from dash.dbplans import Captured, captured, explain, plan_nodes
from dash.engine import handle_inbound
from dash.inbound import InboundMessage
from dash.models import Address, Cohort, Message, Priority, Team
from dash.queries.outbox import due_outbox
from dash.queries.people import person_for
from dash.timeutil import utcnow
from dash.web.cohorts import build_rows, dash_dates
from scheduler.tick import DispatchReport, dispatch, sync_agendas

pytestmark = pytest.mark.postgres_only(reason="EXPLAIN plans are PostgreSQL's")


@pytest.fixture
def pop(db: Database) -> population.Population:
    pop = population.build(db, 300, compile_agendas=False)
    with db.transaction() as s:  # a phone on every reporter, as an SMS team would have
        for row in s.execute(
            select(Address).where(
                Address.channel == "telegram",
                Address.address.in_([str(c) for c in pop.reporter_chat_ids]),
            )
        ).scalars():
            phone = f"+1555{int(row.address or 0) % 10_000_000:07d}"
            s.add(Address(person_id=row.person_id, channel="sms", address=phone, chat_id=phone))
    return pop


@pytest.fixture
def history(db: Database, pop: population.Population) -> population.Population:
    population.add_history(db, pop, days=3)
    return pop


def plan_of(db: Database, statement: str, params: Any, *, seqscan: bool) -> dict[str, Any]:
    """The top node of the statement's plan."""
    return explain(db, statement, params, seqscan=seqscan)["Plan"]


def reads(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of the plan that reads a table."""
    return (n for n in plan_nodes(node) if "Relation Name" in n)


def statements_on(seen: Captured, table: str) -> Captured:
    return [(st, p) for st, p in seen if f"FROM {table} " in st or f"FROM {table}\n" in st]


def assert_uses(db: Database, seen: Captured, table: str, index: str) -> None:
    """Each captured statement on `table` finds its rows through `index` (seq scans allowed,
    planner statistics fresh as autovacuum would keep them)."""
    found = statements_on(seen, table)
    assert found, f"the path sent no query on {table}"
    with db.engine.connect() as conn:
        conn.exec_driver_sql(f"ANALYZE {table}")
        conn.commit()
    for statement, params in found:
        nodes = [n for n in reads(plan_of(db, statement, params, seqscan=True))]
        on_table = [n for n in nodes if n["Relation Name"] == table]
        used = {n.get("Index Name") for n in on_table}
        assert index in used, f"{table} read by {on_table} instead of {index}\nfor: {statement}"


def assert_no_seq_scan(db: Database, seen: Captured, table: str) -> None:
    """No captured statement reads `table` sequentially when an index could serve it."""
    found = statements_on(seen, table)
    assert found, f"the path sent no query on {table}"
    for statement, params in found:
        scans = [
            n
            for n in reads(plan_of(db, statement, params, seqscan=False))
            if n["Relation Name"] == table and n["Node Type"] == "Seq Scan"
        ]
        assert not scans, f"{table} read sequentially: {scans}\nfor: {statement}"


def inbound(pop: population.Population, provider_id: str, text: str) -> InboundMessage:
    chat = str(pop.reporter_chat_ids[4])
    return InboundMessage(
        channel="telegram",
        provider_id=provider_id,
        address=chat,
        sender=chat,
        text=text,
        received_at=utcnow(),
        raw={"message": {"chat": {"id": int(chat), "type": "private"}}},
    )


def run(db: Database, go: Callable[[Session], object]) -> Captured:
    with captured(db) as seen, db.sessions() as s:
        go(s)
        s.rollback()
    return seen


def test_a_sender_is_found_by_the_unique_index_of_their_address(
    db: Database, pop: population.Population
) -> None:
    chat = str(pop.reporter_chat_ids[7])
    seen = run(db, lambda s: person_for(s, "telegram", chat))
    assert_uses(db, seen, "addresses", "uq_addresses_channel_address")
    seen = run(db, lambda s: person_for(s, "sms", f"+1555{int(chat) % 10_000_000:07d}"))
    assert_uses(db, seen, "addresses", "uq_addresses_channel_address")


def test_a_repeated_delivery_is_recognised_by_the_provider_id_index(
    ctx: AppContext, db: Database, history: population.Population
) -> None:
    pop = history
    first = handle_inbound(ctx, inbound(pop, "update-1001", "We tried the checklist"))
    with captured(db) as seen:
        again = handle_inbound(ctx, inbound(pop, "update-1001", "We tried the checklist"))
    assert again.duplicate and again.message_id == first.message_id
    lookups = [(st, p) for st, p in seen if "provider_id" in st]
    assert lookups, "the duplicate was not looked up by its provider id"
    assert_uses(db, lookups, "messages", "uq_messages_channel_provider_id")


def test_queued_prompts_check_their_dedupe_keys_by_index(
    ctx: AppContext, db: Database, pop: population.Population
) -> None:
    population.add_due_prompts(db, pop, population.PROMPT_AT - timedelta(minutes=1))
    population.settle_before(db, population.PROMPT_AT - timedelta(minutes=2))
    with captured(db) as seen:
        report = dispatch(ctx, population.PROMPT_AT)
    assert report.sent > 0
    keyed = [(st, p) for st, p in seen if "dedupe_key" in st and "FROM outbox" in st]
    assert keyed, "the tick sent no dedupe check"
    assert_no_seq_scan(db, keyed, "outbox")
    assert_no_seq_scan(db, seen, "memberships")


def test_cohort_board_reads_one_cohort_not_the_whole_tables(
    db: Database, history: population.Population
) -> None:
    pop = history

    def board(s: Session) -> None:
        cohort = s.get(Cohort, pop.cohort_id)
        assert cohort is not None
        teams = list(s.execute(select(Team).where(Team.cohort_id == cohort.id)).scalars())
        rows = build_rows(s, cohort, teams, dash_dates(cohort), pop.start + timedelta(days=2))
        assert len(rows) == len(pop.team_ids)

    seen = run(db, board)
    for table in ("measure_values", "messages", "pdsa_cycles", "aims"):
        assert_no_seq_scan(db, seen, table)


def test_every_tick_reads_agenda_rows_by_index(db: Database, pop: population.Population) -> None:
    seen = run(db, lambda s: sync_agendas(s, population.PROMPT_AT, DispatchReport()))
    assert_no_seq_scan(db, seen, "agenda")


def test_a_ticks_digest_sync_reads_only_its_cohorts_digest_rows(db: Database) -> None:
    # Each tick looks up every live cohort's digest rows (no team). Through the team index
    # (team_id IS NULL) that read every cohort's digest rows, once per cohort: 5 million rows
    # a tick at 10,000 teams in 400 cohorts (bench/explain_queries.py).
    for n in range(4):
        pop = population.build(
            db, 50, compile_agendas=False, tag=f"c{n}", chat_base=population.REPORTER_BASE + 50 * n
        )
        bench_growth.add_agenda(db, pop, population.PROMPT_AT)
    with db.transaction() as s:  # the digest rows, as the first tick writes them
        sync_agendas(s, population.PROMPT_AT, DispatchReport())
        for cohort in s.execute(select(Cohort)).scalars():  # changed: the next tick re-syncs
            cohort.synced_version = None
    seen = run(db, lambda s: sync_agendas(s, population.PROMPT_AT, DispatchReport()))
    digests = [(st, p) for st, p in seen if "team_id IS NULL" in st and "FROM agenda" in st]
    assert digests, "the tick sent no digest lookup"
    assert_uses(db, digests, "agenda", "ix_agenda_cohort_wide")


def test_outbox_claim_stops_at_its_limit_whatever_the_backlog(
    ctx: AppContext, db: Database
) -> None:
    # 2,000 rows waiting, two per chat: the claim walks the queued rows in send order and
    # stops after about twice its limit (each chat's second row waits behind its first),
    # probing each chat through the live-row index; it never reads and sorts the backlog.
    bench_claim.fill(ctx, 2000)
    seen = run(db, lambda s: due_outbox(s, channels=["telegram"], now=utcnow(), limit=50))
    claims = statements_on(seen, "outbox")
    assert claims, "the claim sent no query on outbox"
    walked = 0
    for statement, params in claims:
        nodes = list(plan_nodes(explain(db, statement, params, analyze=True)["Plan"]))
        assert not any(n["Node Type"] == "Seq Scan" for n in nodes), statement
        scans = [n for n in nodes if n.get("Index Name") == "ix_outbox_queued_order"]
        if scans:
            walked += 1
            assert not any(n["Node Type"] == "Sort" for n in nodes), "the backlog was sorted"
            assert scans[0]["Actual Rows"] <= 2 * 50 + 1, "the claim read past its limit"
            names = {n.get("Index Name") for n in nodes}
            assert "ix_outbox_live_chat" in names, "the chat probe is not an index lookup"
    assert walked, "no claim walked the queued rows in send order (ix_outbox_queued_order)"


def test_a_claim_right_after_a_fan_out_probes_each_chat_by_its_address(
    ctx: AppContext, db: Database
) -> None:
    # A fan-out queues thousands of rows at once, and the delivery worker claims them before
    # autovacuum has analyzed the table again. With statistics that knew no live rows, the
    # planner read every live row of the channel for each row it claimed (4,000 rows per
    # probe, 78 ms a claim): each chat must be probed by its channel and address.
    with db.transaction() as s:
        for n in range(2000):
            queue_message(s, channel="telegram", address=str(800_000_000 + n), text="Today?")
    seen = run(db, lambda s: due_outbox(s, channels=["telegram"], now=utcnow(), limit=100))
    probes = 0
    for statement, params in statements_on(seen, "outbox"):
        for node in plan_nodes(explain(db, statement, params, analyze=True)["Plan"]):
            if node.get("Index Name") == "ix_outbox_live_chat":
                probes += node["Actual Loops"]
                assert node["Actual Rows"] <= 2, "the chat probe read past its chat"
    assert probes, "no claim probed the chats through ix_outbox_live_chat"


def test_the_cap_check_in_a_fan_out_probes_each_chat_by_its_address(db: Database) -> None:
    # The tick queues a fan-out 250 drafts at a time, each batch counting what went to the
    # same chats in the last hour (the identical-message cap). With statistics from before
    # the fan-out, one IN list of addresses let the planner read every message the fan-out
    # had already queued on the channel (9,749 rows, 36 ms, by the end of 10,000).
    with db.transaction() as s:  # yesterday's prompts, which autovacuum has analyzed
        for n in range(500):
            queue_message(s, channel="telegram", address=str(800_000_000 + n), text="Today?")
        s.execute(update(Message).values(created_at=utcnow() - timedelta(days=1)))
    with db.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE messages")
        conn.commit()
    with db.transaction() as s:  # today's fan-out so far
        for n in range(2000):
            queue_message(s, channel="telegram", address=str(800_000_000 + n), text="Today?")
    drafts = [
        Draft("telegram", str(900_000_000 + n), "Today?", priority=Priority.BULK)
        for n in range(100)
    ]
    with captured(db, ("SELECT", "WITH")) as seen, db.sessions() as s:
        queue_many(s, drafts)
        s.rollback()
    counts = [(st, p) for st, p in statements_on(seen, "messages") if "count(" in st]
    assert counts, "queue_many sent no cap count"
    for statement, params in counts:
        for node in plan_nodes(explain(db, statement, params, analyze=True)["Plan"]):
            if node.get("Relation Name") == "messages" or "Index Name" in node:
                read = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
                assert read <= 2, "the cap read messages to other chats"
