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


#: Why a typed number was refused, as `number_problem` names it (the message templates
#: explain each): the library's own validation result, in words a person can act on.
TOO_SHORT = "too_short"
TOO_LONG = "too_long"
UNKNOWN_COUNTRY = "unknown_country"
NOT_IN_USE = "not_in_use"
NOT_MOBILE = "not_mobile"


def number_problem(raw: str, region: str = "US", *, mobile: bool = False) -> str | None:
    """Why `raw` cannot be used as a phone number (one of the names above), None when it can.

    `mobile`: the number must be able to take text messages, so a number the library knows
    to be a landline is refused (one it cannot tell, like most of North America, passes).
    """
    text = (raw or "").strip()
    if text.lower().startswith("whatsapp:"):
        text = text.split(":", 1)[1]
    if len(text) > 40:
        return TOO_LONG
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        kind = phonenumbers.NumberParseException
        return {
            kind.INVALID_COUNTRY_CODE: UNKNOWN_COUNTRY,
            kind.TOO_LONG: TOO_LONG,
        }.get(exc.error_type, TOO_SHORT)
    reason = phonenumbers.is_possible_number_with_reason(parsed)
    results = phonenumbers.ValidationResult
    if reason == results.INVALID_COUNTRY_CODE:
        return UNKNOWN_COUNTRY
    if reason in (results.TOO_SHORT, results.IS_POSSIBLE_LOCAL_ONLY):
        return TOO_SHORT
    if reason == results.TOO_LONG:
        return TOO_LONG
    if reason != results.IS_POSSIBLE:
        # INVALID_LENGTH: between two lengths the country uses; say whichever side it is.
        return TOO_SHORT if len(str(parsed.national_number)) < 10 else TOO_LONG
    if not phonenumbers.is_valid_number(parsed):
        return NOT_IN_USE
    if mobile and phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.FIXED_LINE:
        return NOT_MOBILE
    return None


def example_number(region: str = "US") -> str:
    """A mobile number the library itself accepts, for the examples in messages
    ('+1 201-555-0123' for the US): an example the bot would refuse teaches the wrong thing."""
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    if example is None:
        example = phonenumbers.example_number_for_type("US", phonenumbers.PhoneNumberType.MOBILE)
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
