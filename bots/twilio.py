"""Twilio SMS and WhatsApp: signed webhooks in, Messages.create out, status callbacks.

Replies never go back as TwiML: the webhook answers an empty <Response/> and replies leave
through the outbox like every other message, so they are rate-limited, retried and recorded.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from bots.delivery import OutgoingItem, SendFailed
from bots.errors import DeliveryError, ErrorKind, classify_twilio_error
from bots.intake import Intake
from bots.twilio_client import make_twilio_client
from dash.actions.outbound import record_delivery_status
from dash.context import AppContext
from dash.inbound import InboundMessage
from dash.models import Message, Person
from dash.phones import BadPhoneNumber, from_provider
from dash.settings import Settings
from dash.timeutil import utcnow

log = logging.getLogger("bots.twilio")

INBOUND_PATH = "/webhooks/twilio"
STATUS_PATH = "/webhooks/twilio/status"
SIGNATURE_HEADER = "X-Twilio-Signature"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
#: WhatsApp allows free-form messages this long after the person last wrote.
WHATSAPP_WINDOW = timedelta(hours=24)
#: Twilio's MessageStatus values we track (others, e.g. "accepted", change nothing).
TRACKED_STATUSES = ("queued", "sending", "sent", "delivered", "read", "undelivered", "failed")
#: The code Twilio gives a free-form WhatsApp message outside the 24-hour window.
WINDOW_CLOSED_CODE = "63016"
#: Twilio's code for a recipient who texted STOP.
OPTED_OUT_CODE = "21610"
#: Twilio attaches at most 10 media to one message; NumMedia above that is not Twilio's.
MAX_MEDIA = 10
_ERROR_CODE_CHARS = Message.__table__.c.error_code.type.length


# ---------------------------------------------------------------------------------------------
# Inbound


def channel_of(address: str) -> str:
    return "whatsapp" if address.lower().startswith("whatsapp:") else "sms"


def parse_inbound(params: dict[str, str]) -> InboundMessage:
    """A Twilio inbound-message webhook's form fields as an InboundMessage.

    Raises ValueError when MessageSid or a usable From is missing.
    """
    sid = params.get("MessageSid") or params.get("SmsMessageSid") or ""
    if not sid:
        raise ValueError("MessageSid missing")
    raw_from = params.get("From", "")
    try:
        address = from_provider(raw_from)
    except BadPhoneNumber as exc:
        raise ValueError(f"unusable From {raw_from!r}") from exc
    media: list[dict[str, Any]] = []
    try:
        count = int(params.get("NumMedia") or 0)
    except ValueError:
        count = 0
    for n in range(min(count, MAX_MEDIA)):  # a forged huge NumMedia must not spin forever
        url = params.get(f"MediaUrl{n}")
        if url:
            media.append({"type": params.get(f"MediaContentType{n}", ""), "url": url})
    return InboundMessage(
        channel=channel_of(raw_from),
        provider_id=sid,
        address=address,
        sender=address,
        text=(params.get("Body") or "").strip(),
        received_at=utcnow(),
        raw=dict(params),
        sender_name=params.get("ProfileName", ""),
        media=media,
    )


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
        return message.status


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


# ---------------------------------------------------------------------------------------------
# Outbound


def window_open(last_inbound: datetime | None, now: datetime) -> bool:
    """Whether WhatsApp still allows free-form messages to someone who last wrote then."""
    return last_inbound is not None and now - last_inbound < WHATSAPP_WINDOW


class TwilioSender:
    """Sends SMS (kind "sms") or WhatsApp (kind "whatsapp") outbox items with Messages.create.

    WhatsApp outside the 24-hour window goes as the payload's approved template
    (ContentSid + ContentVariables); with no template it is not sent at all (63016).
    """

    def __init__(self, ctx: AppContext, kind: str) -> None:
        if kind not in ("sms", "whatsapp"):
            raise ValueError(f"unknown Twilio channel {kind!r}")
        self.ctx = ctx
        self.kind = kind
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            s = self.ctx.settings
            self._client = make_twilio_client(
                s.twilio_account_sid or "", s.twilio_auth_token or "", s.twilio_api_base
            )
        return self._client

    def sender_address(self) -> str:
        s = self.ctx.settings
        if self.kind == "sms":
            return s.twilio_sms_from or ""
        number = s.twilio_whatsapp_from or ""
        return number if number.startswith("whatsapp:") else f"whatsapp:{number}"

    def create_arguments(self, item: OutgoingItem, now: datetime) -> dict[str, Any]:
        """Messages.create arguments for `item`; raises SendFailed when it may not go."""
        s = self.ctx.settings
        to = item.address if self.kind == "sms" else f"whatsapp:{item.address}"
        args: dict[str, Any] = {
            "to": to,
            "from_": self.sender_address(),
            "status_callback": s.url(STATUS_PATH),
        }
        template = item.payload.get("template")
        if self.kind == "whatsapp" and not window_open(item.last_inbound_at, now):
            if not isinstance(template, dict) or not template.get("content_sid"):
                raise SendFailed(
                    DeliveryError(
                        ErrorKind.WINDOW_CLOSED,
                        "outside WhatsApp's 24-hour window and this message has no approved"
                        " template; it can go once the person writes in",
                        WINDOW_CLOSED_CODE,
                    )
                )
            args["content_sid"] = template["content_sid"]
            args["content_variables"] = json.dumps(
                {str(k): str(v) for k, v in (template.get("variables") or {}).items()}
            )
            return args
        args["body"] = item.text
        media = self._media_url(item)
        if media:
            args["media_url"] = [media]
        return args

    def _media_url(self, item: OutgoingItem) -> str | None:
        spec = item.payload.get("photo")
        if not isinstance(spec, dict) or spec.get("kind") != "chart" or not spec.get("team_id"):
            return None
        from bots.media import chart_url

        try:
            return chart_url(self.ctx, int(spec["team_id"]))
        except Exception:  # the text still goes; a missing picture must not stop it
            log.exception("no chart URL for outbox %s; sending text only", item.outbox_id)
            return None

    async def send(self, item: OutgoingItem) -> str:
        args = self.create_arguments(item, utcnow())
        try:
            message = await asyncio.to_thread(self.client.messages.create, **args)
        except Exception as exc:
            raise SendFailed(classify_twilio_error(exc)) from exc
        return str(message.sid)
