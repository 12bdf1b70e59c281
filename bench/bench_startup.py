"""Start-up: how long `dash` takes before it does its work, timed as whole processes.

Four commands, each run `--runs` times after one warm-up run (so the operating system's file
cache is warm, as it is for anyone who has run `dash` once), as new processes:

* `dash --help`;
* `dash curriculum list` (reads and validates every shipped curriculum);
* `dash init` on a fresh SQLite file (creates every table);
* `dash serve` on a fresh SQLite file and a free port of 127.0.0.1, until GET /healthz answers
  200; the server is then stopped.

For each: wall seconds (what a user waits) and CPU seconds of the process (user + system, from
the kernel's accounting; for `serve` up to the moment it was healthy), as median, min and max.
On a busy machine the wall time stretches and the CPU time much less, so both are printed. The
reference is the bare interpreter (`python -c pass`), timed the same way.

`--tree DIR` times another checkout of the project (its `dash` first on PYTHONPATH, run from
DIR): how the before figures in docs/PERFORMANCE.md were taken.

Run: python bench/bench_startup.py [--runs 5] [--tree DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, Figure, free_port, load_average  # noqa: E402

#: Seconds a command may take before the benchmark gives up on it.
LIMIT = 120.0
TARGETS = {"help": 0.3, "curriculum list": 0.3, "serve": 3.0}


@dataclass
class Run:
    wall: float
    cpu: float


@dataclass
class Timing:
    name: str
    runs: list[Run]

    def wall(self) -> tuple[float, float, float]:
        return _spread([r.wall for r in self.runs])

    def cpu(self) -> tuple[float, float, float]:
        return _spread([r.cpu for r in self.runs])

    def line(self) -> str:
        wm, wlo, whi = self.wall()
        cm, clo, chi = self.cpu()
        return (
            f"{self.name:<16} wall {wm * 1000:7.0f} ms (min {wlo * 1000:.0f}, max {whi * 1000:.0f})"
            f"   cpu {cm * 1000:7.0f} ms (min {clo * 1000:.0f}, max {chi * 1000:.0f})"
        )


def _spread(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def _env(tree: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASH_")}
    env["PYTHONPATH"] = str(tree)
    env.update({f"DASH_{key.upper()}": value for key, value in settings.items()})
    return env


def _cpu_of_children(before: os.times_result) -> float:
    after = os.times()
    return (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )


def timed_process(args: list[str], env: dict[str, str], cwd: Path) -> Run:
    """One run of `args` to its end: wall and CPU seconds (the process and its children)."""
    before = os.times()
    started = time.perf_counter()
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, timeout=LIMIT)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}: {done.stderr[-500:]!r}")
    return Run(wall, _cpu_of_children(before))


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) the running process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve_until_healthy(tree: Path, folder: Path) -> Run:
    """`dash serve` on a fresh SQLite file until /healthz answers 200, then stopped."""
    port = free_port()
    env = _env(tree, database_url=f"sqlite:///{folder / 'serve.db'}", log_level="WARNING")
    args = [sys.executable, "-m", "dash", "serve", "--host", "127.0.0.1", "--port", str(port)]
    started = time.perf_counter()
    proc = subprocess.Popen(
        args, env=env, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"dash serve exited {proc.returncode} before it was healthy")
            if time.perf_counter() - started > LIMIT:
                raise RuntimeError(f"dash serve not healthy after {LIMIT} s")
            try:
                url = f"http://127.0.0.1:{port}/healthz"
                with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.02)
        wall = time.perf_counter() - started
        cpu = _process_cpu(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return Run(wall, cpu)


def measure(name: str, once: Callable[[], Run], runs: int) -> Timing:
    once()  # warm-up: the file cache, Python's bytecode cache
    timing = Timing(name, [once() for _ in range(runs)])
    print(timing.line(), flush=True)
    return timing


def run(runs: int = 5, tree: Path = ROOT) -> list[Figure]:
    """Time the four commands and the bare interpreter; figures for run_all."""
    folder = Path(tempfile.mkdtemp(prefix="dash-bench-startup-"))
    py = sys.executable
    try:
        bare = measure(
            "python -c pass", lambda: timed_process([py, "-c", "pass"], _env(tree), tree), runs
        )
        timings = [
            measure(
                "help",
                lambda: timed_process([py, "-m", "dash", "--help"], _env(tree), tree),
                runs,
            ),
            measure(
                "curriculum list",
                lambda: timed_process([py, "-m", "dash", "curriculum", "list"], _env(tree), tree),
                runs,
            ),
        ]
        counter = iter(range(10_000))

        def init_once() -> Run:
            url = f"sqlite:///{folder / f'init-{next(counter)}.db'}"
            return timed_process([py, "-m", "dash", "init"], _env(tree, database_url=url), tree)

        timings.append(measure("init", init_once, runs))
        serves = iter(range(10_000))

        def serve_once() -> Run:
            here = folder / f"serve-{next(serves)}"
            here.mkdir()
            return serve_until_healthy(tree, here)

        timings.append(measure("serve", serve_once, runs))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    bare_ms = bare.wall()[0] * 1000
    figures: list[Figure] = []
    for timing in timings:
        wall, lo, hi = timing.wall()
        cpu = timing.cpu()[0]
        command = {
            "help": "dash --help",
            "serve": "dash serve to a healthy /healthz",
        }.get(timing.name, f"dash {timing.name}")
        target = TARGETS.get(timing.name)
        figures.append(
            Figure(
                "startup",
                f"{command}: wall, median of {runs} (min {lo * 1000:,.0f}, max {hi * 1000:,.0f} ms;"
                f" CPU {cpu * 1000:,.0f} ms)",
                wall * 1000,
                "ms",
                bare_ms,
                "`python -c pass`",
                f"< {target * 1000:,.0f} ms idle" if target else "",
                (wall < target) if target else None,
            )
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout to time")
    args = parser.parse_args()
    print(f"load average {load_average()}; timing {args.tree.resolve()}", flush=True)
    for figure in run(args.runs, args.tree.resolve()):
        print(figure.line())


if __name__ == "__main__":
    main()
