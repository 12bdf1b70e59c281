"""`dash demo` as a user runs it: a whole process into a temporary folder, timed from outside.

Each run is `python -m dash demo --db TMP/dash-demo.db` (the default seed and 14 days) in a
fresh folder. Per run: wall seconds, CPU seconds (user + system, from the kernel's accounting
of the finished process), peak memory, how long until its first output appeared (stdout or
stderr: the progress goes to stderr, earlier versions printed only to stdout), and the messages
it reports (in and delivered), for CPU milliseconds per message. The
median, min and max over `--runs` are printed; on a busy machine quote the CPU figures, which
stretch far less than the wall time.

`--tree DIR` times another checkout of the project (its `dash` first on PYTHONPATH, run from
DIR): how the before figures in docs/PERFORMANCE.md were taken.

Run: python bench/bench_demo.py [--runs 3] [--tree DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, Figure, load_average  # noqa: E402

#: Seconds a run may take before the benchmark gives up on it.
LIMIT = 600.0
TARGET_WALL = 12.0
_COUNTS = re.compile(r"(\d+) messages in, (\d+) delivered")


@dataclass
class DemoRun:
    wall: float
    cpu: float
    peak_mib: float
    first_line: float  # seconds until the first byte on stdout or stderr
    inbound: int
    delivered: int

    @property
    def cpu_ms_per_message(self) -> float:
        return self.cpu * 1000 / max(1, self.inbound + self.delivered)


def one_run(tree: Path, folder: Path) -> DemoRun:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASH_")}
    env["PYTHONPATH"] = str(tree)
    args = [sys.executable, "-m", "dash", "demo", "--db", str(folder / "dash-demo.db")]
    started = time.perf_counter()
    proc = subprocess.Popen(
        args, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    first: list[float] = []
    out: list[bytes] = []

    def read(stream: IO[bytes], keep: list[bytes] | None) -> None:
        while chunk := stream.read1(4096):  # type: ignore[attr-defined]
            if not first:
                first.append(time.perf_counter() - started)
            if keep is not None:
                keep.append(chunk)

    readers = [
        threading.Thread(target=read, args=(proc.stderr, None), daemon=True),
        threading.Thread(target=read, args=(proc.stdout, out), daemon=True),
    ]
    for reader in readers:
        reader.start()
    timer = threading.Timer(LIMIT, proc.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join()
    text = b"".join(out).decode("utf-8", "replace")
    if proc.returncode != 0:
        raise RuntimeError(f"dash demo exited {proc.returncode}: {text[-500:]}")
    counts = _COUNTS.search(text)
    if counts is None:
        raise RuntimeError(f"no message counts in the demo's output: {text[-500:]}")
    return DemoRun(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        peak_mib=usage.ru_maxrss / 1024,
        first_line=first[0] if first else wall,
        inbound=int(counts.group(1)),
        delivered=int(counts.group(2)),
    )


def _spread(values: list[float]) -> str:
    return (
        f"{statistics.median(values):7.2f} (min {min(values):.2f}, max {max(values):.2f})"
    )


def run(runs: int = 3, tree: Path = ROOT) -> list[Figure]:
    """Time `runs` demos; figures for run_all."""
    results: list[DemoRun] = []
    for i in range(runs):
        folder = Path(tempfile.mkdtemp(prefix="dash-bench-demo-"))
        try:
            result = one_run(tree, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        print(
            f"run {i + 1}: wall {result.wall:.2f} s, cpu {result.cpu:.2f} s, "
            f"peak {result.peak_mib:.0f} MiB, first output after {result.first_line:.2f} s, "
            f"{result.inbound} in / {result.delivered} delivered "
            f"({result.cpu_ms_per_message:.1f} ms CPU per message)",
            flush=True,
        )
        results.append(result)
    print(f"wall s        {_spread([r.wall for r in results])}")
    print(f"cpu s         {_spread([r.cpu for r in results])}")
    print(f"peak MiB      {_spread([r.peak_mib for r in results])}")
    print(f"first out s   {_spread([r.first_line for r in results])}")
    wall = statistics.median(r.wall for r in results)
    cpu = statistics.median(r.cpu for r in results)
    first = statistics.median(r.first_line for r in results)
    per_message = statistics.median(r.cpu_ms_per_message for r in results)
    what = f"median of {runs}"
    return [
        Figure(
            "demo",
            f"`dash demo` wall, {what} (CPU {cpu:.1f} s, peak "
            f"{statistics.median(r.peak_mib for r in results):.0f} MiB)",
            wall,
            "s",
            target=f"< {TARGET_WALL:.0f} s idle",
            met=wall < TARGET_WALL,
        ),
        Figure("demo", f"`dash demo` CPU per message in or delivered, {what}", per_message, "ms"),
        Figure(
            "demo",
            f"`dash demo` first output (a progress line on stderr), {what}",
            first,
            "s",
            target="< 1 s idle",
            met=first < 1.0,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout to time")
    args = parser.parse_args()
    print(f"load average {load_average()}; timing {args.tree.resolve()}", flush=True)
    for figure in run(args.runs, args.tree.resolve()):
        print(figure.line())
    print(f"load average {load_average()}")


if __name__ == "__main__":
    main()
