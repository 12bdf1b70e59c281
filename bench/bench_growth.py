"""Growth: how the per-unit costs change from 10 to 10,000 teams, measured in process.

One database grows in steps (10, 100, 1,000, 10,000 teams by default) in cohorts of
`--cohort-size` teams (a real cohort has tens of teams, not thousands), each team with a few
days of measure values, a short thread and the sent outbox rows of that thread. After each
step (and ANALYZE on PostgreSQL) the same operations run through the public functions the
running system calls:

* an inbound free-text message from a reporter (`dash.engine.handle_inbound`);
* an idle tick with nothing due (`scheduler.tick.dispatch`: the agenda syncs every tick runs);
* the daily prompts of one fresh cohort, rendered and queued (`dispatch` on that slice);
* the cohort board's rows for one cohort (`dash.web.cohorts.build_rows`) and a coach's Today
  list (`dash.web.today.needs_me`);
* the delivery worker's outbox claim (`dash.queries.outbox.due_outbox`).

For each: SQL statements (exact, load-independent), CPU ms of this process (ORM and rendering;
the database server's time is not in it) and wall ms (noisy on a shared machine). The figures
are printed as `Figure` lines and as a markdown table, teams across.

Run: python bench/bench_growth.py [--db postgresql|sqlite] [--sizes 10,100,1000,10000]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select, text  # noqa: E402

from bench import population  # noqa: E402
from bench.common import (  # noqa: E402
    Figure,
    StatementCounter,
    configure,
    database_url,
    load_average,
)

COHORT_SIZE = 25
HISTORY_DAYS = 3
SIZES = (10, 100, 1_000, 10_000)
#: The instant every measurement runs at: 18:01 in New York the day after the history.
PROMPTS_AT = population.PROMPT_AT + timedelta(days=HISTORY_DAYS)


@dataclass
class Grown:
    """The populations built so far (one per cohort) and which were used for a prompt run."""

    pops: list[population.Population] = field(default_factory=list)
    prompted: set[int] = field(default_factory=set)
    _provider_ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def teams(self) -> int:
        return sum(len(p.team_ids) for p in self.pops)

    def next_provider_id(self) -> str:
        return f"growth-{next(self._provider_ids)}"


def add_sent_outbox(db: Any, pop: population.Population) -> None:
    """A sent outbox row for each outbound message of the population's threads (history)."""
    from dash.models import Message, OutboxItem

    with db.transaction() as s:
        rows = s.execute(
            select(
                Message.id, Message.channel, Message.address, Message.team_id, Message.created_at
            ).where(Message.team_id.in_(pop.team_ids), Message.direction == "out")
        ).all()
        if rows:
            s.execute(
                insert(OutboxItem),
                [
                    {
                        "message_id": r.id,
                        "channel": r.channel,
                        "address": r.address,
                        "team_id": r.team_id,
                        "priority": 1,
                        "state": "sent",
                        "payload": {},
                        "attempts": 1,
                        "next_attempt_at": r.created_at,
                        "created_at": r.created_at,
                        "sent_at": r.created_at,
                    }
                    for r in rows
                ],
            )


def add_agenda(db: Any, pop: population.Population, now: datetime) -> int:
    """Every team's whole compiled agenda (the scheduler's `plan_team`, ~65 rows a team),
    rows due before `now` done as earlier ticks would have left them; the daily prompts of the
    day after the history are left out (`add_prompts_after_history` adds them for the cohort
    whose prompts are measured)."""
    prompt_day = pop.start + timedelta(days=HISTORY_DAYS)
    return population.add_planned_steps(
        db,
        pop,
        lambda step: not (step.kind == "daily_prompt" and step.local_day == prompt_day),
        done_before=now,
    )


def grow(ctx: Any, grown: Grown, teams: int, cohort_size: int = COHORT_SIZE) -> None:
    """Add cohorts (with history) until `grown` holds `teams` teams; then ANALYZE."""
    while grown.teams < teams:
        size = min(cohort_size, teams - grown.teams)
        tag = f"c{len(grown.pops)}-"
        pop = population.build(
            ctx.db,
            size,
            compile_agendas=False,
            tag=tag,
            chat_base=population.REPORTER_BASE + grown.teams,
        )
        population.add_history(ctx.db, pop, days=HISTORY_DAYS, seed=len(grown.pops))
        add_sent_outbox(ctx.db, pop)
        add_agenda(ctx.db, pop, PROMPTS_AT)
        grown.pops.append(pop)
    analyze(ctx.db)


def analyze(db: Any) -> None:
    """Fresh planner statistics, as autovacuum would have after a bulk load."""
    with db.engine.connect() as conn:
        if db.engine.dialect.name == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        else:
            conn.execute(text("ANALYZE"))
            conn.commit()


@dataclass
class Cost:
    """Statements, CPU ms and wall ms of one operation, per unit (median over repeats)."""

    statements: float
    cpu_ms: float
    wall_ms: float


def measure(db: Any, run: Callable[[], int], repeat: int) -> Cost:
    """Run `run` `repeat` times; it returns how many units it did (e.g. prompts queued)."""
    statements, cpu, wall = [], [], []
    for _ in range(repeat):
        with StatementCounter(db.engine) as counter:
            cpu0, wall0 = time.process_time(), time.perf_counter()
            units = max(1, run())
            cpu1, wall1 = time.process_time(), time.perf_counter()
        statements.append(counter.count / units)
        cpu.append((cpu1 - cpu0) * 1000 / units)
        wall.append((wall1 - wall0) * 1000 / units)
    return Cost(statistics.median(statements), statistics.median(cpu), statistics.median(wall))


def inbound_cost(ctx: Any, grown: Grown, repeat: int = 15) -> Cost:
    """A free-text message from a reporter of a team in the middle of the population."""
    from dash.engine import handle_inbound
    from dash.inbound import InboundMessage
    from dash.timeutil import utcnow

    pop = grown.pops[len(grown.pops) // 2]
    chats = itertools.cycle(pop.reporter_chat_ids)

    def one() -> int:
        chat = str(next(chats))
        handle_inbound(
            ctx,
            InboundMessage(
                channel="telegram",
                provider_id=grown.next_provider_id(),
                address=chat,
                sender=chat,
                text="We tried the new sedation checklist on nights, it took two minutes.",
                received_at=utcnow(),
                raw={"message": {"chat": {"id": int(chat), "type": "private"}}},
            ),
        )
        return 1

    one()  # warm-up: templates, curriculum caches
    return measure(ctx.db, one, repeat)


def idle_tick_cost(ctx: Any, at: datetime, repeat: int = 3) -> Cost:
    """A tick with nothing due: what every tick costs whatever the load."""
    from scheduler.tick import dispatch

    return measure(ctx.db, lambda: (dispatch(ctx, at), 1)[1], repeat)


def add_prompts_after_history(db: Any, pop: population.Population, at: datetime) -> int:
    """Agenda rows for the daily prompts of the day after the history, due just before `at`.

    The scheduler's own plan for that day, as `population.add_due_prompts` writes the first
    day's (whose data the history already holds: those prompts would finish silently and
    measure nothing).
    """
    day = pop.start + timedelta(days=HISTORY_DAYS)
    return population.add_planned_steps(
        db,
        pop,
        lambda step: step.kind == "daily_prompt" and step.local_day == day,
        due_at=at - timedelta(minutes=1),
    )


def prompt_cost(ctx: Any, grown: Grown, at: datetime, idle: Cost) -> tuple[Cost, Cost]:
    """One cohort's daily prompts (a cohort not prompted yet): the whole tick, and per prompt
    queued without the idle tick's own cost (measured just before; statements are exact, the
    times of a difference are noisy)."""
    from scheduler.tick import dispatch

    pop = next(p for p in grown.pops[::-1] if p.cohort_id not in grown.prompted)
    grown.prompted.add(pop.cohort_id)
    add_prompts_after_history(ctx.db, pop, at)
    sent = 0

    def tick() -> int:
        nonlocal sent
        sent = dispatch(ctx, at).sent
        return 1

    whole = measure(ctx.db, tick, 1)
    if sent == 0:
        raise RuntimeError("the prompt tick queued nothing: the benchmark measures nothing")
    return whole, Cost(
        (whole.statements - idle.statements) / sent,
        max(0.0, whole.cpu_ms - idle.cpu_ms) / sent,
        max(0.0, whole.wall_ms - idle.wall_ms) / sent,
    )


def board_cost(ctx: Any, grown: Grown, repeat: int = 5) -> tuple[Cost, Cost]:
    """The cohort board's rows and the coach's Today list for one cohort in the middle."""
    from dash.models import Cohort, Person, Team
    from dash.web.cohorts import build_rows, dash_dates
    from dash.web.today import needs_me

    pop = grown.pops[len(grown.pops) // 2]
    today = pop.start + timedelta(days=HISTORY_DAYS - 1)

    def board() -> int:
        with ctx.db.sessions() as s:
            cohort = s.get(Cohort, pop.cohort_id)
            assert cohort is not None
            teams = list(s.execute(select(Team).where(Team.cohort_id == cohort.id)).scalars())
            build_rows(s, cohort, teams, dash_dates(cohort), today)
        return 1

    def today_list() -> int:
        with ctx.db.sessions() as s:
            coach = s.get(Person, pop.coach_id)
            assert coach is not None
            needs_me(s, coach, datetime.combine(today, dtime(15), tzinfo=UTC))
        return 1

    board()
    today_list()
    return measure(ctx.db, board, repeat), measure(ctx.db, today_list, repeat)


def claim_cost(ctx: Any, at: datetime, repeat: int = 10) -> tuple[Cost, int]:
    """The delivery worker's claim of up to 100 due rows (rolled back), and the backlog."""
    from sqlalchemy import func

    from dash.models import OutboxItem
    from dash.queries.outbox import due_outbox

    def claim() -> int:
        with ctx.db.sessions() as s:
            due_outbox(s, channels=["telegram"], now=at + timedelta(hours=1), limit=100)
            s.rollback()
        return 1

    claim()
    with ctx.db.sessions() as s:
        backlog = s.execute(
            select(func.count(OutboxItem.id)).where(OutboxItem.state == "queued")
        ).scalar_one()
    return measure(ctx.db, claim, repeat), int(backlog)


ROWS = (
    ("inbound message", "per message"),
    ("idle tick", "per tick"),
    ("prompt tick", "one cohort's prompts, 2 a team"),
    ("daily prompt", "per prompt, beyond the idle tick"),
    ("cohort board rows", "one cohort"),
    ("Today list", "one coach"),
    ("outbox claim", "100 rows"),
)


def run(
    kind: str = "postgresql",
    sizes: tuple[int, ...] = SIZES,
    cohort_size: int = COHORT_SIZE,
) -> tuple[list[Figure], dict[int, dict[str, Cost]]]:
    """Grow the population through `sizes`, measuring at each; figures and the raw table."""
    ctx = configure(database_url(kind))
    grown = Grown()
    at = PROMPTS_AT
    table: dict[int, dict[str, Cost]] = {}
    figures: list[Figure] = []
    for size in sizes:
        started = time.perf_counter()
        grow(ctx, grown, size, cohort_size)
        built = time.perf_counter() - started
        costs: dict[str, Cost] = {}
        costs["inbound message"] = inbound_cost(ctx, grown)
        costs["idle tick"] = idle_tick_cost(ctx, at)
        costs["prompt tick"], costs["daily prompt"] = prompt_cost(
            ctx, grown, at, costs["idle tick"]
        )
        costs["cohort board rows"], costs["Today list"] = board_cost(ctx, grown)
        costs["outbox claim"], backlog = claim_cost(ctx, at)
        table[size] = costs
        print(
            f"# {size:,} teams in {len(grown.pops)} cohorts (built in {built:.0f} s, "
            f"outbox backlog {backlog:,}, load {load_average()})",
            flush=True,
        )
        for name, unit in ROWS:
            cost = costs[name]
            print(
                f"  {name} ({unit}): {cost.statements:.1f} statements, "
                f"{cost.cpu_ms:.1f} ms CPU, {cost.wall_ms:.1f} ms wall",
                flush=True,
            )
    first, last = sizes[0], sizes[-1]
    for name, unit in ROWS:
        small, large = table[first][name], table[last][name]
        figure = Figure(
            "growth",
            f"{kind}: {name} ({unit}) at {last:,} teams, reference at {first:,} "
            f"(SQL statements {small.statements:.0f} → {large.statements:.0f}; "
            f"wall {small.wall_ms:.1f} → {large.wall_ms:.1f} ms)",
            large.cpu_ms,
            "ms CPU",
            small.cpu_ms,
            f"the same at {first:,} teams",
        )
        figures.append(figure)
        print(figure.line(), flush=True)
    ctx.db.dispose()
    return figures, table


def _count(statements: float) -> str:
    return f"{statements:.1f}" if statements < 10 else f"{statements:.0f}"


def markdown(table: dict[int, dict[str, Cost]]) -> str:
    """Figure x teams: statements / CPU ms / wall ms in each cell."""
    sizes = list(table)
    lines = [
        "| figure (statements · CPU ms · wall ms) | "
        + " | ".join(f"{s:,} teams" for s in sizes)
        + " |",
        "|---|" + "---:|" * len(sizes),
    ]
    for name, unit in ROWS:
        cells = [
            f"{_count(table[s][name].statements)} · {table[s][name].cpu_ms:.1f} · "
            f"{table[s][name].wall_ms:.1f}"
            for s in sizes
        ]
        lines.append(f"| {name} ({unit}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="postgresql", choices=["postgresql", "sqlite"])
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--cohort-size", type=int, default=COHORT_SIZE)
    args = parser.parse_args()
    sizes = tuple(int(s) for s in args.sizes.split(","))
    _, table = run(args.db, sizes, args.cohort_size)
    print(markdown(table))


if __name__ == "__main__":
    main()
