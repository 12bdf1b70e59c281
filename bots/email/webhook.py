"""The unsubscribe link every e-mail carries (List-Unsubscribe, RFC 8058).

Opening the link shows a button; pressing it, or a mail client's one-click POST, stops every
message to the person, as STOP does on a chat channel. A GET changes nothing, since mail
scanners open links to look at them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from dash.context import AppContext
from dash.links import BadLink, make_token, read_token
from dash.models import Person

PURPOSE = "email-unsubscribe"
UNSUBSCRIBE_PATH = "/email/unsubscribe/{token}"
#: How long an e-mail's unsubscribe link keeps working; mail is read (and kept) for long.
UNSUBSCRIBE_DAYS = 400

_pages = Environment(
    loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=select_autoescape(default=True),
)


def unsubscribe_url(ctx: AppContext, person_id: int, address: str) -> str:
    """The signed link that unsubscribes `person_id` (reached at `address`)."""
    token = make_token(ctx.secret, PURPOSE, person_id, a=address)
    return ctx.settings.url(UNSUBSCRIBE_PATH.format(token=token))


def unsubscribe(ctx: AppContext, token: str) -> bool:
    """Opt out the person the link names; False for a link that is not ours (or too old)."""
    from dash.actions.optout import mark_opted_out

    try:
        claim = read_token(ctx.secret, PURPOSE, token, UNSUBSCRIBE_DAYS * 86400)
    except BadLink:
        return False
    with ctx.db.transaction() as session:
        person = session.get(Person, claim.subject)
        if person is None:
            return False
        if not person.opted_out:
            mark_opted_out(session, person, reason=f"email unsubscribe {claim.extra.get('a', '')}")
    return True


def email_routes(ctx: AppContext) -> list[BaseRoute]:
    """GET shows the button, POST (the button, or a mail client's one click) unsubscribes."""

    async def page(request: Request) -> Response:
        token = request.path_params["token"]
        if request.method == "GET":
            return _page("ask", action=request.url.path)
        done = await asyncio.to_thread(unsubscribe, ctx, token)
        return _page("done") if done else _page("invalid", status=400)

    return [Route(UNSUBSCRIBE_PATH, page, methods=["GET", "POST"])]


def _page(state: str, *, status: int = 200, action: str = "") -> HTMLResponse:
    html = _pages.get_template("unsubscribe.html.j2").render(state=state, action=action)
    return HTMLResponse(html, status_code=status)
