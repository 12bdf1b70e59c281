"""The plumbing every page shares: who is asking, one transaction, templates, errors.

Each page is a plain function `(page: Page) -> Response` run in a worker thread (the
database calls block), inside one transaction that commits when it returns.
`WebApp.endpoint` wraps it: it reads and CSRF-checks POSTed forms, loads the logged-in
coach, enforces who may see it, and turns HTTP errors into friendly pages.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote, unquote

from jinja2 import Environment
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from dash.context import AppContext
from dash.errors import UserError
from dash.models import Person
from dash.models.base import fits_bigint
from dash.privacy import mask_identifiers
from dash.texts import web_env
from dash.timeutil import BadTimeZone, to_local, utcnow, zone
from dash.web.csrf import check_csrf, csrf_token

#: Who may open a page: anyone (signed links, log-in), a coach (or admin), or an admin.
PUBLIC, COACH, ADMIN = "public", "coach", "admin"


def valid_zone(name: str | None) -> str | None:
    try:
        return zone(name or "").key
    except BadTimeZone:
        return None


def when(instant: datetime | None, tz: str = "UTC") -> str:
    """'Tue 3 Dec 14:05' in `tz`."""
    if instant is None:
        return "–"
    local = to_local(instant, tz)
    return f"{local:%a} {local.day} {local:%b} {local:%H:%M}"


def day_label(day: date | None) -> str:
    if day is None:
        return "–"
    return f"{day:%a} {day.day} {day:%b}"


def ago(instant: datetime | None, now: datetime | None = None) -> str:
    """A short age like '5 min', '3 h', '2 d'."""
    if instant is None:
        return "–"
    seconds = max(0, int(((now or utcnow()) - instant).total_seconds()))
    if seconds < 3600:
        return f"{max(1, seconds // 60)} min"
    if seconds < 86400 * 2:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def make_env() -> Environment:
    env = web_env()
    env.filters.update(when=when, day=day_label, ago=ago, mask=mask_identifiers)
    env.globals["quote"] = quote
    return env


@dataclass
class Page:
    """Everything a page function needs for one request."""

    request: Request
    db: Session
    user: Person | None
    form: FormData | None
    web: WebApp
    notices: list[str] = field(default_factory=list)

    @property
    def ctx(self) -> AppContext:
        return self.web.ctx

    @property
    def viewer_tz(self) -> str:
        """The viewer's time zone: their profile's, else their browser's (tz.js), else UTC."""
        if self.user is not None and valid_zone(self.user.timezone):
            return str(self.user.timezone)
        # tz.js writes the zone URL-encoded ("America%2FNew_York"), as a cookie value must be.
        return valid_zone(unquote(self.request.cookies.get("tz") or "")) or "UTC"

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name) if self.form is not None else None
        return value.strip() if isinstance(value, str) else default

    def int_param(self, value: str | None) -> int:
        """An id from the path (or a form): 404 unless it is a number a row could have."""
        number = _bigint(value)
        if number is None:
            raise HTTPException(404)
        return number

    def query_int(self, name: str) -> int | None:
        """A number from the query string, None when absent: 400 unless a row could have it."""
        value = self.request.query_params.get(name)
        if not value:
            return None
        number = _bigint(value)
        if number is None:
            raise HTTPException(400, f"“{name}” must be a whole number.")
        return number

    def float_field(self, name: str, problem: str) -> float:
        """A finite number from the form; 400 with `problem` for anything else (inf, nan,
        1e309 parse as floats, and no scale or column can hold them)."""
        try:
            number = float(self.field(name))
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise HTTPException(400, problem)
        return number

    def flash(self, text: str) -> None:
        """A notice shown once on the next page (after a POST-redirect-GET)."""
        self.request.session.setdefault("flash", []).append(text)

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        flashes = self.request.session.pop("flash", []) if "flash" in self.request.session else []
        html = self.web.env.get_template(template).render(
            user=self.user,
            csrf=csrf_token(self.request),
            tz=self.viewer_tz,
            now=utcnow(),
            notices=[*flashes, *self.notices],
            path=self.request.url.path,
            **context,
        )
        return HTMLResponse(html, status_code=status)

    @contextmanager
    def attempt(self) -> Iterator[list[str]]:
        """Run an action in a savepoint; a UserError undoes it and its message is collected."""
        errors: list[str] = []
        try:
            with self.db.begin_nested():
                yield errors
        except UserError as exc:
            errors.append(str(exc))


def _bigint(value: str | None) -> int | None:
    """`value` as an integer if it is one that fits an integer column, else None."""
    try:
        number = int(value or "")
    except ValueError:  # not a number, or more digits than int() reads
        return None
    return number if fits_bigint(number) else None


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


PageFn = Callable[[Page], Response]


class WebApp:
    """Holds the context and the template environment the pages share."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.env = make_env()

    def endpoint(self, fn: PageFn, access: str = COACH) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            form: FormData | None = None
            try:
                if request.method == "POST":
                    form = await request.form()
                    check_csrf(request, form)
                return await run_in_threadpool(self._run, fn, access, request, form)
            except HTTPException as exc:
                return self.error_page(request, exc.status_code, str(exc.detail))

        handle.__name__ = fn.__name__
        return handle

    def _run(self, fn: PageFn, access: str, request: Request, form: FormData | None) -> Response:
        with self.ctx.db.transaction() as db:
            user = self._user(db, request)
            if access != PUBLIC and user is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return redirect("/login?next=" + quote(target, safe=""))
            if access == ADMIN and not (user and user.is_admin):
                raise HTTPException(404)
            return fn(Page(request=request, db=db, user=user, form=form, web=self))

    @staticmethod
    def _user(db: Session, request: Request) -> Person | None:
        """The coach this session belongs to, unless their sessions were ended since it began
        (log-out, password change, lock-out, removal: dash.actions.logins.end_sessions)."""
        uid = request.session.get("uid")
        if not isinstance(uid, int):
            return None
        person = db.get(Person, uid)
        if (
            person is None
            or not (person.is_coach or person.is_admin)
            or request.session.get("gen") != person.session_generation
        ):
            request.session.pop("uid", None)
            request.session.pop("gen", None)
            return None
        return person

    def error_page(self, request: Request, status: int, detail: str) -> HTMLResponse:
        messages = {
            403: detail or "You cannot do that here.",
            404: "There is nothing here, or it is not yours to see.",
        }
        html = self.env.get_template("error.html").render(
            user=None,
            csrf=csrf_token(request),
            tz="UTC",
            now=datetime.now(UTC),
            notices=[],
            path=request.url.path,
            status=status,
            message=messages.get(status, detail),
        )
        return HTMLResponse(html, status_code=status)
