"""Log-in, sessions, CSRF, lock-out, log-in links and the headers every page carries."""

from __future__ import annotations

import re
import time as real_time
import types
from datetime import timedelta

import pytest

from dash.links import make_token
from dash.models import Person
from dash.timeutil import utcnow
from dash.web import PAGES
from dash.web.pages import PUBLIC
from tests import web_support as w


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
    assert "locked until" in locked.text
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


def test_expired_log_in_link_says_so(setup, monkeypatch):
    link = _login_link(setup, "coach@example.org")
    later = real_time.time() + (setup.settings.link_ttl_hours + 1) * 3600
    monkeypatch.setattr("itsdangerous.timed.time", types.SimpleNamespace(time=lambda: later))
    client = w.client_for(setup)
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
