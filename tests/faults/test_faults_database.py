"""PostgreSQL restarts under load: webhooks answer 5xx (the provider retries), never 200 with
nothing stored, and the running system recovers by itself.

PostgreSQL only, and only where this test may restart a server: it runs its own cluster
("faults", port 5444, created on first use as root with pg_createcluster), never the shared
one, so other test runs are not disturbed. The app runs as in `dash serve` (uvicorn with its
lifespan: scheduler, delivery worker, Telegram polling against the fake Bot API).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select, text

from bots.telegram.webhook import webhook_secret
from dash.app.server import create_app
from dash.context import AppContext
from dash.db import Database
from dash.models import Base, Message, OutboxItem
from dash.settings import Settings, get_settings
from tests.fakes.signing import telegram_headers
from tests.fakes.telegram_api import FakeTelegram
from tests.support.delivery import free_port, telegram_env
from tests.support.figures import record
from tests.support.processes import wait_until
from tests.support.webhooks import TELEGRAM_PATH, telegram_update

VERSION, CLUSTER, PORT = "15", "faults", 5444
URL = f"postgresql+psycopg://dash:dash@127.0.0.1:{PORT}/faults_restart"

pytestmark = [
    pytest.mark.postgres_only(reason="PostgreSQL restarts: only when the tests run on PostgreSQL"),
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("pg_ctlcluster") is None,
        reason="restarting a PostgreSQL cluster needs root and pg_ctlcluster",
    ),
]


def _sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=120)


def _psql(sql: str) -> str:
    return _sh("su", "postgres", "-c", f'psql -p {PORT} -tAc "{sql}"').stdout.strip()


@pytest.fixture(scope="module")
def own_cluster() -> str:
    """A PostgreSQL cluster of this test's own, with role and database; returns its URL."""
    if str(PORT) not in _sh("pg_lsclusters", "-h").stdout.split():
        _sh("pg_createcluster", VERSION, CLUSTER, "--port", str(PORT))
    _sh("pg_ctlcluster", VERSION, CLUSTER, "start", check=False)
    if _psql("SELECT 1 FROM pg_roles WHERE rolname = 'dash'") != "1":
        _psql("CREATE ROLE dash LOGIN PASSWORD 'dash' SUPERUSER")
    if _psql("SELECT 1 FROM pg_database WHERE datname = 'faults_restart'") != "1":
        _sh("su", "postgres", "-c", f"createdb -p {PORT} -O dash faults_restart")
    return URL


def restart_cluster() -> None:
    _sh("pg_ctlcluster", VERSION, CLUSTER, "restart", "-m", "fast")


@dataclass
class Provider:
    """Telegram's side: posts an update until it is answered 200, counting what it saw."""

    url: str
    headers: dict[str, str]
    answers: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    first_5xx_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def deliver(self, update: dict[str, object], deadline: float) -> None:
        with httpx.Client(timeout=15) as client:
            while time.monotonic() < deadline:
                try:
                    answer = client.post(self.url, json=update, headers=self.headers)
                except httpx.TransportError:
                    with self.lock:
                        self.transport_errors += 1
                    time.sleep(0.05)
                    continue
                with self.lock:
                    self.answers[answer.status_code] += 1
                    if answer.status_code >= 500 and self.first_5xx_at is None:
                        self.first_5xx_at = time.monotonic()
                if answer.status_code == 200:
                    return
                assert answer.status_code in (500, 502, 503), answer.text
                time.sleep(0.05)
        raise AssertionError(f"update {update['update_id']} never accepted")


@pytest.fixture
def system(
    own_cluster: str,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    fake_telegram: FakeTelegram,
) -> Iterator[tuple[str, AppContext]]:
    """The whole app (webhooks, scheduler, delivery) on the restartable cluster.

    `settings` first clears the developer's DASH_ variables; the cluster's URL replaces the
    test database's."""
    db = Database(own_cluster)
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    Base.metadata.create_all(db.engine)
    port = free_port()
    env = {
        **telegram_env(fake_telegram),
        "database_url": own_cluster,
        "public_url": f"http://127.0.0.1:{port}",
        "telegram_per_second": "100",
        "telegram_per_chat_per_second": "100",
        "delivery_poll_seconds": "0.1",
        "backoff_base_seconds": "0.2",
        "backoff_max_seconds": "1",
        "tick_seconds": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(f"DASH_{key.upper()}", value)
    get_settings.cache_clear()
    ctx = AppContext.from_settings(get_settings(), db)
    server = uvicorn.Server(
        uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 30, "uvicorn started")
    try:
        yield f"http://127.0.0.1:{port}", ctx
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        db.dispose()


def test_a_postgres_restart_under_load_answers_5xx_and_recovers_by_itself(
    system: tuple[str, AppContext], fake_telegram: FakeTelegram
) -> None:
    origin, ctx = system
    provider = Provider(origin + TELEGRAM_PATH, telegram_headers(webhook_secret(ctx)))
    people, per_person = 12, 8
    deadline = time.monotonic() + 120
    restarted: list[float] = []

    def person(p: int) -> None:
        for n in range(per_person):
            update = telegram_update(p * 1000 + n, 730_000 + p, f"note {n} from {p}")
            provider.deliver(update, deadline)
            time.sleep(0.05)

    with ThreadPoolExecutor(max_workers=people) as pool:
        futures = [pool.submit(person, p) for p in range(people)]
        time.sleep(0.4)  # under way
        restart_cluster()
        restarted.append(time.monotonic())
        for future in futures:
            future.result()
    accepted = time.monotonic()

    expected = people * per_person
    db = ctx.db

    def inbound(status: str | None = None) -> int:
        with db.transaction() as s:
            query = select(func.count(Message.id)).where(Message.direction == "in")
            if status:
                query = query.where(Message.status == status)
            return int(s.execute(query).scalar_one())

    # Every update the provider saw answered 200 was stored; each exactly once.
    assert inbound() == expected
    with db.transaction() as s:
        ids = Counter(
            s.execute(select(Message.provider_id).where(Message.direction == "in")).scalars()
        )
    assert set(ids.values()) == {1}
    # ...processed, and every reply delivered by the background worker, with no restart.
    wait_until(lambda: inbound("processed") == expected, 30, "all processed")

    def delivered() -> bool:
        with db.transaction() as s:
            states = Counter(s.execute(select(OutboxItem.state)).scalars())
        return sum(states.values()) >= expected and set(states) <= {"sent", "held"}

    wait_until(delivered, 60, "all replies delivered")
    recovered = time.monotonic()
    assert httpx.get(origin + "/healthz").status_code == 200
    for p in range(people):
        assert fake_telegram.sent_messages(730_000 + p), f"person {p} never heard back"

    refused = sum(n for code, n in provider.answers.items() if code >= 500)
    assert refused + provider.transport_errors > 0, "the restart never hit a request"
    record(
        "PostgreSQL restart under load",
        updates=expected,
        answered_200=provider.answers[200],
        answered_5xx=refused,
        connection_errors=provider.transport_errors,
        stored=expected,
        lost=0,
        stored_twice=0,
        seconds_until_all_accepted=round(accepted - restarted[0], 2),
        seconds_until_all_delivered=round(recovered - restarted[0], 2),
    )
