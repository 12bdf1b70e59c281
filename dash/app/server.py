"""The server factory: part of the wiring package dash.app, it puts the web app, the channel
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
from starlette.types import ASGIApp

from dash.context import AppContext
from dash.heap import settle_heap
from dash.logs import RequestIdMiddleware
from dash.timeutil import utcnow

log = logging.getLogger("dash.server")


#: What one `dash serve` process can do; several processes may split them (docs/PERFORMANCE.md).
ROLES = ("web", "tick", "delivery")


class Background:
    """The long-running parts started beside the web app, stopped with it.

    Delivery runs under leader election per channel account (dash.app.workers.LedDelivery),
    and a channel's own task (long polling, say) under its lock when it names one, so
    several `dash serve` processes never both send for one account or both poll it.
    """

    def __init__(self, ctx: AppContext, roles: tuple[str, ...] = ROLES) -> None:
        self.ctx = ctx
        self.roles = roles
        self.scheduler: Any = None
        self.channel_tasks: list[Any] = []
        self.locks: list[Any] = []
        self.tasks: list[asyncio.Task[Any]] = []
        self.stop = asyncio.Event()

    async def start(self) -> None:
        from bots import registry
        from dash.app.workers import ChannelLock, LedDelivery

        if "tick" in self.roles:
            from scheduler.runner import SchedulerService

            self.scheduler = SchedulerService(self.ctx)
            self.scheduler.start()
        if "delivery" in self.roles:
            led = LedDelivery(self.ctx)
            self.tasks.append(asyncio.create_task(led.run(self.stop), name="delivery"))
        if "web" in self.roles:
            for channel_type in registry.enabled(self.ctx.settings):
                task = channel_type.background(self.ctx)
                if task is None:
                    continue
                lock = ChannelLock(self.ctx.db, task.lock_key) if task.lock_key else None
                if lock is not None and not await asyncio.to_thread(lock.acquire):
                    continue
                if lock is not None:
                    self.locks.append(lock)
                self.channel_tasks.append(task)
                await task.start(self.stop)
        log.info("background started: %s", ", ".join(self.roles))

    async def close(self) -> None:
        self.stop.set()
        for task in self.channel_tasks:
            await task.close()
        for lock in self.locks:
            await asyncio.to_thread(lock.release)
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout=10)
        if self.scheduler is not None:
            self.scheduler.shutdown()

    def scheduler_stuck(self) -> bool:
        return self.scheduler is not None and self.scheduler.is_stuck(utcnow())


class OuterStarlette(Starlette):
    """Starlette with `outer` middleware around its ServerErrorMiddleware as well.

    Starlette puts that handler outside every middleware it is given, so the 500 it sends
    for an unhandled exception would skip them: no security headers, no request id.
    """

    def __init__(self, *, outer: list[Middleware], **kwargs: Any) -> None:
        self.outer = outer
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        app = super().build_middleware_stack()
        for cls, args, kwargs in reversed(self.outer):
            app = cls(app, *args, **kwargs)
        return app


def app_from_settings() -> Starlette:
    """uvicorn's factory for `dash serve --workers N`: each worker process builds its own app
    (and database pool) from the settings, running the roles in `serve_roles`."""
    from bots import registry
    from dash.logs import configure_logging
    from dash.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_level)
    ctx = AppContext.from_settings(settings, channels=registry.enabled_names(settings))
    ctx.reply_windows = registry.reply_windows(registry.enabled_names(settings))
    app = create_app(ctx, roles=parse_roles(settings.serve_roles))
    settle_heap()
    return app


def parse_roles(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Roles from "web,tick" or a list of them, each once; ValueError for an unknown one."""
    items = value.split(",") if isinstance(value, str) else list(value)
    roles = tuple(dict.fromkeys(r.strip() for r in items if r.strip()))
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"unknown roles {sorted(unknown)}; use {', '.join(ROLES)}")
    return roles


def create_app(
    ctx: AppContext, *, background: bool = True, roles: tuple[str, ...] = ROLES
) -> Starlette:
    """The whole HTTP surface of CONTRACT.md; `background` also runs what `roles` name.

    Webhooks and /healthz are always served; the dashboard pages only with the "web" role.
    """
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; use {', '.join(ROLES)}")
    # Load the engine (a second or more on a busy machine) now, not inside the first
    # webhook, which would answer so late that a provider could time out and send it again.
    import dash.engine.router  # noqa: F401
    from bots import registry
    from bots.intake import Intake
    from dash.web import inner_middleware, outer_middleware, web_routes
    from dash.web.board import board_routes

    ctx.address_label = registry.address_label  # the dashboard shows each channel's own way
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
            bg = Background(ctx, roles)
            await bg.start()
            state["background"] = bg
        try:
            yield
        finally:
            bg_running = state["background"]
            if bg_running is not None:
                await bg_running.close()

    routes: list[BaseRoute] = [Route("/healthz", healthz, methods=["GET"])]
    intake = Intake(ctx)  # one queue for every channel's webhooks
    routes += registry.routes(ctx, intake)
    if "web" in roles:
        routes += board_routes(ctx)
        routes += web_routes(ctx)
    app = OuterStarlette(
        outer=[Middleware(RequestIdMiddleware), *outer_middleware(ctx)],
        routes=routes,
        middleware=inner_middleware(ctx),
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    return app
