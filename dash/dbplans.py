"""The statements a piece of real code sends: counted, captured, and their query plans
(PostgreSQL's EXPLAIN).

Why: whether a hot path stays cheap is judged on the SQL the running code sends, seen as it
goes out, never on retyped copies that drift from it: how many statements (a load-independent
figure) and whether its indexes serve them. The tests that guard query counts and plans and
the benchmarks (bench/) count, capture and explain statements through this one module.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event

from dash.db import Database

Captured = list[tuple[str, Any]]
"""(statement, parameters) in the order they were sent."""


class StatementCounter:
    """Counts the statements an engine sends while the block runs (executemany counts once)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.count = 0

    def _seen(self, *args: Any) -> None:
        self.count += 1

    def __enter__(self) -> StatementCounter:
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


@contextmanager
def captured(db: Database, verbs: Collection[str] = ("SELECT",)) -> Iterator[Captured]:
    """The single (not executemany) statements sent while the block runs whose first word is
    one of `verbs`, with their parameters, ready for `explain`."""
    wanted = {verb.upper() for verb in verbs}
    seen: Captured = []

    def listen(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool):
        words = statement.lstrip().split(None, 1)
        if words and words[0].upper() in wanted and not many:
            seen.append((statement, params))

    event.listen(db.engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", listen)


def explain(
    db: Database,
    statement: str,
    params: Any = None,
    *,
    analyze: bool = False,
    buffers: bool = False,
    seqscan: bool = True,
) -> dict[str, Any]:
    """PostgreSQL's EXPLAIN (FORMAT JSON) of one statement: the plan's entry, its top node
    under "Plan" (with `analyze`, "Execution Time" too). Run in a transaction that is rolled
    back, so an analysed UPDATE changes nothing. `seqscan=False` disables sequential scans
    for it: one then still appears only where no index can serve the query."""
    if db.engine.dialect.name != "postgresql":
        raise ValueError(f"EXPLAIN plans are read from PostgreSQL, not {db.engine.dialect.name}")
    options = [name for name, on in (("ANALYZE", analyze), ("BUFFERS", buffers)) if on]
    with db.engine.connect() as conn:
        if not seqscan:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        raw = conn.exec_driver_sql(
            f"EXPLAIN ({', '.join([*options, 'FORMAT JSON'])}) " + statement, params
        ).scalar()
        conn.rollback()
    entry: dict[str, Any] = (raw if isinstance(raw, list) else json.loads(raw))[0]
    return entry


def plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """`node` and every node below it, depth first (a bitmap scan names its index below)."""
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)
