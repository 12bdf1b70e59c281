"""The team-facing cohort board as a team member opens it: its signed link, fetched in process."""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette

from dash.links import link_url
from dash.web.board import board_routes


def get(ctx, path: str) -> httpx.Response:
    """GET `path` from an app serving the board routes, in process."""
    app = Starlette(routes=board_routes(ctx))

    async def fetch() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://board.test") as client:
            return await client.get(path)

    return asyncio.run(fetch())


def board_page(ctx, team_id: int) -> str:
    url = link_url(ctx.settings.public_url, ctx.secret, "board", team_id)
    response = get(ctx, url.removeprefix(ctx.settings.public_url))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.text
