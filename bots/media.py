"""Charts for chat: the PNG Telegram uploads and the signed URL Twilio fetches.

Both come from the dashboard's own code (dash.chartdata draws, dash.web.media signs and
serves), so a nurse's phone shows the same chart as the coach's page.
"""

from __future__ import annotations

from dash.context import AppContext


def chart_png(ctx: AppContext, team_id: int, lang: str = "en") -> bytes:
    """The team's run chart as a phone-sized PNG (an "awaiting data" image when empty)."""
    from dash.chartdata import team_chart

    with ctx.db.transaction() as session:
        return team_chart(session, team_id, fmt="png", size="phone", lang=lang)


def chart_url(ctx: AppContext, team_id: int) -> str:
    """A signed, expiring public URL of the team's chart PNG (served at /media/chart/…)."""
    from dash.web.media import chart_media_url

    return chart_media_url(ctx, team_id)
