"""A fake Twilio REST API for tests (real HTTP on 127.0.0.1).

Serves ``POST /2010-04-01/Accounts/{sid}/Messages.json`` and ``GET .../Messages/{sid}.json``
with HTTP basic auth, Twilio's JSON shapes and Twilio's error codes, so ``twilio.rest.Client``
(through ``bots.twilio.client.make_twilio_client``) runs unmodified against it. It can also
play Twilio's side of status callbacks: ``send_status_callback`` POSTs a signed form to the
``StatusCallback`` URL a message was created with.

Use it through the ``fake_twilio`` fixture (``tests.fakes``) or ``with FakeTwilio() as tw``.
"""

from __future__ import annotations

import base64
import datetime as dtm
import hmac
import json
import math
import re
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from tests.fakes import Call, FakeHTTPServer, Request, Response, max_in_window
from tests.fakes.signing import twilio_signature

__all__ = ["FakeTwilio"]

DEFAULT_ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
DEFAULT_AUTH_TOKEN = "fake0auth0token0123456789abcdef0"
API_VERSION = "2010-04-01"

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages(?:/(?P<sid>[^/]+))?\.json$")
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)

_MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    21211: "Invalid 'To' Phone Number",
    21602: "Message body is required.",
    21603: "A 'From' or 'MessagingServiceSid' parameter is required to send a message.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21910: "Invalid From and To pair. From and To should be of the same channel",
    63016: (
        "Failed to send freeform message because you are outside the allowed window. "
        "If you are using WhatsApp, please use a Message Template."
    ),
}


@dataclass
class _Fault:
    remaining: int
    status: int
    code: int


def _now_rfc2822() -> str:
    return dtm.datetime.now(dtm.UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def _segments(body: str) -> int:
    """SMS segments: GSM-7 160/153 characters, otherwise UCS-2 70/67."""
    if not body:
        return 1
    single, multi = (160, 153) if set(body) <= _GSM7 else (70, 67)
    return 1 if len(body) <= single else math.ceil(len(body) / multi)


def _number(address: str) -> str:
    return address.removeprefix("whatsapp:")


class FakeTwilio(FakeHTTPServer):
    """Fake Twilio Messages API with a call log, stored messages and configurable faults."""

    def __init__(
        self, account_sid: str = DEFAULT_ACCOUNT_SID, auth_token: str = DEFAULT_AUTH_TOKEN
    ) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages: dict[str, dict[str, Any]] = {}  # sid -> Twilio's JSON for it
        self.status_callbacks: dict[str, str] = {}  # sid -> StatusCallback URL
        self._faults: list[_Fault] = []
        self._opted_out: set[str] = set()
        self._closed_windows: dict[str, str] = {}  # number -> "reject" | "async"
        self._per_second: float | None = None
        self._admitted: list[tuple[float, str]] = []  # (time, From) let through
        self._delay = 0.0

    # -- addresses --------------------------------------------------------------------------
    @property
    def api_base(self) -> str:
        """The value for ``DASH_TWILIO_API_BASE`` (replaces ``https://api.twilio.com``)."""
        return self.origin

    # -- configuration by tests -------------------------------------------------------------
    def fail_next(self, n: int = 1, status: int = 500, code: int | None = None) -> None:
        """The next ``n`` API calls answer ``status`` with a Twilio error body."""
        with self._lock:
            self._faults.append(_Fault(n, status, code or (20500 if status >= 500 else status)))

    def rate_limit(self, times: int = 1) -> None:
        """The next ``times`` API calls answer 429 with code 20429."""
        with self._lock:
            self._faults.append(_Fault(times, 429, 20429))

    def enforce_rate(self, per_second: float | None) -> None:
        """Answer 429/20429 when a From sends more than ``per_second`` in 1 s (None: off)."""
        with self._lock:
            self._per_second = per_second

    def opt_out(self, number: str) -> None:
        """The person texted STOP: sends to ``number`` fail with 400/21610 until ``opt_in``."""
        with self._lock:
            self._opted_out.add(_number(number))

    def opt_in(self, number: str) -> None:
        """The person texted START."""
        with self._lock:
            self._opted_out.discard(_number(number))

    def whatsapp_session_closed(self, number: str, mode: str = "reject") -> None:
        """Free-form WhatsApp (Body without ContentSid) to ``number`` fails with 63016.

        ``mode="reject"`` answers the create call with 400/63016. ``mode="async"`` does what
        Twilio usually does: accepts (201 queued) and marks the message ``failed`` with
        error_code 63016, to be reported by ``send_status_callback``.
        """
        if mode not in ("reject", "async"):
            raise ValueError(mode)
        with self._lock:
            self._closed_windows[_number(number)] = mode

    def whatsapp_session_open(self, number: str) -> None:
        """The person wrote in: free-form WhatsApp to ``number`` is allowed again."""
        with self._lock:
            self._closed_windows.pop(_number(number), None)

    def slow(self, seconds: float) -> None:
        """Delay every answer by ``seconds`` (0 to stop)."""
        with self._lock:
            self._delay = seconds

    def clear_faults(self) -> None:
        """Drop faults, opt-outs, closed windows, delay and rate enforcement."""
        with self._lock:
            self._faults.clear()
            self._opted_out.clear()
            self._closed_windows.clear()
            self._per_second = None
            self._delay = 0.0

    def set_status(
        self, sid: str, status: str, error_code: int | None = None, error_message: str | None = None
    ) -> dict[str, Any]:
        """Move a stored message to ``status`` (what a later GET will show)."""
        with self._lock:
            message = self.messages[sid]
            message.update(
                status=status,
                error_code=error_code,
                error_message=error_message,
                date_updated=_now_rfc2822(),
            )
            if status in ("sent", "delivered", "read") and not message["date_sent"]:
                message["date_sent"] = _now_rfc2822()
            return dict(message)

    def send_status_callback(
        self,
        sid: str,
        status: str | None = None,
        error_code: int | None = None,
        *,
        url: str | None = None,
        timeout: float = 5.0,
    ) -> int:
        """POST a signed status callback for ``sid`` to its StatusCallback URL, as Twilio does.

        With ``status`` the message is first moved there. Returns the HTTP status our server
        answered. Only loopback URLs are allowed (tests never leave the machine).
        """
        message = self.set_status(sid, status, error_code) if status else self.messages[sid]
        target = url or self.status_callbacks.get(sid)
        if not target:
            raise ValueError(f"message {sid} has no StatusCallback")
        if not re.match(r"^https?://(127\.0\.0\.1|localhost|\[::1\])[:/]", target):
            raise ValueError(f"refusing non-loopback callback URL {target}")
        params = {
            "SmsSid": sid,
            "SmsStatus": message["status"],
            "MessageStatus": message["status"],
            "To": message["to"],
            "MessageSid": sid,
            "AccountSid": self.account_sid,
            "From": message["from"] or "",
            "ApiVersion": API_VERSION,
        }
        if message.get("error_code"):
            params["ErrorCode"] = str(message["error_code"])
        if message.get("messaging_service_sid"):
            params["MessagingServiceSid"] = message["messaging_service_sid"]
        request = urllib.request.Request(
            target,
            data=urlencode(params).encode(),
            method="POST",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": twilio_signature(self.auth_token, target, params),
                "User-Agent": "TwilioProxy/1.1",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    # -- inspection -------------------------------------------------------------------------
    def sent_messages(self, to: str | None = None, from_: str | None = None) -> list[Call]:
        """Accepted Messages.create calls (``params`` are the form fields), optionally filtered."""
        return [
            c
            for c in self.calls
            if c.method == "Messages.create"
            and c.ok
            and (to is None or c.params.get("To") == to)
            and (from_ is None or c.params.get("From") == from_)
        ]

    def sent_bodies(self, to: str | None = None) -> list[str]:
        """Bodies of accepted messages, in order."""
        return [str(c.params.get("Body", "")) for c in self.sent_messages(to)]

    def send_times(self, from_: str | None = None, ok_only: bool = False) -> list[float]:
        """Monotonic arrival times of create attempts (all unless ``ok_only``)."""
        return [
            c.at
            for c in self.calls
            if c.method == "Messages.create"
            and (c.ok or not ok_only)
            and (from_ is None or c.params.get("From") == from_)
        ]

    def max_sends_per_second(self, from_: str | None = None, ok_only: bool = False) -> int:
        """Most create attempts in any 1-second window, overall or from one sender."""
        return max_in_window(self.send_times(from_, ok_only), 1.0)

    # -- HTTP -------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        match = _PATH.match(req.path)
        sid = match.group("sid") if match else None
        if match and req.http_method == "POST" and sid is None:
            method = "Messages.create"
        elif match and req.http_method == "GET" and sid is not None:
            method = "Messages.fetch"
        else:
            method = f"{req.http_method} {req.path}"
        params: dict[str, Any] = {k: v[-1] for k, v in req.form.items()}
        if "MediaUrl" in req.form:
            params["MediaUrl"] = list(req.form["MediaUrl"])
        call = Call(method, params, time.monotonic(), req)
        self._record(call)
        if not self._authorised(req):
            return self._finish(call, _error(401, 20003, req.path))
        if not match or method.startswith(("GET ", "POST ", "PUT ", "DELETE ")):
            return self._finish(call, _error(404, 20404, req.path))
        if match.group("account") != self.account_sid:
            return self._finish(call, _error(404, 20404, req.path))
        with self._lock:
            delay = self._delay
        if delay:
            time.sleep(delay)
        fault = self._take_fault()
        if fault is not None:
            return self._finish(call, fault)
        if method == "Messages.fetch":
            with self._lock:
                message = self.messages.get(str(sid))
            if message is None:
                return self._finish(call, _error(404, 20404, req.path))
            return self._finish(call, Response(200, dict(message)))
        return self._finish(call, self._create(params))

    # -- internals --------------------------------------------------------------------------
    def _authorised(self, req: Request) -> bool:
        header = req.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return hmac.compare_digest(user, self.account_sid) and hmac.compare_digest(
            password, self.auth_token
        )

    def _take_fault(self) -> Response | None:
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.pop(0)
            return _error(fault.status, fault.code)

    def _create(self, p: dict[str, Any]) -> Response:
        to, from_ = str(p.get("To", "")), p.get("From")
        service = p.get("MessagingServiceSid")
        body, content_sid = p.get("Body"), p.get("ContentSid")
        media: list[str] = p.get("MediaUrl") or []
        if not to:
            return _error(400, 21604)
        if not from_ and not service:
            return _error(400, 21603)
        if not body and not media and not content_sid:
            return _error(400, 21602)
        if body and len(body) > 1600:
            return _error(400, 21617)
        whatsapp = to.startswith("whatsapp:")
        if from_ and whatsapp != str(from_).startswith("whatsapp:"):
            return _error(400, 21910)
        if not _E164.match(_number(to)):
            return _error(400, 21211, detail=f"Invalid 'To' Phone Number: {to}")
        number = _number(to)
        failed_async = False
        with self._lock:
            if number in self._opted_out:
                return _error(400, 21610)
            window = self._closed_windows.get(number) if whatsapp else None
            if window and body and not content_sid:
                if window == "reject":
                    return _error(400, 63016)
                failed_async = True
            if self._per_second is not None:
                sender = str(from_ or service)
                now = time.monotonic()
                recent = [t for t, s in self._admitted if s == sender and now - t < 1.0]
                if len(recent) >= self._per_second:
                    return _error(429, 20429)
                self._admitted.append((now, sender))
        sid = "SM" + uuid.uuid4().hex
        now_text = _now_rfc2822()
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json"
        text = body if body is not None else (f"[template {content_sid}]" if content_sid else "")
        message: dict[str, Any] = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": text,
            "date_created": now_text,
            "date_sent": None,
            "date_updated": now_text,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": from_,
            "messaging_service_sid": service,
            "num_media": str(len(media)),
            "num_segments": str(_segments(text)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service and not from_ else "queued",
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": to,
            "uri": uri,
        }
        with self._lock:
            self.messages[sid] = message
            if p.get("StatusCallback"):
                self.status_callbacks[sid] = str(p["StatusCallback"])
        answer = dict(message)
        if failed_async:
            self.set_status(sid, "failed", 63016, _MESSAGES[63016])
        return Response(201, answer)

    @staticmethod
    def parsed_content_variables(call: Call) -> dict[str, Any]:
        """``ContentVariables`` of a create call, decoded from its JSON string."""
        raw = call.params.get("ContentVariables")
        return json.loads(raw) if raw else {}


def _error(status: int, code: int, path: str = "", detail: str | None = None) -> Response:
    message = detail or _MESSAGES.get(code, "Error")
    if code == 20404 and path:
        message = f"The requested resource {path} was not found"
    headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if status == 401 else {}
    return Response(
        status,
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        headers,
    )
