"""Fakes at the network boundary: real HTTP servers on 127.0.0.1 that stand in for providers.

The real client libraries (python-telegram-bot, twilio) talk to these over sockets, so tests
exercise our code, the libraries and the wire format together; nothing of ours is mocked.

This module holds the shared HTTP plumbing (a threaded stdlib server with a call log) and the
pytest fixtures ``fake_telegram`` and ``fake_twilio``. Make the fixtures available everywhere
with ``pytest_plugins = ["tests.fakes"]`` in ``tests/conftest.py``, or import them into a
test module.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import pytest

__all__ = [
    "CHANNELS_DIR",
    "Call",
    "FakeHTTPServer",
    "Request",
    "Response",
    "UploadedFile",
    "fake_telegram",
    "fake_twilio",
    "load_fixture",
]

CHANNELS_DIR = Path(__file__).resolve().parent.parent / "channels"

T = TypeVar("T")


def load_fixture(name: str) -> dict[str, Any]:
    """A captured provider payload from ``tests/channels/<provider>/fixtures``, named
    ``<provider>_….json`` (``.json`` may be omitted)."""
    provider = name.split("_", 1)[0]
    path = CHANNELS_DIR / provider / "fixtures" / (name if name.endswith(".json") else f"{name}.json")
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class UploadedFile:
    """One multipart file part, bytes kept as sent."""

    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class Request:
    """An HTTP request as the fake saw it; ``form`` holds every value of repeated fields."""

    http_method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    form: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)
    json_body: Any = None


@dataclass
class Response:
    """What a fake handler answers."""

    status: int
    body: Any  # JSON-serialisable, or bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Call:
    """One recorded API call. ``at`` is ``time.monotonic()`` when it arrived."""

    method: str
    params: dict[str, Any]
    at: float
    request: Request
    files: dict[str, UploadedFile] = field(default_factory=dict)
    status: int | None = None
    response: Any = None

    @property
    def ok(self) -> bool:
        """True when the fake answered with a 2xx status."""
        return self.status is not None and 200 <= self.status < 300


def parse_body(req: Request) -> None:
    """Fill ``form``/``files``/``json_body`` from the body, by Content-Type, as servers do."""
    ctype = req.headers.get("content-type", "")
    main = ctype.split(";", 1)[0].strip().lower()
    if main == "application/json" and req.body:
        req.json_body = json.loads(req.body.decode("utf-8"))
    elif main == "application/x-www-form-urlencoded":
        req.form = parse_qs(req.body.decode("utf-8"), keep_blank_values=True)
    elif main == "multipart/form-data":
        head = f"Content-Type: {ctype}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + req.body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not name:
                continue
            data = part.get_payload(decode=True) or b""
            filename = part.get_filename()
            if filename is not None or part.get_content_type() not in ("text/plain",):
                req.files[str(name)] = UploadedFile(filename, part.get_content_type(), data)
            else:
                charset = part.get_content_charset() or "utf-8"
                req.form.setdefault(str(name), []).append(data.decode(charset))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real clients expect
    server: _Server
    timeout = 30  # idle keep-alive connections give up eventually

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: the call log is the record."""

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        split = urlsplit(self.path)
        req = Request(
            http_method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self._read_body(),
        )
        try:
            parse_body(req)
            resp = self.server.owner.handle(req)
        except Exception as exc:  # a bug in the fake must show up, not hang the client
            resp = Response(500, {"fake_error": f"{type(exc).__name__}: {exc}"})
        payload = resp.body if isinstance(resp.body, bytes) else json.dumps(resp.body).encode()
        self.send_response(resp.status)
        headers = {"Content-Type": "application/json", **resp.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        try:
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (PTB cancels its long poll on stop): nothing to answer.
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815 - stdlib naming


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # lingering keep-alive connections must not block stop()
    # socketserver listens with a backlog of 5; several workers opening their connections at
    # once overflowed it and were reset, which no real provider does.
    request_queue_size = 128
    owner: FakeHTTPServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that hang up; report anything else as usual."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class FakeHTTPServer:
    """A threaded HTTP server on 127.0.0.1 (free port) with a thread-safe call log.

    Subclasses implement ``handle(request) -> Response`` and call ``_record``.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._calls: list[Call] = []
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._closing = False

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> FakeHTTPServer:
        """Bind a free loopback port and serve in a daemon thread."""
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"{type(self).__name__}:{self.port}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and wake any waiting long poll."""
        with self._lock:
            self._closing = True
            self._changed.notify_all()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self: T) -> T:
        return self.start()  # type: ignore[attr-defined,no-any-return]

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port bound by ``start()``."""
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    # -- subclass API -----------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        raise NotImplementedError

    def _record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)
            self._changed.notify_all()

    def _finish(self, call: Call, resp: Response) -> Response:
        with self._lock:
            call.status = resp.status
            call.response = resp.body
            self._changed.notify_all()
        return resp

    # -- inspection -------------------------------------------------------------------------
    @property
    def calls(self) -> list[Call]:
        """A snapshot of every call so far, in arrival order."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[Call]:
        """Calls of one API method (case-insensitive)."""
        wanted = method.lower()
        return [c for c in self.calls if c.method.lower() == wanted]

    def reset_calls(self) -> None:
        """Forget the call log (state such as sent messages is kept)."""
        with self._lock:
            self._calls.clear()

    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:
        """Block until ``predicate()`` is truthy (re-checked on every call); return its value.

        Raises AssertionError with the call log after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                value = predicate()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    log = "\n".join(
                        f"  {c.method} {c.status} {c.params}" for c in self._calls[-20:]
                    )
                    raise AssertionError(f"condition not met within {timeout}s; last calls:\n{log}")
                self._changed.wait(min(remaining, 0.05))


def max_in_window(times: list[float], window: float) -> int:
    """The largest number of instants that fall in any half-open window of ``window`` seconds."""
    ordered = sorted(times)
    best = 0
    start = 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


# ------------------------------------------------------------------------------------------
# pytest fixtures (imports are local: the submodules import this module's plumbing)


@pytest.fixture
def fake_telegram() -> Iterator[Any]:
    """A running fake Telegram Bot API; use ``.base_url`` and ``.token`` with ``make_bot``."""
    from tests.fakes.telegram_api import FakeTelegram

    with FakeTelegram() as server:
        yield server


@pytest.fixture
def fake_twilio() -> Iterator[Any]:
    """A running fake Twilio REST API; use ``.api_base``, ``.account_sid``, ``.auth_token``."""
    from tests.fakes.twilio_api import FakeTwilio

    with FakeTwilio() as server:
        yield server
