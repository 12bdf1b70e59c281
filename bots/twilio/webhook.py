"""Twilio SMS and WhatsApp webhooks: signed messages in, status callbacks.

Replies never go back as TwiML: the webhook answers an empty <Response/> and replies leave
through the outbox like every other message, so they are rate-limited, retried and recorded.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from bots.intake import Intake
from bots.twilio.inbound import parse_inbound
from dash.actions.outbox import record_delivery_status
from dash.context import AppContext
from dash.models import Message, OutboxItem, Person
from dash.settings import Settings

log = logging.getLogger("bots.twilio")

INBOUND_PATH = "/webhooks/twilio"
STATUS_PATH = "/webhooks/twilio/status"
SIGNATURE_HEADER = "X-Twilio-Signature"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
#: Twilio's MessageStatus values we track (others, e.g. "accepted", change nothing).
TRACKED_STATUSES = ("queued", "sending", "sent", "delivered", "read", "undelivered", "failed")
#: Twilio's code for a recipient who texted STOP.
OPTED_OUT_CODE = "21610"
#: Twilio's code for free-form WhatsApp outside the 24-hour window.
WINDOW_CLOSED_CODE = "63016"
_ERROR_CODE_CHARS = Message.__table__.c.error_code.type.length


def _validator(settings: Settings) -> RequestValidator | None:
    token = settings.twilio_auth_token
    return RequestValidator(token) if token else None


async def _signed_params(request: Request, settings: Settings, path: str) -> dict[str, str] | None:
    """The form fields if the signature is Twilio's for our public URL; else None.

    The URL is rebuilt from DASH_PUBLIC_URL (plus any query string), never from the request
    as seen behind a proxy.
    """
    validator = _validator(settings)
    if validator is None:
        return None
    form = await request.form()
    params = {key: str(value) for key, value in form.multi_items()}
    url = settings.url(path)
    if request.url.query:
        url = f"{url}?{request.url.query}"
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not signature or not validator.validate(url, params, signature):
        return None
    return params


def handle_status(ctx: AppContext, params: dict[str, str]) -> str | None:
    """Apply one status callback; returns the message's status after it (None if unknown)."""
    status = (params.get("MessageStatus") or params.get("SmsStatus") or "").lower()
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    if not sid or status not in TRACKED_STATUSES:
        return None
    # Twilio's codes are five digits; anything longer would not fit the column (PostgreSQL
    # refuses it: 503 and this callback retried for ever), so a longer one is cut.
    code = (params.get("ErrorCode") or "")[:_ERROR_CODE_CHARS] or None
    with ctx.db.transaction() as session:
        message = record_delivery_status(
            session,
            channels=("sms", "whatsapp"),
            provider_id=sid,
            status=status,
            error_code=code,
            error_detail=params.get("ErrorMessage") or (f"Twilio error {code}" if code else None),
        )
        if message is None:
            return None
        if code == OPTED_OUT_CODE and message.person_id is not None:
            from dash.actions.optout import mark_opted_out

            person = session.get(Person, message.person_id)
            if person is not None and not person.opted_out:
                mark_opted_out(session, person, reason=f"{message.channel} {code}")
        if code == WINDOW_CLOSED_CODE and status in ("failed", "undelivered"):
            _window_closed(ctx, session, message)
        return message.status


def _window_closed(ctx: AppContext, session: Session, message: Message) -> None:
    """WhatsApp refused the message after accepting it (63016 reported late): it goes again on
    the channel's fallback, or whoever it was sent for is told (dash.actions.undelivered)."""
    from bots.registry import enabled_names, type_for
    from dash.actions.undelivered import window_closed

    row = session.execute(
        select(OutboxItem.id).where(OutboxItem.message_id == message.id)
    ).scalar_one_or_none()
    if row is None:
        return
    fallback = type_for(message.channel).fallback
    enabled = ctx.channels if ctx.channels is not None else enabled_names(ctx.settings)
    window_closed(
        session,
        row,
        fallback=fallback if fallback in enabled else None,
        code=message.error_code,
        detail=message.error_detail or "",
    )


def twilio_routes(ctx: AppContext, intake: Intake | None = None) -> list[Route]:
    """POST /webhooks/twilio (inbound) and /webhooks/twilio/status, both signature-checked.

    Messages arriving together are stored and processed together (`intake`, shared with
    the other webhooks of the process).
    """
    settings = ctx.settings
    intake = intake or Intake(ctx)

    async def inbound(request: Request) -> Response:
        params = await _signed_params(request, settings, INBOUND_PATH)
        if params is None:
            return PlainTextResponse("invalid signature", status_code=403)
        try:
            await intake.submit(partial(parse_inbound, params))
        except ValueError as exc:
            return PlainTextResponse(f"not a Twilio message: {exc}", status_code=400)
        except SQLAlchemyError:
            log.exception("database unavailable; Twilio will retry the message")
            return PlainTextResponse("try again later", status_code=503)
        return Response(EMPTY_TWIML, media_type="application/xml")

    async def status(request: Request) -> Response:
        params = await _signed_params(request, settings, STATUS_PATH)
        if params is None:
            return PlainTextResponse("invalid signature", status_code=403)
        try:
            await asyncio.to_thread(handle_status, ctx, params)
        except SQLAlchemyError:
            log.exception("database unavailable; Twilio will retry the status callback")
            return PlainTextResponse("try again later", status_code=503)
        return Response(EMPTY_TWIML, media_type="application/xml")

    return [
        Route(INBOUND_PATH, inbound, methods=["POST"]),
        Route(STATUS_PATH, status, methods=["POST"]),
    ]
