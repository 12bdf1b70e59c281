"""Every hot query is served by an index (PostgreSQL EXPLAIN).

The statements explained are the ones the real code sends: each hot path runs against a small
population while the SQL it emits is captured, then each captured SELECT is explained with
sequential scans disabled. The planner then still picks a sequential scan only when no index
can serve the query, so "no Seq Scan on the hot table" means an index exists for it, whatever
the table size. (With seq scans allowed a planner rightly prefers them on tiny tables.)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bench import population
from dash.actions.queueing import queue_message
from dash.chartdata import measure_series
from dash.db import Database
from dash.dbplans import captured, explain, plan_nodes
from dash.models import Measure, Person, Priority, Team
from dash.queries.outbox import due_outbox
from dash.queries.threads import waiting_messages
from dash.timeutil import utcnow
from dash.web.teams import thread
from dash.web.today import waiting_threads
from scheduler.tick import claim_due

pytestmark = pytest.mark.postgres_only(reason="EXPLAIN plans are PostgreSQL's")


@pytest.fixture
def pop(db: Database) -> population.Population:
    pop = population.build(db, 20, compile_agendas=False)
    population.add_due_prompts(db, pop, utcnow() - timedelta(minutes=1))
    population.add_history(db, pop, days=5)
    with db.transaction() as s:
        for chat in pop.reporter_chat_ids[:5]:
            queue_message(s, channel="telegram", address=str(chat), text="Reminder")
    return pop


def plans(db: Database, run: Callable[[Session], object]) -> list[tuple[str, dict[str, Any]]]:
    """(statement, top plan node) for each SELECT (or WITH … SELECT) `run` sends, explained
    with sequential scans disabled; its changes rolled back."""
    with captured(db, ("SELECT", "WITH")) as seen, db.sessions() as s:
        run(s)
        s.rollback()
    return [(st, explain(db, st, params, seqscan=False)["Plan"]) for st, params in seen]


def weak_reads(plan: dict[str, Any], table: str, columns: tuple[str, ...]) -> list[str]:
    """Nodes of the plan that read `table` without an index condition on one of `columns`: a
    sequential scan, or an index walked on other columns only (which still visits every row
    of, say, one channel, and grows with the table)."""
    bad: list[str] = []
    for node in plan_nodes(plan):
        if node.get("Relation Name") == table:
            kind = node["Node Type"]
            cond = node.get("Index Cond", "") + node.get("Recheck Cond", "")
            if kind == "Seq Scan" or not any(c in cond for c in columns):
                bad.append(f"{kind} {node.get('Index Name', '')} {cond}".strip())
    return bad


def assert_indexed(
    db: Database, run: Callable[[Session], object], table: str, *columns: str
) -> None:
    """Every query `run` sends on `table` finds its rows through an index on one of `columns`."""
    found = [(stmt, plan) for stmt, plan in plans(db, run) if f" {table}" in stmt]
    assert found, f"the hot path sent no query on {table}"
    for statement, plan in found:
        bad = weak_reads(plan, table, columns)
        assert not bad, f"{table} read without an index on {columns}: {bad}\nfor: {statement}"


def _team(s: Session, pop: population.Population) -> Team:
    team = s.get(Team, pop.team_ids[3])
    assert team is not None
    return team


def test_due_agenda_claim_uses_an_index(db: Database, pop: population.Population) -> None:
    # Pending rows by due time (ix_agenda_pending_order); rows left claimed by a dead ticker by
    # state (ix_agenda_due): only the rows being run at this moment are ever "claimed".
    assert_indexed(
        db, lambda s: claim_due(s, utcnow(), worker="explain"), "agenda", "due_at", "state"
    )


def test_outbox_claim_uses_an_index(db: Database, pop: population.Population) -> None:
    # Both the due rows and the "oldest live row of each chat" check read live rows only
    # (partial indexes on state, searched by due time, chat, or lease end): the claim never
    # grows with the history of sent rows. On this tiny backlog the planner may read the live
    # rows of the channel at once (Index Cond on channel only); tests/db/test_query_plans.py pins
    # that with a real backlog the claim probes chat by chat and stops at its limit.
    assert_indexed(
        db,
        lambda s: due_outbox(s, channels=["telegram"], now=utcnow()),
        "outbox",
        "next_attempt_at",
        "address",
        "claimed_until",
        "channel",
    )


def test_identical_message_cap_uses_an_index(db: Database, pop: population.Population) -> None:
    def queue(s: Session) -> None:
        # Only scheduled (bulk) messages are capped: a reply is never held.
        queue_message(
            s, channel="telegram", address="700000001", text="Hello again", priority=Priority.BULK
        )

    assert_indexed(db, queue, "messages", "address")


def test_a_teams_thread_uses_an_index(db: Database, pop: population.Population) -> None:
    assert_indexed(db, lambda s: thread(s, _team(s, pop)), "messages", "team_id")


def test_needs_reply_lists_use_an_index(db: Database, pop: population.Population) -> None:
    def today_page(s: Session) -> None:
        coach = s.get(Person, pop.coach_id)
        assert coach is not None
        waiting_threads(s, coach)

    assert_indexed(db, today_page, "messages", "needs_reply", "team_id")
    assert_indexed(db, lambda s: waiting_messages(s, _team(s, pop)), "messages", "team_id")


def test_current_values_by_team_use_an_index(db: Database, pop: population.Population) -> None:
    def series(s: Session) -> None:
        team = _team(s, pop)
        for measure in s.execute(
            select(Measure).where(Measure.cohort_id == pop.cohort_id)
        ).scalars():
            measure_series(s, team, measure, today=population.START + timedelta(days=4))

    assert_indexed(db, series, "measure_values", "team_id")
