"""E-mail out: each outbox item as a plain-text and HTML message, sent through aiosmtplib.

One connection a message: a deployment sends a few e-mails a coach a day, so holding a
connection open (and noticing when the server drops it) would buy nothing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from bots.delivery import OutgoingItem, SendFailed
from bots.email.errors import classify_smtp_error
from bots.email.webhook import unsubscribe_url
from bots.media import attached_chart_url
from dash.context import AppContext
from dash.timeutil import utcnow

log = logging.getLogger("bots.email")

TEMPLATES = Path(__file__).parent / "templates"
#: Seconds for the whole conversation with the SMTP server (connect, login, send).
SMTP_TIMEOUT_SECONDS = 30.0
#: A Subject longer than this is cut (RFC 5322 recommends lines of at most 78 characters).
SUBJECT_CHARS = 78
_URL = re.compile(r"https?://[^\s<>\"']+")
_TRAILING = ".,;:!?)]}'\""


@dataclass(frozen=True)
class SmtpServer:
    """Where DASH_SMTP_URL points: smtp:// (STARTTLS when offered) or smtps:// (TLS)."""

    hostname: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool


def parse_smtp_url(url: str) -> SmtpServer:
    """smtp://user:pass@host:port or smtps://…; ValueError for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("DASH_SMTP_URL must look like smtp://user:pass@host:port or smtps://…")
    implicit = parts.scheme == "smtps"
    return SmtpServer(
        hostname=parts.hostname,
        port=parts.port or (465 if implicit else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        implicit_tls=implicit,
    )


def linkify(text: str) -> Markup:
    """`text` escaped for HTML, each http(s) URL in it a link (trailing punctuation kept out)."""
    pieces: list[str] = []
    last = 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        end = match.start() + len(url)
        pieces.append(escape(text[last : match.start()]))
        pieces.append(Markup('<a href="{0}">{0}</a>').format(url))
        last = end
    pieces.append(escape(text[last:]))
    return Markup("").join(pieces)


def paragraphs(text: str) -> list[Markup]:
    """Blank-line separated paragraphs, each linkified with its line breaks kept."""
    blocks = [block.strip("\n") for block in re.split(r"\n\s*\n", text) if block.strip()]
    return [Markup("<br>\n").join(linkify(line) for line in block.split("\n")) for block in blocks]


def subject_of(item: OutgoingItem) -> str:
    """The payload's subject, else the text's first line without its links (a link in a
    Subject is neither clickable nor readable), cut to fit a Subject line."""
    given = item.payload.get("subject")
    first = next((line.strip() for line in item.text.splitlines() if line.strip()), "")
    subject = str(given) if given else _URL.sub("", first).rstrip(" :-–—")
    subject = " ".join(subject.split())
    if len(subject) > SUBJECT_CHARS:
        subject = subject[: SUBJECT_CHARS - 1].rstrip() + "…"
    return subject


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        keep_trailing_newline=True,
    )
    env.filters["paragraphs"] = paragraphs
    return env


class EmailSender:
    """Sends outbox items to the address on the row, from DASH_MAIL_FROM."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.server = parse_smtp_url(ctx.settings.smtp_url or "")
        self.env = _environment()

    def build(self, item: OutgoingItem) -> EmailMessage:
        """The message for `item`: Subject, plain text, HTML and List-Unsubscribe."""
        settings = self.ctx.settings
        sender = settings.mail_from or ""
        domain = sender.rpartition("@")[2] or None
        unsubscribe = (
            unsubscribe_url(self.ctx, item.person_id, item.address)
            if item.person_id is not None
            else None
        )
        context = {
            "text": item.text,
            "unsubscribe_url": unsubscribe,
            "chart_url": attached_chart_url(self.ctx, item.payload, item.outbox_id),
            "language": item.language,
        }
        message = EmailMessage()
        message["Subject"] = subject_of(item)
        message["From"] = sender
        message["To"] = item.address
        message["Date"] = format_datetime(utcnow())
        message["Message-ID"] = make_msgid(domain=domain)
        if unsubscribe is not None:
            # RFC 8058: a mail client may unsubscribe with one POST, without opening a page.
            message["List-Unsubscribe"] = f"<{unsubscribe}>"
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message.set_content(self.env.get_template("message.txt.j2").render(context))
        message.add_alternative(
            self.env.get_template("message.html.j2").render(context), subtype="html"
        )
        return message

    async def send(self, item: OutgoingItem) -> str:
        """Send `item`; returns its Message-ID. Raises SendFailed with SMTP's answer."""
        message = self.build(item)
        server = self.server
        try:
            await aiosmtplib.send(
                message,
                hostname=server.hostname,
                port=server.port,
                username=server.username,
                password=server.password,
                use_tls=server.implicit_tls,
                start_tls=False if server.implicit_tls else None,  # None: when offered
                timeout=SMTP_TIMEOUT_SECONDS,
            )
        except Exception as exc:
            raise SendFailed(classify_smtp_error(exc)) from exc
        return str(message["Message-ID"])
