"""Chart images behind signed, expiring links, for channels that fetch media by URL (Twilio)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import Response

from dash.context import AppContext
from dash.links import BadLink, make_token, read_token
from dash.models import Team
from dash.web.pages import Page

PURPOSE = "media"


def chart_media_url(ctx: AppContext, team_id: int) -> str:
    """The public URL of `team_id`'s run chart PNG, valid for settings.link_ttl_hours."""
    token = make_token(ctx.secret, PURPOSE, team_id)
    return ctx.settings.url(f"/media/chart/{token}.png")


def chart_png(page: Page) -> Response:
    """Not single-use: Twilio may fetch a MediaUrl more than once. Only the signature and
    its age decide, and the image holds no more than the team already receives."""
    from dash.chartdata import team_chart

    try:
        claim = read_token(
            page.ctx.secret,
            PURPOSE,
            page.request.path_params["token"],
            page.ctx.settings.link_ttl_hours * 3600,
        )
    except BadLink as exc:
        raise HTTPException(404) from exc
    team = page.db.get(Team, claim.subject)
    if team is None:
        raise HTTPException(404)
    lang = str(claim.extra.get("lang", "en"))
    png = team_chart(page.db, team.id, fmt="png", size="phone", lang=lang)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})
