"""Serve one app for a benchmark: `python bench/serve.py dash|bare PORT` on 127.0.0.1.

With WORKERS > 1, uvicorn forks that many processes sharing the socket (`dash serve
--workers`). "dash" is dash.app.server.create_app without background workers (the webhooks and pages under
test), configured from the environment like `dash serve`. "bare" is the reference: a Starlette
app whose endpoints read the request and answer small JSON, on the same uvicorn settings, so
the ratio shows what our code costs above the framework's own limit.
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def _echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"ok": True, "bytes": len(body)})


def bare_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/webhooks/telegram", _echo, methods=["POST"]),
            Route("/webhooks/twilio", _echo, methods=["POST"]),
            Route("/page", _echo, methods=["GET"]),
        ]
    )


def dash_app() -> Starlette:
    from dash.app.server import create_app
    from dash.context import AppContext
    from dash.heap import settle_heap

    app = create_app(AppContext.from_settings(), background=False)
    settle_heap()  # as `dash serve` does
    return app


def main() -> None:
    which, port = sys.argv[1], int(sys.argv[2])
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    factory = "bench.serve:dash_app" if which == "dash" else "bench.serve:bare_app"
    uvicorn.run(
        factory,
        factory=True,
        workers=workers,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
