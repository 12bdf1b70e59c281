"""Memory: resident size of `dash serve` (web, scheduler, delivery) with 5,000 enrolled teams.

The real command runs in its own process on a database with 5,000 enrolled teams (their
agendas marked compiled, so the scheduler ticks over them without rewriting 225,000 rows); the
figure is its resident set size after start-up, a few ticks and a request to every kind of
page. Reference: the bare Starlette app under the same uvicorn (the interpreter, uvicorn and
Starlette alone).

Run: python bench/bench_memory.py [--db sqlite|postgresql] [--teams 5000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import psutil  # noqa: E402

from bench import population  # noqa: E402
from bench.common import (  # noqa: E402
    Figure,
    configure,
    database_url,
    free_port,
    load_average,
    server_process,
    stamp_head,
    started,
)


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def run(kind: str, teams: int = 5000, settle: float = 8.0) -> list[Figure]:
    port = free_port()
    ctx = configure(database_url(kind), public_url=f"http://127.0.0.1:{port}", tick_seconds="2")
    pop = population.build(ctx.db, teams, compile_agendas=False)
    stamp_head(ctx.db)
    ctx.db.dispose()
    serve = [sys.executable, "-m", "dash", "serve", "--port", str(port)]
    with started(
        serve, port=port, stop_timeout=30, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as proc:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            client.get("/healthz").raise_for_status()
            client.get("/login")
            client.get(f"/board/{pop.cohort_id}")  # any answer: the route and templates load
            time.sleep(settle)  # several scheduler ticks and delivery passes
            client.get("/healthz").raise_for_status()
        serve_mb = rss_mb(proc.pid)
    ref_port = free_port()
    with server_process("bare", ref_port) as bare:
        httpx.get(f"http://127.0.0.1:{ref_port}/page").raise_for_status()
        bare_mb = rss_mb(bare.pid)
    return [
        Figure(
            "memory",
            f"{kind}: `dash serve` resident size with {teams:,} enrolled teams",
            serve_mb,
            "MB",
            bare_mb,
            "bare Starlette app under uvicorn",
            "< 250 MB",
            serve_mb < 250,
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--teams", type=int, default=5000)
    args = parser.parse_args()
    print(f"load average {load_average()}")
    for figure in run(args.db, args.teams):
        print(figure.line(), flush=True)


if __name__ == "__main__":
    main()
