"""`dash serve --workers 2`: two processes share one port and every webhook is handled once.

The operator's view: `dash serve --role web --workers 2` starts two worker processes; updates
posted to the port from many people at once are each stored once, answered once (the replies
wait in the outbox: this server has no delivery role), and a repeat is recognised whichever
process it lands on.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy import func, select

from dash.db import Database
from dash.models import Message, OutboxItem
from dash.settings import Settings
from tests.fakes.signing import telegram_headers
from tests.fakes.telegram_api import FakeTelegram
from tests.support.delivery import free_port
from tests.support.processes import dash_env, healthy, prepare_database, running, wait_until
from tests.support.webhooks import TELEGRAM_PATH, telegram_update

SECRET = "workers-test-webhook-secret"
PEOPLE = 30


def worker_processes(pid: int) -> list[int]:
    """Children of `pid` that are uvicorn workers (multiprocessing spawns them)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
            if b"spawn_main" in cmdline:
                found.append(int(child))
    return found


def test_two_web_workers_share_the_port_and_handle_each_update_once(
    settings: Settings, db: Database, fake_telegram: FakeTelegram, tmp_path: Path
) -> None:
    prepare_database(db)
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    env = dash_env(
        database_url=settings.database_url,
        secret_key="test-secret-key-not-for-production",
        telegram_token=fake_telegram.token,
        telegram_api_base=fake_telegram.base_url,
        telegram_webhook_secret=SECRET,
        public_url=origin,
    )
    args = ["dash", "serve", "--port", str(port), "--role", "web", "--workers", "2"]
    updates = [telegram_update(5000 + n, 730_000 + n, "hello") for n in range(PEOPLE)]

    def post(update: dict[str, object]) -> dict[str, object]:
        with httpx.Client(base_url=origin, timeout=30) as client:
            answer = client.post(TELEGRAM_PATH, json=update, headers=telegram_headers(SECRET))
        assert answer.status_code == 200, answer.text
        return answer.json()

    with running(args, env, tmp_path / "serve.log") as serve:
        wait_until(lambda: healthy(origin), 60, "dash serve healthy", serve)
        assert serve.proc is not None
        wait_until(lambda: len(worker_processes(serve.proc.pid)) == 2, 30, "two workers", serve)
        with ThreadPoolExecutor(8) as pool:
            first = list(pool.map(post, updates))
            again = list(pool.map(post, updates))  # Telegram retrying every update

    assert [a["duplicate"] for a in first] == [False] * PEOPLE
    assert [a["duplicate"] for a in again] == [True] * PEOPLE
    with db.transaction() as s:
        stored = s.execute(
            select(Message.address, func.count())
            .where(Message.direction == "in")
            .group_by(Message.address)
        ).all()
        replies = s.execute(
            select(OutboxItem.address, func.count()).group_by(OutboxItem.address)
        ).all()
    people = {str(730_000 + n) for n in range(PEOPLE)}
    assert dict(stored) == dict.fromkeys(people, 1)
    assert dict(replies) == dict.fromkeys(people, 1)
