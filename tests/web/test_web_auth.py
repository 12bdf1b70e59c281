"""Log-in, sessions, CSRF, lock-out, log-in links and the headers every page carries."""

from __future__ import annotations

import re
from datetime import timedelta

import argon2
import pytest
from sqlalchemy import func, select

from dash.actions.coaches import add_coach, remove_coach
from dash.links import make_token
from dash.models import Cohort, FeedbackSnippet, Person
from dash.timeutil import use_clock, utcnow
from dash.web import PAGES
from dash.web.pages import PUBLIC
from tests.support import web as w


@pytest.fixture
def setup(ctx):
    with ctx.db.transaction() as s:
        c = w.cohort(s)
        w.coach(s, "coach@example.org", cohorts=[c])
        w.coach(s, "admin@example.org", admin=True)
    return ctx


def test_anonymous_visitors_are_sent_to_log_in(setup):
    client = w.client_for(setup)
    for path, _fn, methods, access in PAGES:
        if access == PUBLIC or "GET" not in methods:
            continue
        concrete = re.sub(r"\{[a-z_]+\}", "1", path)
        response = client.get(concrete)
        assert response.status_code == 303, concrete
        assert response.headers["location"].startswith("/login?next="), concrete


def test_log_in_then_back_to_the_page_asked_for(setup):
    client = w.client_for(setup)
    first = client.get("/cohorts/1")
    assert first.headers["location"] == "/login?next=%2Fcohorts%2F1"
    form = client.get(first.headers["location"])
    assert 'name="next" value="/cohorts/1"' in form.text
    done = client.post(
        "/login",
        data={
            "email": "Coach@Example.org ",
            "password": w.PASSWORD,
            "next": "/cohorts/1",
            "csrf": w.csrf_of(form.text),
        },
    )
    assert done.status_code == 303 and done.headers["location"] == "/cohorts/1"
    assert client.get("/cohorts/1").status_code == 200


def test_log_in_never_redirects_off_site(setup):
    client = w.client_for(setup)
    form = client.get("/login")
    done = client.post(
        "/login",
        data={
            "email": "coach@example.org",
            "password": w.PASSWORD,
            "next": "//evil.example/x",
            "csrf": w.csrf_of(form.text),
        },
    )
    assert done.headers["location"] == "/"


def test_wrong_password_says_so_and_logs_nobody_in(setup):
    client = w.client_for(setup)
    form = client.get("/login")
    bad = client.post(
        "/login",
        data={"email": "coach@example.org", "password": "nope", "csrf": w.csrf_of(form.text)},
    )
    assert bad.status_code == 400
    assert "do not match" in bad.text
    assert client.get("/").status_code == 303


def test_lock_out_after_repeated_failures_even_for_the_right_password(setup):
    client = w.client_for(setup)
    limit = setup.settings.login_max_failures
    for _ in range(limit):
        form = client.get("/login")
        client.post(
            "/login",
            data={"email": "coach@example.org", "password": "guess", "csrf": w.csrf_of(form.text)},
        )
    form = client.get("/login")
    locked = client.post(
        "/login",
        data={"email": "coach@example.org", "password": w.PASSWORD, "csrf": w.csrf_of(form.text)},
    )
    assert locked.status_code == 400
    assert "do not match, or the account is locked" in locked.text
    assert client.get("/").status_code == 303
    with setup.db.transaction() as s:
        person = s.query(Person).filter_by(email="coach@example.org").one()
        assert person.locked_until is not None
        assert person.locked_until > utcnow() + timedelta(
            minutes=setup.settings.login_lockout_minutes - 1
        )
        person.locked_until = utcnow() - timedelta(seconds=1)  # the lock-out has run out
    w.login(client, "coach@example.org")
    assert client.get("/").status_code == 200


def test_every_form_without_its_csrf_token_is_refused(setup):
    client = w.client_for(setup)
    w.login(client, "admin@example.org")
    for path, _fn, methods, _access in PAGES:
        if "POST" not in methods:
            continue
        concrete = re.sub(r"\{[a-z_]+\}", "1", path)
        missing = client.post(concrete, data={"text": "hello"})
        assert missing.status_code == 403, concrete
        forged = client.post(concrete, data={"text": "hello", "csrf": "not-the-token"})
        assert forged.status_code == 403, concrete
    assert "expired or did not come from this site" in missing.text


def test_another_browser_session_token_does_not_work(setup):
    mine, theirs = w.client_for(setup), w.client_for(setup)
    w.login(mine, "coach@example.org")
    their_token = w.csrf_of(theirs.get("/login").text)
    assert mine.post("/logout", data={"csrf": their_token}).status_code == 403
    assert mine.get("/").status_code == 200  # still logged in


def test_log_out_is_a_post_and_ends_the_session(setup):
    client = w.client_for(setup)
    w.login(client, "coach@example.org")
    assert client.get("/logout").status_code == 405
    out = w.post(client, "/logout", {})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert "You are logged out." in client.get("/login").text
    assert client.get("/").status_code == 303


def test_session_cookie_is_http_only_and_same_site(setup):
    client = w.client_for(setup)
    cookie = client.get("/login").headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie  # plain http public URL in tests


def test_session_cookie_is_secure_behind_https(settings, db, monkeypatch):
    from dash.context import AppContext
    from dash.settings import get_settings

    monkeypatch.setenv("DASH_PUBLIC_URL", "https://dash.example.org")
    get_settings.cache_clear()
    ctx = AppContext.from_settings(get_settings(), db)
    client = w.client_for(ctx)
    response = client.get("https://dash.example.org/login")
    assert "secure" in response.headers["set-cookie"].lower()
    assert response.headers["strict-transport-security"].startswith("max-age=")


def test_security_headers_on_every_page(setup):
    client = w.client_for(setup)
    for path in ("/login", "/", "/matrix/garbage", "/static/dash.css", "/no-such-page"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert (
            "script-src 'self'" in csp
            and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        )
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"


def test_pages_have_no_inline_script(setup):
    client = w.client_for(setup)
    w.login(client, "admin@example.org")
    for path in ("/login", "/", "/admin", "/cohorts/1", "/admin/cohorts/1"):
        html = client.get(path).text
        assert re.findall(r"<script(?![^>]*\ssrc=)[^>]*>", html) == [], path
        assert not re.search(r"\son[a-z]+=", html), path


def _login_link(ctx, email: str) -> str:
    with ctx.db.transaction() as s:
        person = s.query(Person).filter_by(email=email).one()
        return "/login/link/" + make_token(ctx.secret, "login", person.id)


def test_log_in_link_works_once(setup):
    link = _login_link(setup, "coach@example.org")
    client = w.client_for(setup)
    page = client.get(link)  # a mail scanner following the link does not use it up
    assert page.status_code == 200 and "works once" in page.text
    used = client.post(link, data={"csrf": w.csrf_of(page.text)})
    assert used.status_code == 303 and used.headers["location"] == "/"
    assert client.get("/").status_code == 200

    other = w.client_for(setup)
    again = other.post(link, data={"csrf": w.csrf_of(other.get(link).text)})
    assert again.status_code == 410
    assert "already used" in again.text
    assert other.get("/").status_code == 303


def test_expired_log_in_link_says_so(setup):
    link = _login_link(setup, "coach@example.org")
    later = utcnow() + timedelta(hours=setup.settings.link_ttl_hours + 1)
    client = w.client_for(setup)
    with use_clock(lambda: later):
        page = client.get(link)
    assert page.status_code == 410
    assert "expired" in page.text


def test_forged_log_in_link_is_refused(setup):
    client = w.client_for(setup)
    forged = make_token("another-secret", "login", 1)
    page = client.get("/login/link/" + forged)
    assert page.status_code == 410 and "not valid" in page.text


def test_a_login_link_for_a_matrix_is_not_a_login(setup):
    with setup.db.transaction() as s:
        person = s.query(Person).filter_by(email="admin@example.org").one()
        token = make_token(setup.secret, "matrix", person.id)
    client = w.client_for(setup)
    assert client.get("/login/link/" + token).status_code == 410


# -- Guessing cannot tell accounts apart, and one client cannot lock every coach out ----------


def _try(client, email: str, password: str):
    page = client.get("/login")
    return client.post(
        "/login", data={"email": email, "password": password, "csrf": w.csrf_of(page.text)}
    )


def _lock(ctx, email: str) -> None:
    guesser = w.client_for(ctx, "192.0.2.99")
    for n in range(ctx.settings.login_max_failures):
        _try(guesser, email, f"guess {n}")


def test_a_locked_account_answers_exactly_like_an_unknown_e_mail(setup):
    _lock(setup, "coach@example.org")
    client = w.client_for(setup)
    locked = _try(client, "coach@example.org", w.PASSWORD)
    unknown = _try(client, "nobody@example.org", w.PASSWORD)
    assert locked.status_code == unknown.status_code == 400
    assert locked.text.replace("coach@example.org", "X") == unknown.text.replace(
        "nobody@example.org", "X"
    )
    assert "until" not in locked.text
    with setup.db.transaction() as s:
        assert s.query(Person).filter_by(email="coach@example.org").one().locked_until > utcnow()


def test_every_answer_costs_one_argon2_check_so_timing_tells_nothing(setup, monkeypatch):
    """What the log-in spends its time on is one Argon2 verification, whatever the account;
    counted at argon2's own PasswordHasher.verify (the real check still runs)."""
    calls: list[str] = []
    real_verify = argon2.PasswordHasher.verify

    def counted(self, hash_, password):  # noqa: ANN001, ANN202 - argon2's signature
        calls.append(password)
        return real_verify(self, hash_, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", counted)
    _lock(setup, "admin@example.org")
    calls.clear()
    client = w.client_for(setup)
    for email, password in [
        ("nobody@example.org", "a guess"),  # no such account
        ("coach@example.org", "a guess"),  # wrong password
        ("admin@example.org", w.PASSWORD),  # locked account, right password
        ("coach@example.org", w.PASSWORD),  # logs in
    ]:
        before = len(calls)
        _try(client, email, password)
        assert len(calls) - before == 1, (email, password)


def test_one_address_cannot_lock_out_every_coach(setup):
    emails = [f"coach{n}@example.org" for n in range(4)]
    with setup.db.transaction() as s:
        for email in emails:
            w.coach(s, email)
    limit = setup.settings.login_address_max_failures
    attacker = w.client_for(setup, "203.0.113.7")
    answers = [_try(attacker, email, f"guess {n}") for email in emails for n in range(5)]
    assert [a.status_code for a in answers] == [400] * limit + [429] * (20 - limit)
    with setup.db.transaction() as s:
        locked = s.execute(
            select(func.count()).where(Person.email.in_(emails), Person.locked_until.is_not(None))
        ).scalar_one()
    assert locked == limit // setup.settings.login_max_failures < len(emails)

    # Refused whatever the e-mail, known or not, right password or not: nothing about accounts.
    known = _try(attacker, emails[-1], w.PASSWORD)
    unknown = _try(attacker, "nobody@example.org", w.PASSWORD)
    assert known.status_code == unknown.status_code == 429
    assert "Too many failed log-ins from your network" in known.text
    assert known.text.replace(emails[-1], "X") == unknown.text.replace("nobody@example.org", "X")
    assert int(known.headers["retry-after"]) <= setup.settings.login_throttle_minutes * 60

    # The coaches it did not lock out log in from their own networks.
    w.login(w.client_for(setup, "198.51.100.4"), emails[-1])
    w.login(w.client_for(setup, "2001:db8:1::5"), "coach@example.org")


def test_a_network_is_throttled_as_a_whole_and_the_throttle_ends_with_its_window(setup):
    per_address = setup.settings.login_address_max_failures
    per_network = setup.settings.login_network_max_failures
    start = utcnow()
    with use_clock(lambda: start):
        for host in range(1, per_network // per_address + 1):
            client = w.client_for(setup, f"203.0.113.{host}")
            tries = [_try(client, "nobody@example.org", "x") for _ in range(per_address)]
            assert {a.status_code for a in tries} == {400}
        neighbour = w.client_for(setup, "203.0.113.200")
        assert _try(neighbour, "coach@example.org", w.PASSWORD).status_code == 429
        v6 = [w.client_for(setup, f"2001:db8:7:7::{n}") for n in range(1, 4)]
        for client in v6[:-1]:
            for _ in range(per_address):
                _try(client, "nobody@example.org", "x")
        assert _try(v6[-1], "coach@example.org", w.PASSWORD).status_code == 303
    later = start + timedelta(minutes=setup.settings.login_throttle_minutes)
    with use_clock(lambda: later):
        assert _try(neighbour, "coach@example.org", w.PASSWORD).status_code == 303


# -- Sessions end everywhere when the coach logs out, changes password, is locked or removed --


def _stolen_session(ctx, email: str) -> tuple[str, str]:
    """A logged-in browser's cookie and CSRF token, as someone copying them would hold them."""
    browser = w.client_for(ctx)
    w.login(browser, email)
    token = w.csrf_of(browser.get("/").text)
    cookie = browser.cookies["dash_session"]
    thief = w.client_for(ctx)
    thief.cookies.set("dash_session", cookie)
    assert thief.get("/").status_code == 200, "the copied cookie works while the session lasts"
    return cookie, token


def _assert_session_ended(ctx, cookie: str, token: str, team_id: int) -> None:
    def thief():  # each request with the copied cookie exactly as it was
        client = w.client_for(ctx)
        client.cookies.set("dash_session", cookie)
        return client

    for path in ("/", f"/teams/{team_id}"):
        answer = thief().get(path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login"), path
    posted = thief().post(
        "/snippets", data={"title": "Mine", "text": "posted after the end", "csrf": token}
    )
    assert posted.status_code == 303 and posted.headers["location"].startswith("/login")
    with ctx.db.transaction() as s:
        assert s.execute(select(func.count(FeedbackSnippet.id))).scalar_one() == 0


def _end_by_logout(ctx, email: str) -> None:
    browser = w.client_for(ctx)
    w.login(browser, email)
    assert w.post(browser, "/logout", {}).status_code == 303


def _end_by_password_change(ctx, email: str) -> None:
    with ctx.db.transaction() as s:  # what `dash coach add` does with a password on stdin
        add_coach(s, email=email, name="", password="a brand new password")


def _end_by_lock_out(ctx, email: str) -> None:
    _lock(ctx, email)


def _end_by_removal(ctx, email: str) -> None:
    with ctx.db.transaction() as s:
        remove_coach(s, email=email)
    with ctx.db.transaction() as s:  # and coming back later does not revive the old session
        w.coach(s, email)


@pytest.mark.parametrize(
    "end", [_end_by_logout, _end_by_password_change, _end_by_lock_out, _end_by_removal]
)
def test_a_copied_session_cookie_stops_working(setup, end):
    with setup.db.transaction() as s:
        team_id = w.team(s, s.execute(select(Cohort)).scalars().first(), "5 West").id
    cookie, token = _stolen_session(setup, "coach@example.org")
    end(setup, "coach@example.org")
    _assert_session_ended(setup, cookie, token, team_id)
