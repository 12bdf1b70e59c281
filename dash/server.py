"""The server factory: the composition root that wires the web app, the channel
webhooks, the scheduler and outbound delivery into one ASGI application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from dash.context import AppContext
from dash.logs import RequestIdMiddleware
from dash.timeutil import utcnow

log = logging.getLogger("dash.server")


class Background:
    """The long-running parts started beside the web app, stopped with it."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.scheduler: Any = None
        self.telegram: Any = None
        self.tasks: list[asyncio.Task[Any]] = []
        self.stop = asyncio.Event()

    async def start(self) -> None:
        from bots.delivery import DeliveryWorker
        from bots.registry import build_senders
        from scheduler.runner import SchedulerService

        self.scheduler = SchedulerService(self.ctx)
        self.scheduler.start()
        senders = build_senders(self.ctx)
        worker = DeliveryWorker(self.ctx, senders)
        self.tasks.append(asyncio.create_task(worker.run(self.stop), name="delivery"))
        if self.ctx.settings.telegram_enabled:
            from bots.telegram import TelegramChannel

            self.telegram = TelegramChannel(self.ctx)
            await self.telegram.start(self.stop)
        log.info("background started: scheduler, delivery (%s)", ", ".join(sorted(senders)))

    async def close(self) -> None:
        self.stop.set()
        if self.telegram is not None:
            await self.telegram.close()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout=10)
        if self.scheduler is not None:
            self.scheduler.shutdown()

    def scheduler_stuck(self) -> bool:
        return self.scheduler is not None and self.scheduler.is_stuck(utcnow())


def create_app(ctx: AppContext, *, background: bool = True) -> Starlette:
    """The whole HTTP surface of CONTRACT.md; `background` also runs scheduler and delivery."""
    from bots.telegram import telegram_routes
    from bots.twilio import twilio_routes
    from dash.web import middleware, web_routes
    from dash.web_board import board_routes

    state: dict[str, Background | None] = {"background": None}

    async def healthz(_: Request) -> JSONResponse:
        body: dict[str, Any] = {"status": "ok", "time": utcnow().isoformat()}
        try:
            with ctx.db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            body["database"] = "ok"
        except Exception as exc:  # any driver error means "not healthy"
            body.update(status="error", database=exc.__class__.__name__)
            return JSONResponse(body, status_code=503)
        bg = state["background"]
        if bg is not None:
            body["scheduler"] = "stuck" if bg.scheduler_stuck() else "ok"
            if bg.scheduler_stuck():
                body["status"] = "error"
                return JSONResponse(body, status_code=503)
        return JSONResponse(body)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if background:
            bg = Background(ctx)
            await bg.start()
            state["background"] = bg
        try:
            yield
        finally:
            bg_running = state["background"]
            if bg_running is not None:
                await bg_running.close()

    routes: list[BaseRoute] = [Route("/healthz", healthz, methods=["GET"])]
    routes += telegram_routes(ctx)
    routes += twilio_routes(ctx)
    routes += board_routes(ctx)
    routes += web_routes(ctx)
    stack = [Middleware(RequestIdMiddleware), *middleware(ctx)]
    app = Starlette(routes=routes, middleware=stack, lifespan=lifespan)
    app.state.ctx = ctx
    return app
