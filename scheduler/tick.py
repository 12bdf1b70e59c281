"""One scheduler tick: bring agendas up to date, then turn what is due into outbox rows.

`dispatch(ctx, now)` is the whole of it; APScheduler (scheduler.runner) calls it every few
seconds and `dash dispatch --now` calls it once. Each batch is claimed in its own committed
transaction (state 'claimed', with who and when), then run in a second transaction that queues
the outbox rows and marks the agenda rows done together. A process killed in between leaves
rows 'claimed'; once their lease has expired the next tick reclaims and runs them, and the
per-recipient dedupe keys (`agenda:<row id>:...`) make sure nothing already queued is queued
again. On PostgreSQL claims use FOR UPDATE SKIP LOCKED so two tickers never share a row; SQLite
has a single writer (BEGIN IMMEDIATE, see dash.db).

Rules applied to each claimed row, in this order:
1. Past its grace period (due_at + grace_minutes): skipped with a note, never sent late.
2. The team left (withdrawn, declined): cancelled.
3. In the recipient's quiet hours (the team's own, else the curriculum's): it waits until they
   end, keeping its original deadline; if that deadline falls inside the quiet hours it is
   skipped instead.
4. Otherwise the step runs (scheduler.steps) and the row is done.

Rows of scheduler.steps.BATCHED_KINDS (daily prompts: thousands fall due at one instant) that
pass rules 1-3 run together first, with a fixed number of statements per batch
(steps.run_batch); if that batch raises, its rows run one by one, each in its own savepoint.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import literal, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import flag_modified

from dash.context import AppContext
from dash.curriculum import load_curriculum
from dash.models import AgendaItem, AgendaState, Cohort, Team, TeamState
from dash.schedule import quiet_hours
from dash.timeutil import end_of_quiet_hours, in_quiet_hours, to_local
from scheduler.agenda import (
    LIVE_TEAM_STATES,
    SyncResult,
    cohorts_behind,
    cohorts_to_sync,
    locked_cohorts,
    sync_coach_digests,
    sync_pdsa_followups,
    sync_story_digests,
    sync_team,
    teams_needing_sync,
    wants_digests,
)
from scheduler.steps import BATCHED_KINDS, StepOutcome, run_batch, run_step

log = logging.getLogger("scheduler.tick")

#: A row claimed longer ago than this by a process that never finished it is claimed again.
CLAIM_LEASE = timedelta(minutes=5)
#: Rows claimed and run per transaction: larger batches mean fewer claims, loads and commits,
#: yet several tickers still share a large fan-out (tests/app/test_multiprocess.py).
BATCH_SIZE = 250
#: A tick stops after this many batches; the next tick continues (keeps one tick bounded).
MAX_BATCHES = 50


@dataclass
class DispatchReport:
    """What one tick did."""

    compiled: int = 0  # team agendas (re)compiled
    rows_added: int = 0
    rows_updated: int = 0
    rows_cancelled: int = 0
    claimed: int = 0
    reclaimed: int = 0  # rows taken over from a process that died mid-tick
    done: int = 0
    sent: int = 0  # outbox messages queued
    nudges: int = 0  # of which nudges
    skipped: int = 0
    deferred: int = 0  # waiting for quiet hours to end
    failed: int = 0  # a step that raised; the row is skipped with the error as its note
    by_kind: dict[str, int] = field(default_factory=dict)

    def add_sync(self, result: SyncResult) -> None:
        self.rows_added += result.added
        self.rows_updated += result.updated
        self.rows_cancelled += result.cancelled

    def summary(self) -> str:
        """One line for logs and the CLI."""
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.by_kind.items()))
        return (
            f"compiled {self.compiled} agenda(s) (+{self.rows_added} ~{self.rows_updated} "
            f"-{self.rows_cancelled} rows); claimed {self.claimed} (reclaimed {self.reclaimed}); "
            f"done {self.done}, queued {self.sent} message(s) ({self.nudges} nudges), "
            f"skipped {self.skipped}, waiting for quiet hours {self.deferred}, failed {self.failed}"
            + (f"; by kind: {kinds}" if kinds else "")
        )


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def sync_agendas(session: Session, now: datetime, report: DispatchReport) -> None:
    """Compile what changed since the last tick (caller's transaction): the agendas and digests
    of cohorts whose schedule or coaches changed, teams that enrolled or left (a first enrolled
    team also brings its cohort's digests), then PDSA follow-ups. Nothing changed: three
    indexed queries that find nothing, whatever the number of cohorts, teams and cycles."""
    changed = cohorts_to_sync(session)
    enrolled_in: set[int] = set()
    compiled: list[int] = []
    for team in teams_needing_sync(session, changed):
        report.add_sync(sync_team(session, team))
        report.compiled += 1
        if team.state in LIVE_TEAM_STATES:
            enrolled_in.add(team.cohort_id)
            compiled.append(team.id)
    behind = cohorts_behind(session, [c.id for c in changed])
    cohorts = changed + locked_cohorts(session, enrolled_in - {c.id for c in changed})
    for cohort in cohorts:
        if wants_digests(session, cohort, now):
            report.add_sync(sync_coach_digests(session, cohort))
            report.add_sync(sync_story_digests(session, cohort))
        if cohort.id not in behind:  # else a team was held elsewhere: try again next tick
            cohort.synced_version = cohort.sync_version
    report.add_sync(sync_pdsa_followups(session, compiled, [c.id for c in changed]))


def claim_due(
    session: Session, now: datetime, *, worker: str, limit: int = BATCH_SIZE
) -> tuple[list[int], int]:
    """Claim up to `limit` due rows (and rows whose claim lease expired): (ids, reclaimed).

    Two queries merged here, not one with an OR of the states: each is an index-ordered walk
    (ix_agenda_pending_order; the few claimed rows through ix_agenda_due) that stops at
    `limit`, so a claim costs the same however many rows fall due at one instant.
    """
    lock = session.get_bind().dialect.name == "postgresql"

    def due(*conditions: Any) -> list[AgendaItem]:
        query = select(AgendaItem).where(*conditions).order_by(AgendaItem.due_at, AgendaItem.id)
        query = query.limit(limit)
        if lock:
            query = query.with_for_update(skip_locked=True)
        return list(session.execute(query).scalars())

    found = due(
        # a literal, as in the partial index's predicate, so the planner can use the index
        AgendaItem.state == literal(AgendaState.PENDING.value, literal_execute=True),
        AgendaItem.due_at <= now,
    ) + due(
        AgendaItem.state == AgendaState.CLAIMED.value,
        AgendaItem.claimed_at < now - CLAIM_LEASE,
    )
    rows = sorted(found, key=lambda row: (row.due_at, row.id))[:limit]
    reclaimed = 0
    for row in rows:
        if row.state == AgendaState.CLAIMED.value:
            reclaimed += 1
            log.warning(
                "reclaiming agenda row %s (%s) left claimed by %s at %s",
                row.id,
                row.step_key,
                row.claimed_by,
                row.claimed_at,
            )
        row.state = AgendaState.CLAIMED.value
        row.claimed_by = worker
        row.claimed_at = now
    return [row.id for row in rows], reclaimed


def _finish(row: AgendaItem, state: str, now: datetime, note: str | None) -> None:
    row.state = state
    row.finished_at = now
    row.note = note[:200] if note else None
    # Always written, even when unchanged: rows finished together then share one column set
    # and the flush sends them as one executemany, not one UPDATE per row.
    flag_modified(row, "note")


def process_row(
    session: Session, ctx: AppContext, row: AgendaItem, now: datetime, report: DispatchReport
) -> None:
    """Apply the rules of the module docstring to one claimed row."""
    if ready_to_run(session, ctx, row, now, report):
        run_one(session, ctx, row, now, report)


def ready_to_run(
    session: Session, ctx: AppContext, row: AgendaItem, now: datetime, report: DispatchReport
) -> bool:
    """Rules 1-3 of the module docstring: False when the row was skipped, cancelled or put
    back to wait for quiet hours (already recorded), True when its step should run now."""
    deadline = row.due_at + timedelta(minutes=row.grace_minutes)
    if now > deadline:
        late = int((now - row.due_at).total_seconds() // 60)
        _finish(
            row,
            AgendaState.SKIPPED.value,
            now,
            f"stale: {late} min late, grace {row.grace_minutes} min; not sent late",
        )
        report.skipped += 1
        return False
    team = session.get(Team, row.team_id) if row.team_id is not None else None
    if team is not None and team.state != TeamState.ENROLLED.value:
        _finish(row, AgendaState.CANCELLED.value, now, f"team is {team.state}")
        return False
    cohort = session.get(Cohort, row.cohort_id)
    assert cohort is not None
    start, end = quiet_hours(team, load_curriculum(cohort.topic), ctx.settings)
    if in_quiet_hours(now, cohort.timezone, start, end):
        resume = end_of_quiet_hours(now, cohort.timezone, start, end)
        if resume > deadline:
            _finish(
                row,
                AgendaState.SKIPPED.value,
                now,
                f"quiet hours {start:%H:%M}-{end:%H:%M} last past its grace period",
            )
            report.skipped += 1
            return False
        row.state = AgendaState.PENDING.value
        row.grace_minutes = max(0, int((deadline - resume).total_seconds() // 60))
        row.due_at = resume
        row.claimed_by = None
        row.claimed_at = None
        row.note = f"waits for quiet hours to end at {to_local(resume, cohort.timezone):%H:%M}"
        report.deferred += 1
        return False
    return True


def run_one(
    session: Session, ctx: AppContext, row: AgendaItem, now: datetime, report: DispatchReport
) -> None:
    """Run one ready row's step in a savepoint; a step that raises skips only its own row."""
    try:
        with session.begin_nested():
            outcome = run_step(session, ctx, row, now)
    except Exception as exc:  # a broken step must not hold up the others; it stays visible
        log.exception("agenda row %s (%s) failed", row.id, row.step_key)
        _finish(row, AgendaState.SKIPPED.value, now, f"failed: {exc.__class__.__name__}: {exc}")
        report.failed += 1
        report.skipped += 1
        return
    _record(row, outcome, now, report)


def run_together(
    session: Session, ctx: AppContext, rows: list[AgendaItem], now: datetime, report: DispatchReport
) -> None:
    """Run ready rows of BATCHED_KINDS as one batch (scheduler.steps.run_batch) in a savepoint;
    if the batch raises, run each row alone so one bad row never holds up the others."""
    if not rows:
        return
    try:
        with session.begin_nested():
            outcomes = run_batch(session, ctx, rows, now)
    except Exception:
        log.exception("a batch of %d agenda rows failed; running them one by one", len(rows))
        for row in rows:
            run_one(session, ctx, row, now, report)
        return
    for row in rows:
        _record(row, outcomes[row.id], now, report)


def _record(row: AgendaItem, outcome: StepOutcome, now: datetime, report: DispatchReport) -> None:
    _finish(row, AgendaState.DONE.value, now, outcome.note)
    report.done += 1
    report.sent += outcome.queued
    report.nudges += outcome.nudges
    for kind in outcome.kinds:
        report.by_kind[kind] = report.by_kind.get(kind, 0) + 1


def _load_batch(session: Session, ids: list[int]) -> list[object]:
    """The batch's rows, teams (with units) and cohorts (with coaches, measures) at once, returned
    so the caller holds them: the identity map keeps objects only while something references
    them, so otherwise every row fetched its team, unit, cohort and coaches again."""
    rows = list(session.execute(select(AgendaItem).where(AgendaItem.id.in_(ids))).scalars())
    team_ids = {r.team_id for r in rows if r.team_id is not None}
    teams = session.execute(
        select(Team).where(Team.id.in_(team_ids)).options(selectinload(Team.unit))
    ).scalars()
    cohorts = session.execute(
        select(Cohort)
        .where(Cohort.id.in_({r.cohort_id for r in rows}))
        .options(selectinload(Cohort.coaches), selectinload(Cohort.measures))
    ).scalars()
    return [*rows, *teams, *cohorts]


def dispatch(ctx: AppContext, now: datetime, *, worker: str | None = None) -> DispatchReport:
    """Everything the scheduler does at instant `now` (aware): sync agendas, run what is due."""
    if now.tzinfo is None:
        raise ValueError("dispatch needs an aware instant")
    worker = worker or worker_id()
    report = DispatchReport()
    with ctx.db.transaction() as session:
        sync_agendas(session, now, report)
    for _ in range(MAX_BATCHES):
        with ctx.db.transaction() as session:
            ids, reclaimed = claim_due(session, now, worker=worker)
        report.claimed += len(ids)
        report.reclaimed += reclaimed
        if not ids:
            break
        with ctx.db.transaction() as session:
            held = _load_batch(session, ids)  # noqa: F841 - keeps the batch in the identity map
            mine = [
                row
                for row in (session.get(AgendaItem, row_id) for row_id in ids)
                if row is not None
                and row.state == AgendaState.CLAIMED.value
                and row.claimed_by == worker  # else another ticker reclaimed it meanwhile
            ]
            # Batched kinds first (a nudge in the same batch then sees its prompt done).
            together = [
                row
                for row in mine
                if row.kind in BATCHED_KINDS and ready_to_run(session, ctx, row, now, report)
            ]
            run_together(session, ctx, together, now, report)
            for row in mine:
                if row.kind not in BATCHED_KINDS:
                    process_row(session, ctx, row, now, report)
        if len(ids) < BATCH_SIZE:
            break
    if report.claimed or report.compiled:
        log.info("tick at %s: %s", now.isoformat(), report.summary())
    return report
