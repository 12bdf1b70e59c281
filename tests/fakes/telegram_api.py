"""A fake Telegram Bot API server for tests (real HTTP on 127.0.0.1).

Serves ``/bot<token>/<method>`` the way api.telegram.org does: parameters from the query
string, a JSON body, a urlencoded form or multipart (PTB sends forms whose non-string values
are JSON-encoded, and multipart when a file is uploaded), answers
``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": N, "description": ...}``.
Method names are case-insensitive, as on the real server.

Use it through the ``fake_telegram`` fixture (``tests.fakes``) or ``with FakeTelegram() as tg``.
"""

from __future__ import annotations

import itertools
import json
import math
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dash.timeutil import utcnow
from tests.fakes import Call, FakeHTTPServer, Request, Response, max_in_window

__all__ = ["SEND_METHODS", "FakeTelegram"]

DEFAULT_TOKEN = "123456:TEST-fake-telegram-token_abcdefghijk"

#: Methods that deliver something to a chat and count against flood limits.
SEND_METHODS = frozenset(
    {
        "sendmessage",
        "sendphoto",
        "senddocument",
        "sendmediagroup",
        "sendanimation",
        "sendvideo",
        "sendaudio",
        "sendvoice",
        "sendsticker",
        "sendlocation",
        "sendcontact",
        "sendpoll",
        "senddice",
        "forwardmessage",
        "copymessage",
    }
)

_METHODS = {
    name.lower(): name
    for name in (
        "getMe",
        "sendMessage",
        "sendPhoto",
        "setWebhook",
        "deleteWebhook",
        "getWebhookInfo",
        "setMyCommands",
        "getMyCommands",
        "deleteMyCommands",
        "answerCallbackQuery",
        "editMessageText",
        "editMessageReplyMarkup",
        "getUpdates",
        "sendChatAction",
        "getChat",
    )
}

# Parameters that are plain strings on the wire (never JSON-decoded, "123" stays "123").
_TEXT_PARAMS = frozenset(
    {
        "text",
        "caption",
        "url",
        "secret_token",
        "parse_mode",
        "callback_query_id",
        "inline_message_id",
        "language_code",
        "photo",
        "ip_address",
        "business_connection_id",
        "message_effect_id",
        "description",
        "short_description",
        "name",
    }
)

_SECRET_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


@dataclass
class _Fault:
    remaining: int
    status: int
    description: str
    methods: frozenset[str] | None
    parameters: dict[str, Any] | None = None

    def matches(self, method: str) -> bool:
        if self.methods is None:
            return method != "getupdates"
        return method in self.methods


def _coerce(name: str, value: str) -> Any:
    """Decode one wire value the way the Bot API does (JSON for non-strings)."""
    if name in _TEXT_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _chat_key(chat_id: Any) -> int | str:
    if isinstance(chat_id, str) and chat_id.lstrip("-").isdigit():
        return int(chat_id)
    return chat_id  # type: ignore[no-any-return]


class FakeTelegram(FakeHTTPServer):
    """Fake Bot API with a call log, update queue, webhook state and configurable faults."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_first_name: str = "Dash",
        bot_username: str = "dash_bot",
        max_long_poll: float = 0.5,
    ) -> None:
        super().__init__()
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_user = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.max_long_poll = max_long_poll
        self.webhook: dict[str, Any] | None = None
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.messages: dict[tuple[int | str, int], dict[str, Any]] = {}
        self.chats: dict[int | str, dict[str, Any]] = {}
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int | str, itertools.count[int]] = {}
        self._faults: list[_Fault] = []
        self._blocked: dict[int | str, str] = {}
        self._unknown_chats: set[int | str] = set()
        self._delay = 0.0
        self._limits: tuple[float | None, float | None, float | None] | None = None
        self._admitted: list[tuple[float, int | str]] = []  # sends let through, for limits

    # -- addresses --------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The value for PTB's ``base_url`` (``DASH_TELEGRAM_API_BASE``); PTB appends the token."""
        return f"{self.origin}/bot"

    # -- configuration by tests -------------------------------------------------------------
    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        description: str | None = None,
        methods: Iterable[str] | None = None,
    ) -> None:
        """The next ``n`` matching calls answer ``status`` (default: any method but getUpdates)."""
        text = description or {
            500: "Internal Server Error",
            502: "Bad Gateway",
            400: "Bad Request: fake failure",
        }.get(status, f"Error {status}")
        self._add_fault(_Fault(n, status, text, self._method_set(methods)))

    def rate_limit(
        self, retry_after: int = 5, times: int = 1, methods: Iterable[str] | None = None
    ) -> None:
        """The next ``times`` matching calls answer 429 with ``parameters.retry_after``."""
        self._add_fault(
            _Fault(
                times,
                429,
                f"Too Many Requests: retry after {retry_after}",
                self._method_set(methods),
                {"retry_after": retry_after},
            )
        )

    def enforce_limits(
        self,
        per_second: float | None = 30,
        per_chat_per_second: float | None = 1,
        per_group_per_minute: float | None = 20,
    ) -> None:
        """Answer 429 to sends over Telegram's flood limits (counted on accepted sends).

        Groups are chats with a negative id. Pass None to drop one limit.
        """
        with self._lock:
            self._limits = (per_second, per_chat_per_second, per_group_per_minute)

    def block_chat(
        self, chat_id: int | str, description: str = "Forbidden: bot was blocked by the user"
    ) -> None:
        """Every call aimed at ``chat_id`` answers 403 (like a user who blocked the bot)."""
        with self._lock:
            self._blocked[_chat_key(chat_id)] = description

    def unblock_chat(self, chat_id: int | str) -> None:
        """Undo ``block_chat``."""
        with self._lock:
            self._blocked.pop(_chat_key(chat_id), None)

    def forget_chat(self, chat_id: int | str) -> None:
        """Calls aimed at ``chat_id`` answer 400 "Bad Request: chat not found"."""
        with self._lock:
            self._unknown_chats.add(_chat_key(chat_id))

    def slow(self, seconds: float) -> None:
        """Delay every answer except getUpdates by ``seconds`` (0 to stop)."""
        with self._lock:
            self._delay = seconds

    def clear_faults(self) -> None:
        """Drop every configured fault, block, delay and limit."""
        with self._lock:
            self._faults.clear()
            self._blocked.clear()
            self._unknown_chats.clear()
            self._delay = 0.0
            self._limits = None

    def add_chat(self, chat: dict[str, Any]) -> None:
        """Describe a chat (``{"id", "type", "title"|"first_name", ...}``) for Message results."""
        with self._lock:
            self.chats[_chat_key(chat["id"])] = dict(chat)

    # -- updates for getUpdates -------------------------------------------------------------
    def push_update(self, update: dict[str, Any]) -> int:
        """Queue an Update for getUpdates; an ``update_id`` is assigned when missing."""
        with self._lock:
            update = dict(update)
            if "update_id" in update:
                self._update_ids = itertools.count(int(update["update_id"]) + 1)
            else:
                update["update_id"] = next(self._update_ids)
            self._updates.append(update)
            self._changed.notify_all()
            return int(update["update_id"])

    def push_text(
        self,
        chat_id: int,
        text: str,
        *,
        from_id: int | None = None,
        first_name: str = "Ana",
        chat_type: str | None = None,
    ) -> int:
        """Queue a text message update from a person (private chat unless ``chat_id`` < 0)."""
        user = {"id": from_id or chat_id, "is_bot": False, "first_name": first_name}
        chat = self._chat(chat_id)
        if chat_type:
            chat["type"] = chat_type
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id),
            "from": user,
            "chat": chat,
            "date": int(utcnow().timestamp()),
            "text": text,
        }
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return self.push_update({"message": message})

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates queued and not yet confirmed by an offset."""
        with self._lock:
            return list(self._updates)

    # -- inspection -------------------------------------------------------------------------
    def sent_messages(self, chat_id: int | str | None = None) -> list[Call]:
        """Accepted ``send*`` calls, optionally for one chat, in order."""
        key = None if chat_id is None else _chat_key(chat_id)
        return [
            c
            for c in self.calls
            if c.method.lower() in SEND_METHODS
            and c.ok
            and (key is None or _chat_key(c.params.get("chat_id")) == key)
        ]

    def sent_texts(self, chat_id: int | str | None = None) -> list[str]:
        """Texts (or captions) of accepted sends."""
        return [
            str(c.params.get("text", c.params.get("caption", "")))
            for c in self.sent_messages(chat_id)
        ]

    def send_times(self, chat_id: int | str | None = None, ok_only: bool = False) -> list[float]:
        """Monotonic arrival times of send attempts (all attempts unless ``ok_only``)."""
        key = None if chat_id is None else _chat_key(chat_id)
        return [
            c.at
            for c in self.calls
            if c.method.lower() in SEND_METHODS
            and (c.ok or not ok_only)
            and (key is None or _chat_key(c.params.get("chat_id")) == key)
        ]

    def max_sends_per_second(self, chat_id: int | str | None = None, ok_only: bool = False) -> int:
        """Most send attempts in any 1-second window, overall or to one chat."""
        return max_in_window(self.send_times(chat_id, ok_only), 1.0)

    def max_sends_per_minute(self, chat_id: int | str, ok_only: bool = False) -> int:
        """Most send attempts to one chat in any 60-second window (the group limit)."""
        return max_in_window(self.send_times(chat_id, ok_only), 60.0)

    # -- HTTP -------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        parts = req.path.strip("/").split("/")
        if len(parts) != 2 or not parts[0].startswith("bot"):
            return Response(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        token, raw_method = parts[0][3:], parts[1]
        params = self._params(req)
        method = raw_method.lower()
        call = Call(_METHODS.get(method, raw_method), params, time.monotonic(), req, req.files)
        self._record(call)
        if token != self.token:
            return self._finish(call, _error(401, "Unauthorized"))
        if method not in _METHODS:
            return self._finish(call, _error(404, "Not Found"))
        with self._lock:
            delay = self._delay if method != "getupdates" else 0.0
        if delay:
            time.sleep(delay)
        resp = self._fault_for(method, params) or self._dispatch(method, params, req)
        return self._finish(call, resp)

    # -- internals --------------------------------------------------------------------------
    @staticmethod
    def _params(req: Request) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for source in (req.query, req.form):
            for name, values in source.items():
                params[name] = _coerce(name, values[-1])
        if isinstance(req.json_body, dict):
            params.update(req.json_body)
        return params

    @staticmethod
    def _method_set(methods: Iterable[str] | None) -> frozenset[str] | None:
        return None if methods is None else frozenset(m.lower() for m in methods)

    def _add_fault(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _fault_for(self, method: str, params: dict[str, Any]) -> Response | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.matches(method):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return _error(fault.status, fault.description, fault.parameters)
            chat = params.get("chat_id")
            if chat is not None:
                key = _chat_key(chat)
                if key in self._blocked:
                    return _error(403, self._blocked[key])
                if key in self._unknown_chats:
                    return _error(400, "Bad Request: chat not found")
                if method in SEND_METHODS:
                    if self._limits is not None:
                        refused = self._flood_check(key)
                        if refused is not None:
                            return refused
                    # Admitted under the lock, so concurrent sends cannot both slip through.
                    self._admitted.append((time.monotonic(), key))
        return None

    def _flood_check(self, chat: int | str) -> Response | None:
        """429 when one more accepted send would break a configured limit (lock held)."""
        per_second, per_chat, per_group = self._limits or (None, None, None)
        now = time.monotonic()
        to_chat = [t for t, c in self._admitted if c == chat]
        checks: list[tuple[float | None, float, list[float]]] = [
            (per_second, 1.0, [t for t, _ in self._admitted]),
            (per_chat, 1.0, to_chat),
        ]
        if isinstance(chat, int) and chat < 0:
            checks.append((per_group, 60.0, to_chat))
        for limit, window, times in checks:
            if limit is None:
                continue
            recent = sorted(t for t in times if now - t < window)
            if len(recent) >= limit:
                wait = max(1, math.ceil(recent[0] + window - now))
                return _error(429, f"Too Many Requests: retry after {wait}", {"retry_after": wait})
        return None

    def _next_message_id(self, chat_id: int | str) -> int:
        with self._lock:
            counter = self._message_ids.setdefault(_chat_key(chat_id), itertools.count(1))
            return next(counter)

    def _chat(self, chat_id: Any) -> dict[str, Any]:
        key = _chat_key(chat_id)
        with self._lock:
            if key in self.chats:
                return dict(self.chats[key])
        if isinstance(key, int) and key > 0:
            return {"id": key, "type": "private", "first_name": f"User{key}"}
        if isinstance(key, int) and str(key).startswith("-100"):
            return {"id": key, "type": "supergroup", "title": f"Group {key}"}
        if isinstance(key, int):
            return {"id": key, "type": "group", "title": f"Group {key}"}
        return {"id": -1000000000001, "type": "channel", "title": str(key), "username": key}

    def _new_message(self, params: dict[str, Any], **content: Any) -> dict[str, Any]:
        chat = self._chat(params["chat_id"])
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat["id"]),
            "from": self.bot_user,
            "chat": chat,
            "date": int(utcnow().timestamp()),
            **content,
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        with self._lock:
            self.messages[(_chat_key(chat["id"]), message["message_id"])] = message
        return message

    def _dispatch(self, method: str, params: dict[str, Any], req: Request) -> Response:
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return _ok(True)
        try:
            return handler(params, req)  # type: ignore[no-any-return]
        except KeyError as exc:
            return _error(400, f"Bad Request: {exc.args[0]} is required")

    # -- methods ----------------------------------------------------------------------------
    def _m_getme(self, params: dict[str, Any], req: Request) -> Response:
        return _ok(self.bot_user)

    def _m_getchat(self, params: dict[str, Any], req: Request) -> Response:
        return _ok(
            {**self._chat(params["chat_id"]), "accent_color_id": 0, "max_reaction_count": 11}
        )

    def _m_sendmessage(self, params: dict[str, Any], req: Request) -> Response:
        text = params["text"]
        if not str(text).strip():
            return _error(400, "Bad Request: message text is empty")
        if len(str(text)) > 4096:
            return _error(400, "Bad Request: message is too long")
        content: dict[str, Any] = {"text": str(text)}
        if params.get("entities"):
            content["entities"] = params["entities"]
        return _ok(self._new_message(params, **content))

    def _m_sendphoto(self, params: dict[str, Any], req: Request) -> Response:
        upload = req.files.get("photo")
        if upload is None and not params.get("photo"):
            return _error(400, "Bad Request: there is no photo in the request")
        size = len(upload.data) if upload else 0
        unique = uuid.uuid4().hex[:16]
        sizes = [
            {
                "file_id": f"AgAC{unique}{i}",
                "file_unique_id": f"AQAD{unique}{i}",
                "width": w,
                "height": h,
                "file_size": max(1, size // (3 - i)),
            }
            for i, (w, h) in enumerate(((90, 60), (320, 213), (800, 533)))
        ]
        content: dict[str, Any] = {"photo": sizes}
        if params.get("caption"):
            content["caption"] = str(params["caption"])
        return _ok(self._new_message(params, **content))

    def _m_sendchataction(self, params: dict[str, Any], req: Request) -> Response:
        return _ok(True)

    def _m_setwebhook(self, params: dict[str, Any], req: Request) -> Response:
        url = str(params.get("url", ""))
        if url and not url.startswith("https://"):
            return _error(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        secret = params.get("secret_token")
        if secret is not None and (
            not 1 <= len(str(secret)) <= 256 or not set(str(secret)) <= _SECRET_CHARS
        ):
            return _error(400, "Bad Request: secret token contains unallowed characters")
        with self._lock:
            if not url:
                self.webhook = None
                return _ok(True, description="Webhook was deleted")
            self.webhook = {
                "url": url,
                "secret_token": secret,
                "allowed_updates": params.get("allowed_updates"),
                "max_connections": params.get("max_connections", 40),
                "drop_pending_updates": bool(params.get("drop_pending_updates")),
            }
            if params.get("drop_pending_updates"):
                self._updates.clear()
        return _ok(True, description="Webhook was set")

    def _m_deletewebhook(self, params: dict[str, Any], req: Request) -> Response:
        with self._lock:
            existed = self.webhook is not None
            self.webhook = None
            if params.get("drop_pending_updates"):
                self._updates.clear()
        return _ok(
            True, description="Webhook was deleted" if existed else "Webhook is already deleted"
        )

    def _m_getwebhookinfo(self, params: dict[str, Any], req: Request) -> Response:
        with self._lock:
            info: dict[str, Any] = {
                "url": self.webhook["url"] if self.webhook else "",
                "has_custom_certificate": False,
                "pending_update_count": len(self._updates),
            }
            if self.webhook:
                info["max_connections"] = self.webhook["max_connections"]
                if self.webhook["allowed_updates"]:
                    info["allowed_updates"] = self.webhook["allowed_updates"]
        return _ok(info)

    @staticmethod
    def _commands_key(params: dict[str, Any]) -> str:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps([scope, params.get("language_code") or ""], sort_keys=True)

    def _m_setmycommands(self, params: dict[str, Any], req: Request) -> Response:
        commands = params["commands"]
        if not isinstance(commands, list) or len(commands) > 100:
            return _error(400, "Bad Request: can't parse commands JSON object")
        with self._lock:
            self.commands[self._commands_key(params)] = commands
        return _ok(True)

    def _m_getmycommands(self, params: dict[str, Any], req: Request) -> Response:
        with self._lock:
            return _ok(self.commands.get(self._commands_key(params), []))

    def _m_deletemycommands(self, params: dict[str, Any], req: Request) -> Response:
        with self._lock:
            self.commands.pop(self._commands_key(params), None)
        return _ok(True)

    def _m_answercallbackquery(self, params: dict[str, Any], req: Request) -> Response:
        params["callback_query_id"]  # noqa: B018 - required, KeyError answers 400
        return _ok(True)

    def _edit(self, params: dict[str, Any], **changes: Any) -> Response:
        if params.get("inline_message_id"):
            return _ok(True)
        key = (_chat_key(params["chat_id"]), int(params["message_id"]))
        with self._lock:
            message = self.messages.get(key)
            if message is None:
                return _error(400, "Bad Request: message to edit not found")
            updated = {**message, **{k: v for k, v in changes.items() if v is not None}}
            if "reply_markup" in changes and changes["reply_markup"] is None:
                updated.pop("reply_markup", None)
            if updated == message:
                return _error(
                    400,
                    "Bad Request: message is not modified: specified new message content and "
                    "reply markup are exactly the same as a current content and reply markup "
                    "of the message",
                )
            updated["edit_date"] = int(utcnow().timestamp())
            self.messages[key] = updated
        return _ok(updated)

    def _m_editmessagetext(self, params: dict[str, Any], req: Request) -> Response:
        return self._edit(params, text=str(params["text"]), reply_markup=params.get("reply_markup"))

    def _m_editmessagereplymarkup(self, params: dict[str, Any], req: Request) -> Response:
        return self._edit(params, reply_markup=params.get("reply_markup"))

    def _m_getupdates(self, params: dict[str, Any], req: Request) -> Response:
        offset = int(params.get("offset") or 0)
        limit = max(1, min(100, int(params.get("limit") or 100)))
        timeout = min(float(params.get("timeout") or 0), self.max_long_poll)
        deadline = time.monotonic() + timeout
        with self._changed:
            if self.webhook is not None:
                return _error(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
            if offset > 0:  # confirms every update before it
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            while True:
                if offset < 0:
                    ready = self._updates[offset:]
                else:
                    ready = [u for u in self._updates if u["update_id"] >= offset]
                remaining = deadline - time.monotonic()
                if ready or remaining <= 0 or self._closing:
                    return _ok(ready[:limit])
                self._changed.wait(remaining)


def _ok(result: Any, description: str | None = None) -> Response:
    body: dict[str, Any] = {"ok": True, "result": result}
    if description:
        body["description"] = description
    return Response(200, body)


def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return Response(status, body)
