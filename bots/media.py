"""Charts for chat: the PNG a channel uploads, or the signed URL it links or the provider fetches.

Both come from the dashboard's own code (dash.chartdata draws, dash.web.media signs and
serves), so a nurse's phone shows the same chart as the coach's page.
"""

from __future__ import annotations

import logging
from typing import Any

from dash.context import AppContext

log = logging.getLogger("bots.media")


def chart_png(ctx: AppContext, team_id: int, lang: str = "en") -> bytes:
    """The team's run chart as a phone-sized PNG (an "awaiting data" image when empty)."""
    from dash.chartdata import team_chart

    with ctx.db.transaction() as session:
        return team_chart(session, team_id, fmt="png", size="phone", lang=lang)


def chart_url(ctx: AppContext, team_id: int) -> str:
    """A signed, expiring public URL of the team's chart PNG (served at /media/chart/…)."""
    from dash.web.media import chart_media_url

    return chart_media_url(ctx, team_id)


def attached_chart_url(ctx: AppContext, payload: dict[str, Any], outbox_id: int) -> str | None:
    """The public URL of the run chart a message's payload asks for, if any (a channel that
    sends pictures by link); None when it asks for none or the chart cannot be had."""
    spec = payload.get("photo")
    if not isinstance(spec, dict) or spec.get("kind") != "chart" or not spec.get("team_id"):
        return None
    try:
        return chart_url(ctx, int(spec["team_id"]))
    except Exception:  # the text still goes; a missing picture must not stop it
        log.exception("no chart URL for outbox %s; sending text only", outbox_id)
        return None
