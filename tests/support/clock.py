"""The tests' clock: a fixed instant that runs on at the wall clock's pace.

A test that starts real processes (`dash worker`, `dash dispatch`, `dash serve`) cannot freeze
time: leases and retries must still run out. It takes a `RunningClock` instead, which reads a
chosen instant when made and then moves as real seconds pass, so every calendar decision (what
is due, what is stale, which local day it is) is the same on whatever date the suite runs. The
processes read the same clock: `DashProcess(..., clock=...)` starts them through
`python -m tests.support.clock MODULE ARGS`, which runs MODULE under `use_clock`.
"""

from __future__ import annotations

import os
import runpy
import sys
from datetime import UTC, datetime, timedelta

from bench import population
from dash.timeutil import use_clock

#: Noon in population.midday_zone the day before bench.population's cohort starts: the cohort's
#: digests are all ahead, so a tick at this instant finds only the rows a test adds.
POPULATION_EVE = datetime.combine(population.START, datetime.min.time(), UTC) - timedelta(hours=7)

#: How far the test's clock is from the wall clock, in seconds, for the processes it starts.
OFFSET_VARIABLE = "TESTS_CLOCK_OFFSET_SECONDS"


def _wall() -> datetime:
    # The wall clock only gives the pace; the instant it shows decides nothing.
    return datetime.now(UTC)


class RunningClock:
    """Reads `start` now, and `start` plus the real seconds elapsed later (aware UTC)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the clock's start needs a UTC offset")
        self.offset = start.astimezone(UTC) - _wall()

    @classmethod
    def from_offset(cls, seconds: float) -> RunningClock:
        clock = cls.__new__(cls)
        clock.offset = timedelta(seconds=seconds)
        return clock

    def __call__(self) -> datetime:
        return _wall() + self.offset

    def environ(self) -> dict[str, str]:
        """The variable that makes a process started by `DashProcess` read this clock."""
        return {OFFSET_VARIABLE: repr(self.offset.total_seconds())}


def main(argv: list[str]) -> None:
    """`python -m tests.support.clock MODULE ARGS`: MODULE as __main__, on the test's clock."""
    module, *args = argv
    clock = RunningClock.from_offset(float(os.environ[OFFSET_VARIABLE]))
    sys.argv = [module, *args]
    with use_clock(clock):
        runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
