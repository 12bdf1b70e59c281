"""Masking text that looks like a patient identifier before anyone else sees it.

Teams must not send patient identifiers, but someone will, from a phone, between
tasks. Everything a coach, another team or an export reads goes through
`mask_identifiers`; the engine calls `looks_identifying` to remind the sender once.
The raw message is kept for the record under the retention policy (docs/PRIVACY.md).

The rules lean towards what teams legitimately send all day: measure answers
("7/9", "7 of 9", "7 de 9"), dates ("Tue 3 Dec", "ayer"), times, percentages,
"bed 4" without a name, change-idea and PDSA numbers. What is masked:

- record numbers after a keyword ("MRN 1234567", "record #55512", "NHC 123456"),
- any bare run of 7 or more digits (a record number far more often than a count),
- dates after a birth keyword ("DOB 3/4/1950", "born 04.03.50", "fecha de nacimiento ..."),
- phone numbers (9-15 digits in groups, or 7+ digits after "tel"/"phone"/"móvil"),
- a capitalised name after "patient", "pt", "Mr", "Mrs", "Ms", "paciente", "Sr", "Sra" ...,
- a capitalised name after a room or bed number ("rm 12 bed 2 Garcia", "room 4B Jones").

A small list of ordinary capitalised words ("Today", "Safety", "Hoy", weekday and
month names) is never taken for a name, so "Patient Safety week" and "bed 4 Today"
pass through.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

MASK = "[removed]"

# A capitalised name: "Garcia", "García-López", "O'Brien", "McDonald", "Ñúñez".
_UPPER = "A-ZÀ-ÖØ-Þ"
_LOWER = "a-zß-öø-ÿ"
_NAME = rf"[{_UPPER}](?:[{_LOWER}]|['’][{_UPPER}])[{_UPPER}{_LOWER}'’\-]*"

# Capitalised words that start sentences or name things, never a patient.
_ORDINARY_WORDS = """
    the this that these those then there they we i it its our my he she you and but so or
    if when all also done ok okay yes no not none today tonight tomorrow yesterday now
    morning afternoon evening night week day shift team unit ward clinic staff nurse nurses
    doctor dr charge safety education experience care satisfaction portal handout rounds
    huddle centered centred family falls identifiers identifier id room bed bay rm cama
    monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs
    fri sat sun january february march april may june july august september october
    november december jan feb mar apr jun jul aug sep sept oct nov dec
    el la los las lo un una y pero si sí no ni hoy ayer mañana ahora esta este todo todos
    nuevo nueva equipo unidad turno noche tarde semana día dia enfermera enfermero
    seguridad educación educacion habitación habitacion lunes martes miércoles miercoles
    jueves viernes sábado sabado domingo enero febrero marzo abril mayo junio julio agosto
    septiembre setiembre octubre noviembre diciembre ene abr ago dic
    pdsa plan do study act chart help stop start join
"""
_NOT_NAMES = frozenset(_ORDINARY_WORDS.split())

_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|ene(?:ro)?|febrero|"
    r"marzo|abr(?:il)?|mayo|junio|julio|ago(?:sto)?|sept?iembre|set(?:iembre)?|"
    r"octubre|noviembre|dic(?:iembre)?)\.?"
)
_NUMERIC_DATE = r"\d{1,4}[/.\-]\d{1,2}[/.\-]\d{2,4}(?!\d)"
_WORD_DATE = (
    rf"\d{{1,2}}(?:st|nd|rd|th)?\s*(?:de\s+)?{_MONTHS}\s*,?\s*(?:de\s+)?\d{{2,4}}(?!\d)"
    rf"|{_MONTHS}\s*\d{{1,2}}(?:st|nd|rd|th)?\s*,?\s*\d{{2,4}}(?!\d)"
)


@dataclass(frozen=True)
class Finding:
    """One stretch of text that looks like an identifier, and which rule saw it."""

    kind: str
    start: int
    end: int
    text: str


_Check = Callable[[re.Match[str]], tuple[int, int] | None]


@dataclass(frozen=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    check: _Check | None = None  # refines or rejects a match; None = take it whole


def _digits(s: str) -> int:
    return sum(ch.isdigit() for ch in s)


def _record_number(m: re.Match[str]) -> tuple[int, int] | None:
    """A record number has 4+ digits, or 6+ when written with dashes (so "10-12" is a range)."""
    number = m.group("id")
    needed = 6 if "-" in number else 4
    return m.span() if _digits(number) >= needed else None


def _phone(m: re.Match[str]) -> tuple[int, int] | None:
    digits = _digits(m.group(0))
    return m.span() if 9 <= digits <= 15 else None


def _keyword_phone(m: re.Match[str]) -> tuple[int, int] | None:
    return m.span() if 7 <= _digits(m.group("number")) <= 15 else None


def _is_name(word: str | None) -> bool:
    return bool(word) and word.lower().strip("'’-") not in _NOT_NAMES  # type: ignore[union-attr]


def _titled_name(m: re.Match[str]) -> tuple[int, int] | None:
    """Mask the title and one or two name words, unless the first is an ordinary word."""
    if not _is_name(m.group("n1")):
        return None
    end = m.end("n2") if _is_name(m.group("n2")) else m.end("n1")
    return m.start(), end


def _place_name(m: re.Match[str]) -> tuple[int, int] | None:
    return m.span() if _is_name(m.group("n1")) else None


_RULES = (
    _Rule(
        "record_number",
        re.compile(
            r"(?<![\w#])(?:"
            r"(?i:mrn|mr\s?#|nhc|n\.?h\.?c\.?|hc|h\.c\.|expediente|historia(?:\s+cl[ií]nica)?)"
            r"\s*(?i:no\.?|n[º°o]\.?|num\.?|number|n[úu]mero)?"
            r"|(?i:med(?:ical)?\s*)?(?i:rec(?:ord)?)\s*(?i:no\.?|num\.?|number|n[º°o]\.?|#)"
            r")\s*[:#]?\s*(?P<id>[A-Za-z]{0,3}\d[\d\-]*\d)(?![\d\-]*\d)"
        ),
        _record_number,
    ),
    _Rule(
        "date_of_birth",
        re.compile(
            r"(?<!\w)(?:"
            r"(?i:d\s?\.?\s?o\s?\.?\s?b)(?![a-z])\.?|(?i:born|date\s+of\s+birth|birth\s*date|"
            r"birthday|fecha\s+de\s+nacimiento|f\.?\s?nac\.?|fnac|nac\.|nacid[oa])"
            r")\s*[:\-]?\s*(?i:on\s+|el\s+|:)?\s*"
            rf"(?i:{_NUMERIC_DATE}|{_WORD_DATE})"
        ),
    ),
    _Rule(
        "phone",
        re.compile(
            r"(?<!\w)(?i:phone|tel|tel[ée]fono|telefono|cell|mobile|m[óo]vil|celular|call|"
            r"llamar(?:\s+al)?)\.?\s*[:#]?\s*"
            r"(?P<number>\+?\d[\d\s().\-]*\d)(?!\d)"
        ),
        _keyword_phone,
    ),
    _Rule(
        "phone",
        re.compile(
            r"(?<![\w/:.,+])(?:"
            r"\+\d{1,3}(?:[\s.\-]?\(?\d{1,5}\)?){2,6}"  # +1 (555) 123-4567, +34 612 34 56 78
            r"|\(\d{2,5}\)\s?\d{2,5}(?:[\s.\-]\d{2,5}){1,3}"  # (555) 123-4567
            r"|\d{3,5}(?:[\s.\-]\d{3,5}){1,3}"  # 555-123-4567, 612 345 678
            r")(?![\w/:%]|[.,]\d)"
        ),
        _phone,
    ),
    _Rule(
        "name",
        re.compile(
            r"(?<!\w)(?i:patient|pt|pte|paciente|mr|mrs|ms|miss|sr|sra|srta|don|doña)\.?\s+"
            rf"(?P<n1>{_NAME})(?!\w)(?:\s+(?P<n2>{_NAME})(?!\w))?"
        ),
        _titled_name,
    ),
    _Rule(
        "room_and_name",
        re.compile(
            r"(?<!\w)(?i:room|rm|bed|bay|cama|habitaci[óo]n|hab)\.?\s*#?\s*\d{1,4}[A-Za-z]?"
            r"(?:\s*[,/]?\s*(?i:bed|b|cama|c)\.?\s*#?\s*\d{1,3}[A-Za-z]?)?"
            rf"\s*[,:\-]?\s+(?P<n1>{_NAME})(?!\w)"
        ),
        _place_name,
    ),
    # Bare runs of 7+ digits: record numbers far more often than anything teams send.
    _Rule("long_number", re.compile(r"\d{7,}")),
)


def find_identifiers(text: str | None) -> list[Finding]:
    """Every stretch of `text` that looks like a patient identifier, in order."""
    text = text or ""
    found: list[Finding] = []
    for rule in _RULES:
        for match in rule.pattern.finditer(text):
            span = rule.check(match) if rule.check else match.span()
            if span is not None and span[1] > span[0]:
                found.append(Finding(rule.kind, span[0], span[1], text[span[0] : span[1]]))
    return sorted(found, key=lambda f: (f.start, -f.end))


def _mask_once(text: str) -> str:
    spans: list[list[int]] = []
    for finding in find_identifiers(text):
        if spans and finding.start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], finding.end)
        else:
            spans.append([finding.start, finding.end])
    parts: list[str] = []
    last = 0
    for start, end in spans:
        parts.append(text[last:start])
        parts.append(MASK)
        last = end
    parts.append(text[last:])
    return "".join(parts)


def mask_identifiers(text: str | None) -> str:
    """`text` with anything that looks like a patient identifier replaced by [removed].

    Repeated until nothing changes, so masking twice gives the same text: a mask
    can open a new word boundary next to a number that was part of a longer word.
    Each pass turns at least one character into a mask token, so it ends.
    """
    masked = text or ""
    while True:
        again = _mask_once(masked)
        if again == masked:
            return masked
        masked = again


def looks_identifying(text: str | None) -> bool:
    """True when `text` holds something `mask_identifiers` would remove."""
    return bool(find_identifiers(text))
