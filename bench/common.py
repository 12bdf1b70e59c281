"""Shared plumbing of the benchmarks: databases, settings, a served app, figures.

Every benchmark is bounded (a fixed count and a time limit), talks only to 127.0.0.1, and
returns a list of `Figure`s that bench/run_all.py writes into docs/PERFORMANCE.md.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text

from dash.dbplans import StatementCounter as StatementCounter  # noqa: F401  (bench's own name)

ROOT = Path(__file__).resolve().parent.parent
#: PostgreSQL used by the benchmarks (its schema is dropped and recreated for each run).
PG_URL = os.environ.get(
    "DASH_BENCH_PG_URL", "postgresql+psycopg://dash:dash@127.0.0.1:5432/dash_perf_bench"
)
SECRET = "bench-secret-key-not-for-production"


@dataclass
class Figure:
    """One measured number, with its reference and target where the brief sets one."""

    bench: str
    what: str
    value: float
    unit: str
    reference: float | None = None  # the same measurement of the reference on this machine
    reference_what: str = ""
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.reference in (None, 0) or self.value == 0:
            return None
        return self.value / self.reference  # type: ignore[operator]

    def line(self) -> str:
        ref = (
            f" (reference {self.reference:.1f} {self.unit}: {self.reference_what})"
            if (self.reference is not None)
            else ""
        )
        goal = f" target {self.target}: {'met' if self.met else 'MISSED'}" if self.target else ""
        return f"[{self.bench}] {self.what}: {self.value:.1f} {self.unit}{ref}{goal}"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def database_url(kind: str) -> str:
    """A fresh, empty database: "sqlite" (a temporary file) or "postgresql" (PG_URL)."""
    if kind == "sqlite":
        folder = tempfile.mkdtemp(prefix="dash-bench-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)  # they piled up in /tmp
        return f"sqlite:///{folder}/dash.db"
    return PG_URL


def configure(url: str, **env: str) -> Any:
    """Settings for `url` (plus `env`, DASH_ prefix added) exactly as a deployment sets them;
    returns an AppContext on a database with every table created."""
    from dash.context import AppContext
    from dash.db import Database
    from dash.models import Base
    from dash.settings import get_settings

    for key in [k for k in os.environ if k.startswith("DASH_") and k != "DASH_BENCH_PG_URL"]:
        del os.environ[key]
    os.environ.update(DASH_DATABASE_URL=url, DASH_SECRET_KEY=SECRET, DASH_LOG_LEVEL="WARNING")
    for key, value in env.items():
        os.environ[f"DASH_{key.upper()}"] = value
    get_settings.cache_clear()
    db = Database(url)
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    Base.metadata.create_all(db.engine)
    return AppContext.from_settings(get_settings(), db)


def stamp_head(db: Any) -> None:
    """Mark a database built from the models as migrated (so `dash serve` starts on it)."""
    from alembic import command

    from dash.migrate import alembic_config

    cfg = alembic_config(db)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.stamp(cfg, "head")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(**settings: str) -> dict[str, str]:
    """The environment of a process a benchmark starts: this one's (with what `configure`
    set), `settings` on top (DASH_ prefix added, as `configure` takes them), and the
    repository on PYTHONPATH so `bench` and `tests` import there too."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.update({f"DASH_{key.upper()}": value for key, value in settings.items()})
    return env


@contextmanager
def started(
    args: list[str], *, port: int | None = None, stop_timeout: float = 20.0, **popen: Any
) -> Iterator[subprocess.Popen[Any]]:
    """`args` in a process of its own (in the repository, `child_env()` unless `popen` names
    an env), once `port` (if given) listens; terminated when the block ends, killed if it
    lingers, so no benchmark leaves a server behind."""
    popen.setdefault("env", child_env())
    proc = subprocess.Popen(args, cwd=ROOT, **popen)
    try:
        if port is not None:
            wait_listening(port, proc)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def server_process(
    app: str, port: int, env: dict[str, str] | None = None, workers: int = 1
) -> Iterator[Any]:
    """`python bench/serve.py APP PORT WORKERS` (uvicorn) until the block ends."""
    args = [sys.executable, str(ROOT / "bench" / "serve.py"), app, str(port), str(workers)]
    with started(args, port=port, env={**child_env(), **(env or {})}) as proc:
        yield proc


class FakeProvider:
    """A fake provider in a process of its own, so its work does not share a GIL with what is
    measured. `args` start a process that prints its base URL and token as one JSON line,
    serves until SIGTERM, then prints its figures as one JSON line (bench/fake_provider.py
    does): .base_url and .token inside the block, .stats after it."""

    def __init__(self, args: list[str], stop_timeout: float = 60.0) -> None:
        self.args = args
        self.stop_timeout = stop_timeout
        self.stats: dict[str, Any] = {}

    def __enter__(self) -> FakeProvider:
        self.proc = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, text=True, env=child_env(), cwd=ROOT
        )
        assert self.proc.stdout is not None
        info = json.loads(self.proc.stdout.readline())
        self.base_url, self.token = info["base_url"], info["token"]
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=self.stop_timeout)
        self.stats = json.loads(out.strip().splitlines()[-1])


def wait_listening(port: int, proc: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port} after {timeout}s")


def load_average() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"
