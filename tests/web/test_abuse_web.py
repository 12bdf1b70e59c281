"""Abuse of the dashboard through the real app of create_app: hostile texts, password guessing,
and the security headers on every kind of answer.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import argon2
import httpx
import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy import text as sql
from starlette.testclient import TestClient

from dash.app.server import create_app
from dash.context import AppContext
from dash.db import Database
from dash.models import Message, Person
from dash.timeutil import utcnow
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio
from tests.support import web as w
from tests.support.delivery import configure, free_port, served, telegram_env, twilio_env
from tests.support.people import reachable
from tests.support.webhooks import Poster, telegram_update

COACH = "casey@example.org"
NURSE_TELEGRAM_ID = 740_001

HOSTILE = [
    "'); DROP TABLE messages; --",
    "Robert'); DELETE FROM people WHERE ('1'='1",
    "<script>alert('x')</script>",
    '"><img src=x onerror=alert(1)>',
    '<a href="javascript:alert(1)">click me</a>',
    "{{ 7*7 }} and {% raw %}",
    "<svg/onload=alert(1)>",
]
RAW_MARKUP = ["<script>alert", "<img src=x", '<a href="javascript:', "<svg/onload"]


def build_app(ctx: AppContext) -> TestClient:
    return TestClient(create_app(ctx, background=False), follow_redirects=False)


@pytest.fixture
def ctx(
    monkeypatch: pytest.MonkeyPatch,
    db: Database,
    fake_telegram: FakeTelegram,
    fake_twilio: FakeTwilio,
) -> AppContext:
    return configure(monkeypatch, db, **telegram_env(fake_telegram), **twilio_env(fake_twilio))


@pytest.fixture
def team_id(ctx: AppContext) -> int:
    """An enrolled team whose nurse writes on Telegram, coached by COACH."""
    with ctx.db.transaction() as s:
        cohort = w.cohort(s)
        w.coach(s, COACH, cohorts=[cohort], name="Casey Coach")
        kc = reachable(name="Kim Key", console="kim")
        nurse = reachable(name="Nia Nurse", telegram=NURSE_TELEGRAM_ID)
        s.add_all([kc, nurse])
        s.flush()
        return w.team(s, cohort, "5 West", members=[kc, nurse]).id


@pytest.fixture
def client(ctx: AppContext) -> Iterator[TestClient]:
    with build_app(ctx) as c:
        yield c


def test_sql_and_html_in_messages_are_stored_as_sent_and_shown_inert(
    ctx: AppContext, db: Database, client: TestClient, team_id: int
) -> None:
    poster = Poster(ctx, client)
    for n, text in enumerate(HOSTILE, start=1):
        assert poster.telegram(telegram_update(n, NURSE_TELEGRAM_ID, text)).status_code == 200

    with db.transaction() as s:
        kept = list(
            s.execute(
                select(Message.text).where(Message.direction == "in").order_by(Message.id)
            ).scalars()
        )
        assert kept == HOSTILE, "stored exactly as sent"
        assert s.execute(select(func.count(Person.id))).scalar_one() >= 3, "nobody was deleted"
    assert {"messages", "people"} <= set(inspect(db.engine).get_table_names())

    w.login(client, COACH)
    for page in (f"/teams/{team_id}", "/"):
        html = client.get(page).text
        for markup in RAW_MARKUP:
            assert markup not in html, f"{markup!r} reached {page} as markup"
    team_page = client.get(f"/teams/{team_id}").text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in team_page
    assert "&lt;svg/onload=alert(1)&gt;" in team_page
    assert "{{ 7*7 }}" in team_page, "template syntax in a message is shown, not evaluated"
    assert "&#39;); DROP TABLE messages; --" in team_page


def test_password_guessing_locks_the_account_even_for_the_right_password(
    ctx: AppContext, client: TestClient, team_id: int
) -> None:
    limit = ctx.settings.login_max_failures
    answers = [_try(client, COACH, f"guess number {n}") for n in range(limit + 3)]
    assert all(a.status_code == 400 for a in answers)
    # Before and after the lock the same words: a guesser cannot see the lock-out happen.
    assert len({a.text for a in answers}) == 1 and "do not match" in answers[0].text
    locked = _try(client, COACH, w.PASSWORD)
    assert locked.status_code == 400 and locked.text == answers[0].text
    assert client.get("/").status_code == 303, "nobody was logged in"
    with ctx.db.transaction() as s:
        assert s.execute(select(Person.locked_until).where(Person.email == COACH)).scalar_one()


def test_unknown_accounts_answer_like_wrong_passwords(client: TestClient, team_id: int) -> None:
    """Guessing cannot tell which e-mail addresses have accounts."""
    known = _try(client, COACH, "wrong password 1")
    unknown = _try(client, "nobody@example.org", "wrong password 1")
    assert known.status_code == unknown.status_code == 400
    assert known.text.replace(COACH, "X") == unknown.text.replace("nobody@example.org", "X")


def test_each_guess_costs_a_memory_hard_hash(ctx: AppContext, team_id: int) -> None:
    """What slows guessing down: Argon2id at or above OWASP's minimum (19 MiB, 2 passes)."""
    with ctx.db.transaction() as s:
        stored = s.execute(select(Person.password_hash).where(Person.email == COACH)).scalar_one()
    params = argon2.extract_parameters(stored)
    assert params.type is argon2.Type.ID
    assert params.memory_cost >= 19 * 1024 and params.time_cost >= 2


def test_guesses_in_parallel_still_lock_after_the_limit(ctx: AppContext, team_id: int) -> None:
    """Twenty guesses at once from twenty connections: the account still locks (no failure
    lost), and no more than the address's limit get an answer about the password."""
    port = free_port()
    per_address = ctx.settings.login_address_max_failures
    with served(create_app(ctx, background=False), port) as origin:
        local = threading.local()
        clients: list[httpx.Client] = []  # closed below: a client left to the collector
        # closes its sockets in whatever test runs then, which fails that test

        def guess(n: int) -> str:
            client = getattr(local, "client", None)
            if client is None:
                client = local.client = httpx.Client(base_url=origin, timeout=30)
                clients.append(client)
            page = client.get("/login")
            answer = client.post(
                "/login",
                data={"email": COACH, "password": f"guess {n}", "csrf": w.csrf_of(page.text)},
            )
            assert answer.status_code in (400, 429), answer.text
            return "throttled" if answer.status_code == 429 else "judged"

        with ThreadPoolExecutor(max_workers=20) as pool:
            outcomes = Counter(pool.map(guess, range(20)))
        for client in clients:
            client.close()
    assert outcomes["judged"] == per_address, outcomes
    with ctx.db.transaction() as s:
        locked_until = s.execute(
            select(Person.locked_until).where(Person.email == COACH)
        ).scalar_one()
    # Unserialised, the parallel guesses all read "0 failures" and the account never locked.
    assert locked_until is not None and locked_until > utcnow()
    other_network = w.client_for(ctx, "198.51.100.4")
    locked = _try(other_network, COACH, w.PASSWORD)
    assert locked.status_code == 400 and "do not match" in locked.text


def _try(client: TestClient, email: str, password: str) -> httpx.Response:
    page = client.get("/login")
    return client.post(
        "/login", data={"email": email, "password": password, "csrf": w.csrf_of(page.text)}
    )


# -- Security headers ------------------------------------------------------------------------


def _assert_secure_headers(response: httpx.Response, what: str) -> None:
    headers = response.headers
    csp = headers.get("content-security-policy", "")
    directives = dict(
        (part.strip().split(" ", 1) + [""])[:2] for part in csp.split(";") if part.strip()
    )
    assert "script-src" in directives or "default-src" in directives, f"{what}: no CSP"
    script = directives.get("script-src", directives.get("default-src", ""))
    assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script, f"{what}: {csp}"
    assert directives.get("frame-ancestors") == "'none'", f"{what}: may be framed"
    assert headers.get("x-frame-options") == "DENY", what
    assert headers.get("x-content-type-options") == "nosniff", what


def test_security_headers_on_every_kind_of_answer(
    ctx: AppContext, client: TestClient, team_id: int
) -> None:
    anonymous = [
        ("GET", "/login", {}),
        ("GET", "/", {}),  # redirect to log in
        ("GET", "/healthz", {}),
        ("GET", "/no/such/page", {}),
        ("POST", "/healthz", {}),  # method not allowed
        ("POST", "/login", {"data": {"email": "x"}}),  # no CSRF token
        ("POST", "/webhooks/telegram", {"content": b"{}"}),  # no secret
        ("POST", "/webhooks/twilio", {"data": {"Body": "x"}}),  # no signature
        ("POST", "/webhooks/telegram", {"content": b"x" * (ctx.settings.max_request_bytes + 1)}),
        ("GET", "/static/dash.css", {}),
        ("GET", "/media/chart/forged.png", {}),
        ("GET", "/matrix/forged", {}),
        ("GET", "/signoff/forged", {}),
        ("GET", "/login/link/forged", {}),
        ("GET", f"/teams/{team_id}", {}),
    ]
    seen = set()
    for method, path, kwargs in anonymous:
        response = client.request(method, path, **kwargs)
        seen.add(response.status_code)
        _assert_secure_headers(response, f"{method} {path} ({response.status_code})")
    w.login(client, COACH)
    for path in ("/", f"/teams/{team_id}", "/teams/999999", "/admin"):
        response = client.get(path)
        seen.add(response.status_code)
        _assert_secure_headers(response, f"GET {path} as a coach ({response.status_code})")
    assert {200, 303, 403, 404, 405, 413} <= seen, seen


def test_a_crash_a_404_and_a_405_carry_the_security_headers_and_a_request_id(
    ctx: AppContext, db: Database, team_id: int
) -> None:
    """Starlette answers an unhandled exception outside the app's middleware; the headers
    must be on that 500 too. The crash is real: a table dropped under the running app."""
    with TestClient(
        create_app(ctx, background=False), follow_redirects=False, raise_server_exceptions=False
    ) as client:
        w.login(client, COACH)
        assert client.get(f"/teams/{team_id}").status_code == 200
        with db.engine.begin() as conn:
            conn.execute(sql("DROP TABLE feedback_snippets"))
        answers = {
            500: client.get(f"/teams/{team_id}"),
            404: client.get("/no/such/page"),
            405: client.delete("/healthz"),
        }
    for status, answer in answers.items():
        assert answer.status_code == status, answer.text
        _assert_secure_headers(answer, f"the {status}")
        assert answer.headers["referrer-policy"] == "no-referrer", status
        assert len(answer.headers["x-request-id"]) == 32, status


def test_behind_https_cookies_are_secure_and_browsers_told_to_stay_on_https(
    monkeypatch: pytest.MonkeyPatch, db: Database, team_id: int
) -> None:
    ctx = configure(monkeypatch, db, public_url="https://dash.example.org")
    with TestClient(
        create_app(ctx, background=False), base_url="https://dash.example.org"
    ) as client:
        page = client.get("/login")
        assert page.headers["strict-transport-security"].startswith("max-age=")
        cookie = page.headers.get("set-cookie", "")
        assert "dash_session=" in cookie
        assert "secure" in cookie.lower() and "httponly" in cookie.lower()
        assert "samesite=lax" in cookie.lower()
