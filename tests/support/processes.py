"""Run `dash` commands as real processes for the kill tests: start, wait, SIGKILL, restart.

Every `dash` process a test starts runs on the test's clock (tests.support.clock): its command
comes from `dash_command`, its environment from `dash_env` (or `clock_environ`).

The process gets a clean environment (only the DASH_ settings given, plus PATH and the
import path), writes its output to a file (a full pipe must never block it), and is always
stopped at the end of the test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from alembic import command

from dash.db import Database
from dash.migrate import alembic_config
from dash.models import Base
from tests.support import clock as test_clock
from tests.support.clock import RunningClock

ROOT = Path(__file__).resolve().parents[2]


def prepare_database(db: Database) -> None:
    """Tables from the models, marked as the newest migration (so `dash` accepts them)."""
    Base.metadata.create_all(db.engine)
    cfg = alembic_config(db)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.stamp(cfg, "head")


def python_path() -> str:
    """The import path of a process the tests start: this checkout first, then whatever the
    test run was given (.ci/run's faketime runs add a sitecustomize there)."""
    inherited = os.environ.get("PYTHONPATH")
    return os.pathsep.join([str(ROOT), inherited]) if inherited else str(ROOT)


def module_command(module: str, *args: str) -> list[str]:
    """`python -m MODULE ARGS` on the test's clock (with the variable `clock_environ` sets)."""
    return [sys.executable, "-m", "tests.support.clock", module, *args]


def dash_command(*args: str) -> list[str]:
    """`dash ARGS` as a process on the test's clock (with the variable `clock_environ` sets)."""
    return module_command("dash", *args)


def clock_environ() -> dict[str, str]:
    """What makes a process started with `dash_command` read the clock utcnow() reads now."""
    return test_clock.environ()


def dash_env(**settings: str) -> dict[str, str]:
    """The environment of a deployment with these DASH_ settings (keys without the prefix),
    on the test's clock."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASH_")}
    env.update({f"DASH_{k.upper()}": str(v) for k, v in settings.items()})
    env["PYTHONPATH"] = python_path()
    env.update(clock_environ())
    env.setdefault("DASH_LOG_LEVEL", "WARNING")
    return env


class DashProcess:
    """`python -m <module> <args>` (e.g. dash serve) with its output in `log`; on `clock`
    (tests.support.clock) when given, else on the clock utcnow() reads when it starts."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str],
        log: Path,
        clock: RunningClock | None = None,
    ) -> None:
        self.args = args
        self.env = env
        self.log = log
        self.clock = clock
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DashProcess:
        out = self.log.open("ab")
        clock = self.clock.environ() if self.clock is not None else clock_environ()
        self.proc = subprocess.Popen(
            module_command(*self.args),
            env=self.env | clock,
            cwd=self.log.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as when a machine loses power."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it does not end within 15 s; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextmanager
def running(
    args: list[str], env: dict[str, str], log: Path, clock: RunningClock | None = None
) -> Iterator[DashProcess]:
    process = DashProcess(args, env, log, clock).start()
    try:
        yield process
    finally:
        process.stop()


def wait_until(
    predicate: Callable[[], object],
    timeout: float,
    what: str,
    alive: DashProcess | None = None,
    interval: float = 0.05,
) -> None:
    """Poll `predicate` until true; fail with `what` (and the process output) at `timeout`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if alive is not None and not alive.running:
            raise AssertionError(f"{what}: the process exited\n{alive.output()[-3000:]}")
        if time.monotonic() > deadline:
            tail = alive.output()[-3000:] if alive is not None else ""
            raise AssertionError(f"{what}: not within {timeout}s\n{tail}")
        time.sleep(interval)


def healthy(origin: str) -> bool:
    try:
        return httpx.get(origin + "/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False
