"""SMTP's answers as the delivery worker's DeliveryError.

A server that refuses a message says so with a reply code: 5xx is final for that message
(no such mailbox, rejected as spam), 4xx means "try again later" (greylisting, a full
queue). Our own credentials or sender address being refused is the deployment's problem,
not the recipient's, so it pauses the channel instead.
"""

from __future__ import annotations

import asyncio

import aiosmtplib

from bots.errors import DeliveryError, ErrorKind

__all__ = ["classify_smtp_error"]

#: Replies that mean our login or our sender is wrong (530 auth required, 535 bad login).
_CONFIGURATION_CODES = {530, 534, 535, 538}


def classify_smtp_error(exc: BaseException) -> DeliveryError:
    """Classify what aiosmtplib raised for one message."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        exc = exc.recipients[0]  # one recipient a message
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        code, detail = exc.code, f"{exc.code} {exc.message}".strip()
        if isinstance(exc, aiosmtplib.SMTPAuthenticationError) or code in _CONFIGURATION_CODES:
            return DeliveryError(ErrorKind.CONFIGURATION, detail, str(code))
        if isinstance(exc, aiosmtplib.SMTPSenderRefused) and 500 <= code < 600:
            return DeliveryError(ErrorKind.CONFIGURATION, detail, str(code))
        if 400 <= code < 500:
            return DeliveryError(ErrorKind.TRANSIENT, detail, str(code))
        if 500 <= code < 600:
            return DeliveryError(ErrorKind.PERMANENT, detail, str(code))
        return DeliveryError(ErrorKind.TRANSIENT, detail, str(code))
    if isinstance(exc, aiosmtplib.SMTPException | ConnectionError | TimeoutError | OSError):
        return DeliveryError(ErrorKind.TRANSIENT, f"{type(exc).__name__}: {exc}", "network")
    if isinstance(exc, asyncio.TimeoutError):
        return DeliveryError(ErrorKind.TRANSIENT, "the SMTP server did not answer", "timeout")
    return DeliveryError(ErrorKind.PERMANENT, f"{type(exc).__name__}: {exc}", "unexpected")
