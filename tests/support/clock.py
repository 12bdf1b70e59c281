"""The tests' clock: a fixed instant that runs on at the wall clock's pace.

A test that starts real processes (`dash worker`, `dash dispatch`, `dash serve`) cannot freeze
time: leases and retries must still run out. It takes a `RunningClock` instead, which reads a
chosen instant when made and then moves as real seconds pass, so every calendar decision (what
is due, what is stale, which local day it is) is the same on whatever date the suite runs. The
processes read the same clock: `DashProcess(..., clock=...)` starts them through
`python -m tests.support.clock MODULE ARGS`, which runs MODULE under `use_clock`.

The whole suite runs on `RunningClock(SUITE_START)` (tests/conftest.py), so "today" in a test
is the same day wherever and whenever it runs; a test that needs another instant nests its own
`use_clock`.
"""

from __future__ import annotations

import os
import runpy
import sys
from datetime import UTC, datetime, timedelta

from bench import population
from dash.timeutil import use_clock, utcnow

#: Names another start for the suite's clock (ISO 8601 with an offset): .ci/run's faketime runs
#: put the calendar on the same awkward instants as the faked wall clock.
START_VARIABLE = "TESTS_SUITE_START"


def _suite_start() -> datetime:
    named = os.environ.get(START_VARIABLE)
    if not named:
        # An ordinary Wednesday afternoon, weeks from any daylight saving change and from a
        # year's end, so tests that only need "some day" get a plain one.
        return datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
    start = datetime.fromisoformat(named)
    if start.tzinfo is None:
        raise ValueError(f"{START_VARIABLE}={named!r} needs a UTC offset")
    return start.astimezone(UTC)


#: The suite's "now" when it starts.
SUITE_START = _suite_start()

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


def environ() -> dict[str, str]:
    """The variable that makes a process read the clock utcnow() reads now (running on at
    real pace from its present instant): what every `dash` process a test starts gets."""
    return {OFFSET_VARIABLE: repr((utcnow() - _wall()).total_seconds())}


#: The module a spawned process would have imported as its __mp_main__ (see below).
_MAIN_VARIABLE = "TESTS_CLOCK_SPAWN_MAIN"


def _spawn_on_this_clock() -> None:
    """Make processes that multiprocessing spawns (`dash serve --workers N`) import this module
    first, as their __mp_main__, so that they too run on the clock (see the end of the file)."""
    import multiprocessing.spawn

    prepare = multiprocessing.spawn.get_preparation_data

    def preparation_data(name: str) -> dict[str, object]:
        data = prepare(name)
        data.pop("init_main_from_path", None)
        # The child inherits the environment as it is now, before the process is started.
        os.environ[_MAIN_VARIABLE] = str(data.get("init_main_from_name", "__main__"))
        data["init_main_from_name"] = __spec__.name
        return data

    multiprocessing.spawn.get_preparation_data = preparation_data


def main(argv: list[str]) -> None:
    """`python -m tests.support.clock MODULE ARGS`: MODULE as __main__, on the test's clock."""
    module, *args = argv
    clock = RunningClock.from_offset(float(os.environ[OFFSET_VARIABLE]))
    sys.argv = [module, *args]
    _spawn_on_this_clock()
    with use_clock(clock):
        runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
elif __name__ == "__mp_main__" and OFFSET_VARIABLE in os.environ:
    # A process spawned by one that main() started: on the same clock for its whole life. Its
    # pickled work may name things in the main module it would have had: take them in here.
    # (Kept in a name: a context manager nobody holds is closed, and the clock with it.)
    _spawned_clock = use_clock(RunningClock.from_offset(float(os.environ[OFFSET_VARIABLE])))
    _spawned_clock.__enter__()
    _main = os.environ.get(_MAIN_VARIABLE, "__main__")
    if _main != "__main__" and not _main.endswith(".__main__"):
        globals().update(runpy.run_module(_main, run_name="__mp_main__", alter_sys=True))
