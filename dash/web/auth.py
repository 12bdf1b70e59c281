"""Log-in (password or one-time link), log-out, and the session that remembers a coach."""

from __future__ import annotations

import secrets

from starlette.responses import Response

from dash.actions.logins import link_login, password_login
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
    """A fresh session for the logged-in person (a new CSRF token: no session fixation)."""
    page.request.session.clear()
    page.request.session["uid"] = person.id
    page.request.session[FIELD] = secrets.token_urlsafe(32)


def login(page: Page) -> Response:
    """GET: the form. POST: check the password, lock the account after repeated failures."""
    next_url = safe_next(page.request.query_params.get("next") or page.field("next"))
    if page.form is None:
        if page.user is not None:
            return redirect(next_url)
        return page.render("login.html", next=next_url, email="", error=None)
    settings = page.ctx.settings
    email = page.field("email")
    outcome = password_login(
        page.db,
        email=email,
        password=page.field("password"),
        now=utcnow(),
        max_failures=settings.login_max_failures,
        lockout_minutes=settings.login_lockout_minutes,
    )
    if outcome.person is None:
        if outcome.reason == "locked" and outcome.locked_until is not None:
            until = to_local(outcome.locked_until, page.viewer_tz)
            error = (
                "Too many failed log-ins: this account is locked until "
                f"{until:%H:%M} ({page.viewer_tz}). Try again then, or use a log-in link."
            )
        else:
            error = "That e-mail and password do not match. Check both and try again."
        return page.render("login.html", status=400, next=next_url, email=email, error=error)
    start_session(page, outcome.person)
    return redirect(next_url)


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
    page.request.session.clear()
    page.flash("You are logged out.")
    return redirect("/login")
