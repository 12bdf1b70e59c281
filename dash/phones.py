"""Phone numbers: everything stored is E.164, parsed with Google's libphonenumber."""

from __future__ import annotations

import phonenumbers


class BadPhoneNumber(ValueError):
    """Text that is not a valid phone number."""


def to_e164(raw: str, region: str = "US") -> str:
    """Normalise `raw` ('(555) 123-4567', '+44 20 7946 0958', 'whatsapp:+1…') to '+15551234567'."""
    text = (raw or "").strip()
    if text.lower().startswith("whatsapp:"):
        text = text.split(":", 1)[1]
    if not text or len(text) > 40:
        raise BadPhoneNumber(raw)
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise BadPhoneNumber(raw) from exc
    if not phonenumbers.is_possible_number(parsed) or not phonenumbers.is_valid_number(parsed):
        raise BadPhoneNumber(raw)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def looks_like_phone(text: str, region: str = "US") -> bool:
    try:
        to_e164(text, region)
    except BadPhoneNumber:
        return False
    return True


def from_provider(raw: str) -> str:
    """A sender address as Twilio gives it ('+1…' or 'whatsapp:+…'), kept exactly.

    The provider's address is authoritative: WhatsApp still reports some numbers in
    forms libphonenumber calls invalid (Mexico's old mobile '1'), and we must reply
    to exactly what it sent. Only the shape is checked.
    """
    text = (raw or "").strip()
    if text.lower().startswith("whatsapp:"):
        text = text.split(":", 1)[1]
    digits = text[1:]
    if not text.startswith("+") or not digits.isdigit() or not 6 <= len(digits) <= 15:
        raise BadPhoneNumber(raw)
    return text


def typed_contact(raw: str, region: str = "US") -> tuple[str, str]:
    """Where a contact typed into a form is reached: (channel, address). An e-mail address by
    e-mail; a phone number (E.164) by SMS, the channel every mobile has. Raises ValueError
    (BadPhoneNumber for a number) saying what is wrong."""
    from dash.models import Channel
    from dash.parsing import parse_leader
    from dash.reach import EMAIL

    text = (raw or "").strip()
    if "@" in text:
        parsed = parse_leader(text)
        if parsed is None or parsed[0] != "email":
            raise ValueError("that e-mail address is not valid")
        return EMAIL, parsed[1]
    return Channel.SMS.value, to_e164(text, region)
