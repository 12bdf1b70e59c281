"""How many SMS segments a text costs: GSM-7 when every character is in the GSM 03.38
alphabet, else UCS-2 (one typographic dash or emoji turns the whole message into UCS-2).

The limits are the standard ones carriers and Twilio bill by: 160 GSM-7 characters in one
segment, 153 per segment once split (the rest of each is the concatenation header); 70 UCS-2
code units in one, 67 per segment once split.
"""

from __future__ import annotations

import math

#: The GSM 03.38 basic character set (one septet each).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: The extension table: each costs two septets (an escape, then the character).
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


def is_gsm7(text: str) -> bool:
    """True when every character of `text` has a GSM-7 encoding."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENDED for ch in text)


def gsm7_length(text: str) -> int:
    """Septets `text` takes in GSM-7 (extension characters count two); assumes is_gsm7."""
    return sum(2 if ch in GSM7_EXTENDED else 1 for ch in text)


def ucs2_length(text: str) -> int:
    """UTF-16 code units `text` takes (a character outside the BMP, most emoji, counts two)."""
    return len(text.encode("utf-16-le")) // 2


def sms_segments(text: str) -> int:
    """The number of SMS segments `text` is sent as (0 for an empty text)."""
    if not text:
        return 0
    if is_gsm7(text):
        length, single, part = gsm7_length(text), GSM7_SINGLE, GSM7_PART
    else:
        length, single, part = ucs2_length(text), UCS2_SINGLE, UCS2_PART
    return 1 if length <= single else math.ceil(length / part)
