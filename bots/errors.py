"""The few decisions the delivery worker makes about a failed send.

The worker must not know any provider's exception tree; it only needs to know whether to
retry (and when), to stop messaging a person, to switch to a template, to fix an address,
to pause a whole channel, or to give up on one message. Each channel's package classifies
its provider's failures into a DeliveryError (bots/<channel>/errors.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "DEFAULT_RETRY_AFTER",
    "DeliveryError",
    "ErrorKind",
]

#: Seconds to wait after a 429 that does not say how long.
DEFAULT_RETRY_AFTER = 1.0


class ErrorKind(StrEnum):
    """What the delivery worker should do about a failed send."""

    OPT_OUT = "opt_out"
    """The person (or group) refused us: record an opt-out, never retry."""
    RETRY_AFTER = "retry_after"
    """Flood control: retry this message after ``retry_after`` seconds, slow the channel."""
    TRANSIENT = "transient"
    """Server error, timeout, network trouble: retry with backoff (bounded)."""
    WINDOW_CLOSED = "window_closed"
    """The provider's free-form window is closed: only an approved template may go now."""
    CHAT_MIGRATED = "chat_migrated"
    """The chat moved (a group became a supergroup): update the address to ``new_address``, retry."""
    CONFIGURATION = "configuration"
    """Our credentials or endpoint are wrong: pause the channel and alert; not the person's fault."""
    PERMANENT = "permanent"
    """This message can never be delivered as is (bad number, chat not found...): mark failed."""


@dataclass(frozen=True, slots=True)
class DeliveryError:
    """A classified provider failure.

    ``code`` is the provider's own code as text (an error number, or a short tag such as
    ``"403"``) so it can be stored and shown to a person next to ``detail``.
    """

    kind: ErrorKind
    detail: str
    code: str | None = None
    retry_after: float | None = None
    new_address: str | None = None

    @property
    def retryable(self) -> bool:
        """True when sending the same message again later may succeed."""
        return self.kind in (ErrorKind.RETRY_AFTER, ErrorKind.TRANSIENT, ErrorKind.CHAT_MIGRATED)
