"""Short human codes (cohort enrolment, team join): easy to type on a phone."""

from __future__ import annotations

import secrets

# No 0/O, 1/I/L: nobody has to guess which one they are reading.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def new_code(length: int = 6) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def normalise_code(text: str) -> str:
    """Forgive case, spaces and dashes in what people type."""
    return "".join(ch for ch in text.upper() if ch.isalnum())
