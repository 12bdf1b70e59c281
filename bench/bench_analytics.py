"""Timings for dash.analytics, printed rather than asserted.

Why: the bot answers CHART and the dashboard draws many teams' charts per request, so the
analysis must stay in the low milliseconds even for long series. Timing assertions would be
flaky on shared CI machines, so this script only reports figures.

Run: ``python bench/bench_analytics.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from dash.analytics import control_limits, describe_signal, runs_analysis


def _series(n: int, seed: int) -> tuple[list[float | None], list[int | None], list[int | None]]:
    """A realistic daily series: proportions with ~5% missing days and a mid-way shift."""
    rng = random.Random(seed)
    values: list[float | None] = []
    nums: list[int | None] = []
    dens: list[int | None] = []
    for i in range(n):
        if rng.random() < 0.05:
            values.append(None)
            nums.append(None)
            dens.append(None)
            continue
        d = rng.randint(5, 30)
        p = 0.55 if i < n // 2 else 0.8
        x = sum(rng.random() < p for _ in range(d))
        values.append(x / d)
        nums.append(x)
        dens.append(d)
    return values, nums, dens


def _time(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median and 99th-percentile wall time in milliseconds over ``repeat`` calls."""
    fn()  # warm caches (the crossings quantile, numpy dispatch)
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(round(0.99 * (len(samples) - 1))))]
    return statistics.median(samples), p99


def main() -> None:
    """Print a small table of timings."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    print(f"{'operation':<34}{'n':>7}{'median ms':>12}{'p99 ms':>10}")
    for n in (100, 1_000, 10_000):
        values, nums, dens = _series(n, seed=n)
        cases: list[tuple[str, Callable[[], object]]] = [
            ("runs_analysis (median centre)", lambda v=values: runs_analysis(v)),
            ("runs_analysis (freeze=20)", lambda v=values: runs_analysis(v, freeze=20)),
            (
                "runs_analysis + describe_signal",
                lambda v=values: describe_signal(runs_analysis(v), "higher"),
            ),
            ("control_limits p", lambda x=nums, d=dens: control_limits("p", x, d)),
            ("control_limits i", lambda v=values: control_limits("i", v)),
        ]
        for name, fn in cases:
            med, p99 = _time(fn, args.repeat)
            print(f"{name:<34}{n:>7}{med:>12.3f}{p99:>10.3f}")


if __name__ == "__main__":
    main()
