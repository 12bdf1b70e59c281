"""The team-facing cohort board at /board/{token}: shared learning on a phone.

A team member opens it from a signed link (purpose "board", subject = the team id, made by
dash.sharing.board_url) without logging in, so what it shows is exactly what
dash.sharing.cohort_board lets that team see: itself in full, consenting teams by name, the
rest as anonymous counts. dash.app.server mounts `board_routes(ctx)`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from dash.context import AppContext
from dash.links import BadLink, read_token
from dash.models import Team
from dash.sharing import BOARD_STATES, cohort_board
from dash.texts import web_env
from dash.timeutil import local_date, utcnow

BOARD_LINK_MAX_AGE_SECONDS = 28 * 24 * 3600
"""A board link works for four weeks: the two-week Dash, its baseline days and some time after,
so a link sent at enrolment still opens at the final session."""

#: Board pages carry a bearer token in the URL: never cache them, never index them.
NO_STORE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow"}


def _page(request: Request, status: int = 200, tz: str = "UTC", **context: object) -> HTMLResponse:
    """Render board.html in the dashboard's base layout, for a reader who is not logged in."""
    html = (
        web_env()
        .get_template("board.html")
        .render(user=None, csrf="", notices=[], tz=tz, path=request.url.path, **context)
    )
    return HTMLResponse(html, status_code=status, headers=NO_STORE)


def board_routes(ctx: AppContext) -> list[Route]:
    """The board route; a plain function endpoint so Starlette runs the queries in a thread."""

    def board(request: Request) -> HTMLResponse:
        token = request.path_params["token"]
        try:
            claim = read_token(ctx.secret, "board", token, BOARD_LINK_MAX_AGE_SECONDS)
        except BadLink as exc:
            status = 403 if exc.reason == "invalid" else 410
            return _page(request, status, board=None, problem=exc.reason)
        with ctx.db.transaction() as session:
            team = session.get(Team, claim.subject)
            if team is None or team.state not in BOARD_STATES:
                return _page(request, 404, board=None, problem="no_team")
            tz = team.cohort.timezone
            today = local_date(utcnow(), tz)
            board = cohort_board(session, team.cohort_id, viewer_team_id=team.id, today=today)
        return _page(request, tz=tz, board=board, problem=None)

    return [Route("/board/{token}", board, methods=["GET"], name="board")]
