"""The composition root: health check and request ids on every response and log line."""

from __future__ import annotations

import io
import json
import logging

from starlette.testclient import TestClient

from dash.app.server import create_app
from dash.context import AppContext
from dash.db import Database
from dash.logs import JsonFormatter


def test_healthz_answers_when_the_database_does(ctx) -> None:
    with TestClient(create_app(ctx, background=False)) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["database"] == "ok"


def test_healthz_fails_when_the_database_is_unreachable(settings, ctx) -> None:
    down = AppContext(
        settings=settings,
        db=Database("postgresql+psycopg://nobody:x@127.0.0.1:1/none", pool_pre_ping=False),
        secret=ctx.secret,
    )
    with TestClient(create_app(down, background=False)) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "error"


def test_every_response_and_log_line_carries_a_request_id(ctx) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    http_log = logging.getLogger("dash.http")
    http_log.addHandler(handler)
    http_log.setLevel(logging.INFO)
    try:
        with TestClient(create_app(ctx, background=False)) as client:
            fresh = client.get("/login")
            given = client.get("/healthz", headers={"X-Request-ID": "trace-1234abcd"})
            hostile = client.get("/healthz", headers={"X-Request-ID": "<script>\n"})
    finally:
        http_log.removeHandler(handler)
    assert len(fresh.headers["x-request-id"]) == 32
    assert given.headers["x-request-id"] == "trace-1234abcd"
    assert hostile.headers["x-request-id"] != "<script>\n"
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {"trace-1234abcd", fresh.headers["x-request-id"]} <= {line["request_id"] for line in lines}
    assert any(line.get("path") == "/login" and line.get("status") == 200 for line in lines)


def test_a_worker_only_process_serves_webhooks_and_health_but_no_pages(ctx) -> None:
    with_telegram = AppContext(
        settings=ctx.settings.model_copy(update={"telegram_token": "123456:TEST"}),
        db=ctx.db,
        secret=ctx.secret,
    )
    app = create_app(with_telegram, background=False, roles=("tick", "delivery"))
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/login").status_code == 404
        # The webhook route is there (and refuses an unsigned call).
        assert client.post("/webhooks/telegram", json={"update_id": 1}).status_code == 403


def test_unknown_roles_are_refused(ctx) -> None:
    import pytest

    with pytest.raises(ValueError, match="unknown roles"):
        create_app(ctx, background=False, roles=("web", "mail"))
