"""Dashboard: the cohort board of 200 teams x 14 days, and one team's page with its charts.

The app (dash.app.server.create_app, no background workers) runs under uvicorn in its own process;
a coach logs in through the real form and asks for each page repeatedly. The cohort started 14
days ago, every team reported both measures most days, and each has a short thread. Reference:
GET /healthz on the same server (framework, middleware and one database round trip).

Load-independent figures, from the same population in process (Starlette's TestClient, no
socket): SQL statements per page (StatementCounter) and CPU time per page (time.process_time,
median), against the CPU time of GET /healthz measured the same way.

Run: python bench/bench_dashboard.py [--db sqlite|postgresql] [--teams 200] [--repeat 20]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench import population  # noqa: E402
from bench.common import (  # noqa: E402
    Figure,
    StatementCounter,
    configure,
    database_url,
    free_port,
    load_average,
    percentile,
    server_process,
)

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _timed(client: httpx.Client, path: str, repeat: int) -> list[float]:
    client.get(path).raise_for_status()  # warm-up (templates, caches)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}")
    return times


def _log_in(client: Any) -> None:
    page = client.get("/login")
    match = CSRF.search(page.text)
    assert match, "no CSRF field on /login"
    answer = client.post(
        "/login",
        data={"email": "bench@example.org", "password": PASSWORD, "csrf": match.group(1)},
    )
    if answer.status_code != 303:
        raise RuntimeError(f"log-in failed: {answer.status_code}")


def _in_process(ctx: Any, paths: dict[str, str], repeat: int) -> dict[str, tuple[int, float]]:
    """(SQL statements, median CPU ms) per page, served in this process by the same app."""
    from starlette.testclient import TestClient

    from dash.app.server import create_app

    found = {}
    with TestClient(create_app(ctx, background=False), follow_redirects=False) as client:
        _log_in(client)
        for name, path in paths.items():
            client.get(path).raise_for_status()  # warm-up
            with StatementCounter(ctx.db.engine) as counter:
                client.get(path).raise_for_status()
            cpu = []
            for _ in range(repeat):
                started = time.process_time()
                client.get(path)
                cpu.append(time.process_time() - started)
            found[name] = (counter.count, statistics.median(cpu) * 1000)
    return found


def run(kind: str, teams: int = 200, repeat: int = 20) -> list[Figure]:
    from dash.actions.coaches import add_coach
    from dash.models import Cohort
    from dash.timeutil import utcnow

    port = free_port()
    ctx = configure(database_url(kind), public_url=f"http://127.0.0.1:{port}")
    start = utcnow().date() - timedelta(days=13)
    pop = population.build(ctx.db, teams, start=start, compile_agendas=False)
    population.add_history(ctx.db, pop, days=14)
    with ctx.db.transaction() as s:
        coach = add_coach(s, email="bench@example.org", name="Bench Coach", password=PASSWORD)
        cohort = s.get(Cohort, pop.cohort_id)
        assert cohort is not None
        cohort.coaches.append(coach)
    ctx.db.dispose()
    origin = f"http://127.0.0.1:{port}"
    paths = {
        "board": f"/cohorts/{pop.cohort_id}",
        "team": f"/teams/{pop.team_ids[len(pop.team_ids) // 2]}",
        "health": "/healthz",
    }
    with server_process("dash", port), httpx.Client(base_url=origin, timeout=60) as client:
        _log_in(client)
        board = _timed(client, paths["board"], repeat)
        team = _timed(client, paths["team"], repeat)
        health = _timed(client, paths["health"], repeat)
    ref = statistics.median(health) * 1000
    board_ms, team_ms = statistics.median(board) * 1000, statistics.median(team) * 1000
    cost = _in_process(ctx, paths, max(5, repeat // 2))
    cpu_ref = cost["health"][1]
    in_process = [
        Figure(
            "dashboard",
            f"{kind}: {label}, in process: CPU per page ({cost[name][0]} SQL statements)",
            cost[name][1],
            "ms",
            cpu_ref,
            "GET /healthz, CPU in process",
        )
        for name, label in (("board", f"cohort board, {teams} teams"), ("team", "team page"))
    ]
    return [*in_process,
        Figure(
            "dashboard",
            f"{kind}: cohort board, {teams} teams x 14 days (median of {repeat}; "
            f"p95 {percentile(board, 95) * 1000:.0f} ms)",
            board_ms,
            "ms",
            ref,
            "GET /healthz",
            "< 200 ms",
            board_ms < 200,
        ),
        Figure(
            "dashboard",
            f"{kind}: team page with its charts (median of {repeat}; "
            f"p95 {percentile(team, 95) * 1000:.0f} ms)",
            team_ms,
            "ms",
            ref,
            "GET /healthz",
            "< 150 ms",
            team_ms < 150,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], action="append")
    parser.add_argument("--teams", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    print(f"load average {load_average()}")
    for kind in args.db or ["sqlite", "postgresql"]:
        for figure in run(kind, args.teams, args.repeat):
            print(figure.line(), flush=True)


if __name__ == "__main__":
    main()
