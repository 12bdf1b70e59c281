"""The coach dashboard and the signed-link pages: routes and middleware for dash/app/server.py.

Every route and who may open it is listed here in one table, so permissions can be
read (and tested) in one place.
"""

from __future__ import annotations

from pathlib import Path

from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from dash.context import AppContext
from dash.web import admin, auth, cohorts, enrolment, media, repair, teams, today
from dash.web.pages import ADMIN, COACH, PUBLIC, PageFn, WebApp
from dash.web.security import BodyLimitMiddleware, SecurityHeadersMiddleware

STATIC = Path(__file__).resolve().parent.parent / "static"
SESSION_HOURS = 12

GET, POST, BOTH = ["GET"], ["POST"], ["GET", "POST"]

#: (path, page function, methods, who may open it)
PAGES: list[tuple[str, PageFn, list[str], str]] = [
    ("/login", auth.login, BOTH, PUBLIC),
    ("/login/link/{token}", auth.login_link, BOTH, PUBLIC),
    ("/logout", auth.logout, POST, PUBLIC),
    ("/", today.today_page, GET, COACH),
    ("/cohorts/{cohort_id}", cohorts.cohort_page, GET, COACH),
    ("/cohorts/{cohort_id}/export/{what}.csv", cohorts.cohort_export, GET, COACH),
    ("/teams/{team_id}", teams.team_page, GET, COACH),
    ("/teams/{team_id}/reply", teams.reply, POST, COACH),
    ("/teams/{team_id}/rating", teams.rate, POST, COACH),
    ("/teams/{team_id}/pdsa/{cycle_id}/reviewed", teams.review_cycle, POST, COACH),
    ("/teams/{team_id}/signoff/confirm", today.confirm_signoff, POST, COACH),
    ("/teams/{team_id}/enrolment/resume", repair.resume, POST, COACH),
    ("/teams/{team_id}/enrolment/restart", repair.restart, POST, COACH),
    ("/teams/{team_id}/enrolment/leader", repair.leader, POST, COACH),
    ("/snippets", teams.snippet_save, POST, COACH),
    ("/snippets/{snippet_id}/delete", teams.snippet_delete, POST, COACH),
    ("/matrix/{token}", enrolment.matrix_page, BOTH, PUBLIC),
    ("/signoff/{token}", enrolment.signoff_page, BOTH, PUBLIC),
    ("/media/chart/{token}.png", media.chart_png, GET, PUBLIC),
    ("/admin", admin.admin_page, GET, ADMIN),
    ("/admin/cohorts", admin.cohort_create, POST, ADMIN),
    ("/admin/coaches", admin.coach_create, POST, ADMIN),
    ("/admin/coaches/{person_id}/remove", admin.coach_remove, POST, ADMIN),
    ("/admin/cohorts/{cohort_id}", admin.admin_cohort, GET, ADMIN),
    ("/admin/cohorts/{cohort_id}/coaches", admin.cohort_assign, POST, ADMIN),
    ("/admin/cohorts/{cohort_id}/coaches/{person_id}/remove", admin.cohort_unassign, POST, ADMIN),
    ("/admin/cohorts/{cohort_id}/postpone", admin.cohort_postpone, POST, ADMIN),
    ("/admin/cohorts/{cohort_id}/teams", admin.cohort_enrol, POST, ADMIN),
    ("/admin/teams/{team_id}/withdraw", admin.team_withdraw, POST, ADMIN),
    ("/admin/outbox/{outbox_id}/retry", admin.outbox_retry, POST, ADMIN),
]


def web_routes(ctx: AppContext) -> list[BaseRoute]:
    """Every dashboard page, the signed-link pages, chart media and the static files."""
    web = WebApp(ctx)
    routes: list[BaseRoute] = [
        Route(path, web.endpoint(fn, access), methods=methods, name=fn.__name__)
        for path, fn, methods, access in PAGES
    ]
    routes.append(Mount("/static", StaticFiles(directory=str(STATIC)), name="static"))
    return routes


def outer_middleware(ctx: AppContext) -> list[Middleware]:
    """The security headers: dash/app/server.py runs these around Starlette's own 500 handler too,
    so every answer has them, a crash's included."""
    return [Middleware(SecurityHeadersMiddleware, https=ctx.settings.public_https)]


def middleware(ctx: AppContext) -> list[Middleware]:
    """outer_middleware, then the body-size limit (webhooks included), then the signed
    session cookie: the stack for an app that has nothing outside its 500 handler."""
    return [*outer_middleware(ctx), *inner_middleware(ctx)]


def inner_middleware(ctx: AppContext) -> list[Middleware]:
    """The body-size limit, then the signed session cookie. Both stay inside Starlette's 500
    handler: a body cut off at the limit is answered 413 here, before that handler sees it."""
    https = ctx.settings.public_https
    return [
        Middleware(BodyLimitMiddleware, max_bytes=ctx.settings.max_request_bytes),
        Middleware(
            SessionMiddleware,
            secret_key=ctx.secret,
            session_cookie="dash_session",
            max_age=SESSION_HOURS * 3600,
            same_site="lax",
            https_only=https,
        ),
    ]
