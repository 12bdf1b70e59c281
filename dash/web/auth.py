"""Log-in (password or one-time link), log-out, and the session that remembers a coach."""

from __future__ import annotations

import secrets

from starlette.responses import Response

from dash.actions.logins import LoginPolicy, end_sessions, link_login, password_login
from dash.links import BadLink, read_token
from dash.models import Person
from dash.timeutil import to_local, utcnow
from dash.web.csrf import FIELD
from dash.web.pages import Page, redirect

LINK_PROBLEMS = {
    "expired": "This log-in link has expired. Ask an admin for a new one, or log in with your password.",
    "used": "This log-in link was already used. Each link works once; log in with your password or ask for a new link.",
    "invalid": "This log-in link is not valid. Check that you copied the whole link.",
}


def safe_next(target: str | None) -> str:
    """Only same-site paths: '/teams/3' yes, '//evil.example' or 'https://…' no."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def start_session(page: Page, person: Person) -> None:
    """A fresh session for the logged-in person (a new CSRF token: no session fixation).

    It carries the person's session generation: raising that (dash.actions.logins.end_sessions)
    ends this session wherever its cookie is.
    """
    page.request.session.clear()
    page.request.session["uid"] = person.id
    page.request.session["gen"] = person.session_generation
    page.request.session[FIELD] = secrets.token_urlsafe(32)


def login(page: Page) -> Response:
    """GET: the form. POST: check the password, lock the account after repeated failures.

    An unknown e-mail, a wrong password and a locked account get the same answer, in the
    same time (one Argon2 check each), so guessing cannot learn which accounts exist. A
    client address or network that failed too often is refused whatever the e-mail (429).
    """
    next_url = safe_next(page.request.query_params.get("next") or page.field("next"))
    if page.form is None:
        if page.user is not None:
            return redirect(next_url)
        return page.render("login.html", next=next_url, email="", problem=None)
    email = page.field("email")
    client = page.request.client
    now = utcnow()
    outcome = password_login(
        page.db,
        email=email,
        password=page.field("password"),
        # uvicorn puts the X-Forwarded-For client here only for proxies in FORWARDED_ALLOW_IPS.
        client=client.host if client is not None else None,
        now=now,
        policy=LoginPolicy.from_settings(page.ctx.settings),
    )
    if outcome.person is not None:
        start_session(page, outcome.person)
        return redirect(next_url)
    if outcome.reason == "throttled" and outcome.retry_at is not None:
        response = page.render(
            "login.html",
            status=429,
            next=next_url,
            email=email,
            problem="throttled",
            retry_at=to_local(outcome.retry_at, page.viewer_tz),
        )
        wait = int((outcome.retry_at - now).total_seconds())
        response.headers["Retry-After"] = str(max(1, wait))
        return response
    return page.render("login.html", status=400, next=next_url, email=email, problem="nomatch")


def login_link(page: Page) -> Response:
    """GET shows a button (mail scanners that follow links must not use them up); POST logs in."""
    token = page.request.path_params["token"]
    hours = page.ctx.settings.link_ttl_hours
    try:
        claim = read_token(page.ctx.secret, "login", token, hours * 3600)
        if page.form is None:
            return page.render("login_link.html", token=token)
        person = link_login(page.db, claim)
    except BadLink as exc:
        return page.render("link_problem.html", status=410, message=LINK_PROBLEMS[exc.reason])
    if person is None:
        return page.render("link_problem.html", status=410, message=LINK_PROBLEMS["invalid"])
    start_session(page, person)
    return redirect("/")


def logout(page: Page) -> Response:
    """End this coach's sessions everywhere: a copy of the cookie stops working too."""
    if page.user is not None:
        end_sessions(page.db, page.user)
    page.request.session.clear()
    page.flash("You are logged out.")
    return redirect("/login")
