"""Signed, expiring, single-purpose links (leader sign-off, matrix form, coach log-in).

A link carries its purpose, subject and a nonce, signed with the secret key
(itsdangerous). Expiry is checked on use, against dash.timeutil's clock like every other
deadline; one-time links record their nonce in `used_links` so they cannot be replayed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dash.models import UsedLink
from dash.timeutil import utcnow


class BadLink(Exception):
    """The link is forged, for something else, expired or already used."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "invalid", "expired", "used"


@dataclass(frozen=True)
class LinkClaim:
    purpose: str
    subject: int
    nonce: str
    extra: dict[str, Any]


class _ClockSigner(TimestampSigner):
    """Stamps and ages links by utcnow(), so the demo's and the tests' clocks govern expiry."""

    def get_timestamp(self) -> int:
        return int(utcnow().timestamp())


def _serializer(secret: str, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=f"dash-link:{purpose}", signer=_ClockSigner)


def make_token(secret: str, purpose: str, subject: int, **extra: Any) -> str:
    data = {"s": subject, "n": secrets.token_urlsafe(12), "x": extra}
    return _serializer(secret, purpose).dumps(data)


def read_token(secret: str, purpose: str, token: str, max_age_seconds: int) -> LinkClaim:
    try:
        data = _serializer(secret, purpose).loads(token, max_age=max_age_seconds)
    except SignatureExpired as exc:
        raise BadLink("expired") from exc
    except BadSignature as exc:
        raise BadLink("invalid") from exc
    if not isinstance(data, dict) or "s" not in data or "n" not in data:
        raise BadLink("invalid")
    return LinkClaim(purpose, int(data["s"]), str(data["n"]), dict(data.get("x") or {}))


def is_used(session: Session, claim: LinkClaim) -> bool:
    return session.get(UsedLink, claim.nonce) is not None


def mark_used(session: Session, claim: LinkClaim) -> None:
    """Record the nonce; a second use of the same link raises BadLink('used')."""
    try:
        with session.begin_nested():
            session.add(UsedLink(nonce=claim.nonce, purpose=claim.purpose))
    except IntegrityError as exc:
        raise BadLink("used") from exc


# Where each kind of link lands in the web app (dash.web routes these paths).
PATHS = {
    "login": "/login/link/{token}",
    "signoff": "/signoff/{token}",
    "matrix": "/matrix/{token}",
    "board": "/board/{token}",
}


def link_url(public_url: str, secret: str, purpose: str, subject: int, **extra: Any) -> str:
    """The full URL of a new signed link for `purpose` about `subject`."""
    token = make_token(secret, purpose, subject, **extra)
    return public_url.rstrip("/") + PATHS[purpose].format(token=token)


def local_base_url(host: str, port: int) -> str:
    """The base URL of a server listening on `host`:`port`, as a browser on this machine
    reaches it (a wildcard address becomes the loopback one)."""
    if host in ("", "0.0.0.0"):  # noqa: S104 - compared, not bound
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    return f"http://{host}:{port}"
