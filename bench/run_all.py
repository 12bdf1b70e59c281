"""Run every benchmark and write the figures into docs/PERFORMANCE.md.

Each benchmark measures the project and its reference on this machine in the same run and
reports both, so the ratio means something even on a busy machine. Only the block between the
`figures` markers of docs/PERFORMANCE.md is rewritten; the analysis around it is kept.

Run: python bench/run_all.py [--quick] [--only inbound,fanout,dashboard,memory,analytics,
multiprocess,growth,explain,startup,demo]
Figures are kept per benchmark in docs/performance-figures.json, so `--only` refreshes some and keeps
the latest of the others.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, Figure, load_average  # noqa: E402

DOC = ROOT / "docs" / "PERFORMANCE.md"
#: Every benchmark's latest figures, so a run of some (`--only`) keeps the others' in the doc.
STORE = ROOT / "docs" / "performance-figures.json"
START, END = "<!-- figures:start -->", "<!-- figures:end -->"
ORDER = (
    "analytics",
    "inbound",
    "dashboard",
    "fan-out",
    "memory",
    "multi-process",
    "growth",
    "explain",
    "startup",
    "demo",
)


def analytics(points: int = 10_000, repeat: int = 50) -> list[Figure]:
    """runs_analysis of a 10,000-point series; reference: the median of the same values."""
    from dash.analytics import runs_analysis

    rng = random.Random(3)
    values: list[float | None] = [
        None if rng.random() < 0.05 else rng.random() + (0.2 if i > points // 2 else 0)
        for i in range(points)
    ]
    present = [v for v in values if v is not None]

    def timed(fn: object) -> float:
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            fn()  # type: ignore[operator]
            times.append(time.perf_counter() - started)
        return statistics.median(times) * 1000

    ms = timed(lambda: runs_analysis(values, centre=None))
    ref = timed(lambda: statistics.median(present))
    return [
        Figure(
            "analytics",
            f"runs analysis of a {points:,}-point series (median of {repeat})",
            ms,
            "ms",
            ref,
            "statistics.median of the same values",
            "< 10 ms",
            ms < 10,
        )
    ]


def machine() -> list[str]:
    from sqlalchemy import create_engine, text

    from bench.common import PG_URL

    try:
        with create_engine(PG_URL).connect() as conn:
            pg = str(conn.execute(text("SHOW server_version")).scalar())
    except Exception as exc:  # the PostgreSQL benchmarks then fail too, visibly
        pg = f"unavailable ({exc.__class__.__name__})"
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = ", ".join(
        f"{p} {metadata.version(p)}"
        for p in ("sqlalchemy", "psycopg", "starlette", "uvicorn", "httpx", "python-telegram-bot")
    )
    return [
        f"- Machine: {os.cpu_count()} CPUs ({cpu}), {mem_gb:.0f} GB RAM, {platform.platform()}",
        f"- Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, PostgreSQL {pg}",
        f"- {versions}",
    ]


def table(figures: list[Figure]) -> list[str]:
    lines = [
        "| benchmark | figure | value | reference | ratio | target |",
        "|---|---|---:|---:|---:|---|",
    ]
    for f in figures:
        ref = f"{f.reference:,.1f} {f.unit} ({f.reference_what})" if f.reference is not None else ""
        ratio = f"{f.ratio:.1f}x" if f.ratio is not None else ""
        target = f"{f.target}: {'met' if f.met else '**missed**'}" if f.target else ""
        lines.append(
            f"| {f.bench} | {f.what} | {f.value:,.1f} {f.unit} | {ref} | {ratio} | {target} |"
        )
    return lines


def merge(figures: list[Figure], when: str) -> tuple[list[Figure], dict[str, str]]:
    """This run's figures, plus the stored ones of benchmarks it did not run."""
    stored = json.loads(STORE.read_text(encoding="utf-8")) if STORE.exists() else {}
    fresh = {f.bench for f in figures}
    runs = {b: r for b, r in stored.get("runs", {}).items() if b not in fresh}
    kept = [Figure(**f) for f in stored.get("figures", []) if f["bench"] not in fresh]
    runs.update(dict.fromkeys(fresh, when))
    merged = sorted(
        kept + figures, key=lambda f: ORDER.index(f.bench) if f.bench in ORDER else len(ORDER)
    )
    STORE.write_text(
        json.dumps({"runs": runs, "figures": [dataclasses.asdict(f) for f in merged]}, indent=1)
        + "\n",
        encoding="utf-8",
    )
    return merged, runs


def write(figures: list[Figure], command: str) -> None:
    when = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average at the end {load_average()}"
    merged, runs = merge(figures, when)
    ran = [f"- {bench}: {runs[bench]}" for bench in ORDER if bench in runs]
    block = [
        START,
        "",
        f"Written by `python bench/run_all.py` (last: `{command}`); each benchmark's latest run:",
        "",
        *ran,
        "",
        *machine(),
        "",
        *table(merged),
        "",
        END,
    ]
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else f"# Performance\n\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    DOC.write_text(head + "\n".join(block) + tail, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, for a smoke run")
    parser.add_argument(
        "--only",
        default="inbound,fanout,dashboard,memory,analytics,growth,explain,multiprocess,"
        "startup,demo",
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    only = set(args.only.split(","))
    figures: list[Figure] = []

    def add(new: list[Figure]) -> None:
        for figure in new:
            print(figure.line(), flush=True)
        figures.extend(new)

    print(f"load average {load_average()}", flush=True)
    if "analytics" in only:
        add(analytics())
    if "inbound" in only:
        from bench import bench_inbound

        for kind in ("sqlite", "postgresql"):
            add(bench_inbound.run(kind, count=400 if args.quick else 2000))
    if "dashboard" in only:
        from bench import bench_dashboard

        for kind in ("sqlite", "postgresql"):
            add(bench_dashboard.run(kind, teams=50 if args.quick else 200, repeat=10))
    if "fanout" in only:
        from bench import bench_fanout

        for kind in ("sqlite", "postgresql"):
            add(bench_fanout.run(kind, teams=250 if args.quick else 5000))
    if "memory" in only:
        from bench import bench_memory

        add(bench_memory.run("postgresql", teams=500 if args.quick else 5000))
    if "multiprocess" in only:
        from bench import bench_multiprocess

        add(bench_multiprocess.run(teams=250 if args.quick else 5000, serve=True))
    if "growth" in only:
        from bench import bench_growth

        grown, growth_table = bench_growth.run(
            "postgresql", (10, 100, 1000) if args.quick else (10, 100, 1000, 10_000)
        )
        add(grown)
        print(bench_growth.markdown(growth_table), flush=True)  # the growth section's table
    if "explain" in only:
        from bench import explain_queries

        add(explain_queries.run(teams=1000 if args.quick else 10_000))
    if "startup" in only:
        from bench import bench_startup

        add(bench_startup.run(runs=3 if args.quick else 5))
    if "demo" in only:
        from bench import bench_demo

        add(bench_demo.run(runs=1 if args.quick else 3))
    if not args.no_write:
        write(figures, " ".join(["python bench/run_all.py", *sys.argv[1:]]))
        print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
