"""Masking text that looks like a patient identifier before anyone else sees it.

Teams must not send patient identifiers, but someone will, from a phone, between
tasks. Everything a coach, another team or an export reads goes through
`mask_identifiers`; the engine calls `looks_identifying` to remind the sender once.
Both rest on one detection function, `find_identifiers`. The raw message is kept for
the record under the retention policy (docs/PRIVACY.md).

Detection works in two steps:

1. **Normalise** a copy of the text: NFKC (full-width and other compatibility forms
   become plain letters and digits) and drop invisible characters (Unicode category
   Cf such as zero-width spaces and joiners, the soft hyphen, and a few other
   default-ignorable fillers), so "MRN 123<ZWSP>4567" is read as "MRN 1234567".
   Each character of the copy remembers where it came from, so the mask lands on the
   original text and everything else is returned exactly as it was sent.
2. **Match** the named rules below on the copy.

The rules lean towards what teams legitimately send all day: measure answers
("7/9", "7 of 9", "7 de 9"), dates ("Tue 3 Dec", "ayer"), times, percentages,
"bed 4" without a name, doses, ward names, change-idea and PDSA numbers. What is masked:

- record numbers after a keyword ("MRN 1234567", "MRN 1 2 3 4 5 6 7", "NHC 123456"),
- any bare run of 7 or more digits (a record number far more often than a count),
- dates after a birth keyword ("DOB 3/4/1950", "born 04.03.50", "fecha de nacimiento ..."),
- phone numbers (9-15 digits in groups, or 7+ digits after "tel"/"phone"/"móvil"),
- e-mail addresses and SSN-shaped numbers ("123-45-6789"),
- a name after a patient cue ("patient", "pt", "paciente", "señor") or a room or bed
  number ("bed 4 Smith"): a word starting with a capital, in any case after that
  ("Smith", "SMITH"); a lowercase word there is prose ("patient refused"),
- a name after a courtesy title ("Mr", "Mrs", "Ms", "Sr", "Sra", "Srta") in any case
  ("mr jones", "MR JONES"), since a title is followed by a name.

Ordinary words ("Today", "Safety", "ICU", "Hoy", weekday and month names) are never
taken for a name after a patient cue, so "Patient Safety week" and "bed 4 Today" pass
through; after a title only function words and staff roles are ("Sr. enfermero").
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

MASK = "[removed]"

# -- step 1: normalisation -----------------------------------------------------------------------

_SOFT_HYPHEN = "\u00ad"
# Default-ignorable characters outside category Cf that also render as nothing: the combining
# grapheme joiner, Hangul fillers and variation selectors.
_IGNORABLE = "\u034f\u115f\u1160\u3164\uffa0\ufe00-\ufe0f\U000e0100-\U000e01ef"


@functools.cache
def _invisible_chars() -> re.Pattern[str]:
    """One character that shows as nothing, so it can hide inside a number or a keyword.

    Built from the running Python's Unicode tables on first use (a scan of about 0.1 s),
    so a newer Unicode version's format characters are included without a code change.
    """
    cf = [c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"]
    ranges: list[list[int]] = []
    for c in cf:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    members = "".join(re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "") for a, b in ranges)
    return re.compile(f"[{members}{_SOFT_HYPHEN}{_IGNORABLE}]")


def _invisible(ch: str) -> bool:
    return _invisible_chars().match(ch) is not None


@dataclass(frozen=True)
class _Normalised:
    """The text rules match on, and for each of its characters the span of the original
    it came from (None when the text needed no change)."""

    text: str
    spans: list[tuple[int, int]] | None

    def original(self, start: int, end: int) -> tuple[int, int]:
        if self.spans is None:
            return start, end
        return self.spans[start][0], self.spans[end - 1][1]


def normalise(text: str) -> str:
    """`text` as the rules read it: NFKC, without invisible characters."""
    return _normalise(text).text


def _normalise(text: str) -> _Normalised:
    # NFKC leaves ASCII alone and ASCII has no invisible characters: most messages stop here.
    if text.isascii() or (
        unicodedata.is_normalized("NFKC", text) and not _invisible_chars().search(text)
    ):
        return _Normalised(text, None)
    chars: list[str] = []
    spans: list[tuple[int, int]] = []
    i, n = 0, len(text)
    while i < n:
        if _invisible(text[i]):
            i += 1
            continue
        # A base character with its combining marks normalises as one piece ("e" + accent).
        j = i + 1
        while j < n and (unicodedata.category(text[j]).startswith("M") or _invisible(text[j])):
            j += 1
        piece = "".join(ch for ch in text[i:j] if not _invisible(ch))
        for ch in unicodedata.normalize("NFKC", piece):
            if not _invisible(ch):
                chars.append(ch)
                spans.append((i, j))
        i = j
    return _Normalised("".join(chars), spans)


# -- step 2: the rules ---------------------------------------------------------------------------

_UPPER = "A-ZÀ-ÖØ-Þ"
_LOWER = "a-zß-öø-ÿ"
# A word that may be a name, in any case: "Garcia", "GARCÍA-LÓPEZ", "O'Brien", "smith".
_WORD = rf"[{_UPPER}{_LOWER}](?:[{_UPPER}{_LOWER}]|['’][{_UPPER}{_LOWER}])[{_UPPER}{_LOWER}'’\-]*"

# Never a name after any cue: function words and staff roles ("Sr. enfermero hoy no vino").
_FUNCTION_WORDS = """
    the this that these those then there they we i it its our my he she you his her him
    and but so or if when all also not no none yes ok okay is was has had in on at to for
    with from of by as be been
    el la los las lo un una y pero si sí ni de del al con que se en es son ha fue está esta
    estaba tiene tenía su sus
    nurse nurses doctor doctors dr charge staff team coach lead leader manager
    enfermera enfermero enfermeras enfermeros médico medico médica medica supervisora
    supervisor jefa jefe equipo
"""
# Also never a name after a patient cue or a bed number: words that start sentences or name
# things ("Patient Safety week", "bed 4 Today", "pt ICU transfer", "PATIENT REFUSED").
_ORDINARY_WORDS = """
    then done today tonight tomorrow yesterday now morning afternoon evening night week day
    shift unit ward clinic care safety education experience satisfaction portal handout
    rounds huddle centered centred family falls identifiers identifier id room bed bay rm
    cama name names
    monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs
    fri sat sun january february march april may june july august september october
    november december jan feb mar apr jun jul aug sep sept oct nov dec
    hoy ayer mañana ahora este todo todos nuevo nueva unidad turno noche tarde semana día dia
    seguridad educación educacion habitación habitacion lunes martes miércoles miercoles
    jueves viernes sábado sabado domingo enero febrero marzo abril mayo junio julio agosto
    septiembre setiembre octubre noviembre diciembre ene abr ago dic
    pdsa plan do study act chart help stop start join
    refused declined fell missed received given got went came left said says did does
    needs needed wants wanted asked seen sedated drowsy stable asleep awake discharged
    admitted transferred
    recibió recibio rechazó rechazo cayó cayo dijo pidió pidio
    icu uci hdu ccu nicu picu pacu ed er or iv im po npo nbm dnr dnacpr sbar mrsa copd chf
    uti bp hr rr o2 spo2 ecg ekg ct mri pca ng ngt dvt pe gcs poss mar news news2 rass
    pain score scores scale
"""
_NOT_AFTER_TITLE = frozenset(_FUNCTION_WORDS.split())
_NOT_NAMES = _NOT_AFTER_TITLE | frozenset(_ORDINARY_WORDS.split())

# Titles are always followed by a name, in whatever case it is typed.
_TITLES = frozenset({"mr", "mrs", "ms", "sr", "sra", "srta"})

_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|ene(?:ro)?|febrero|"
    r"marzo|abr(?:il)?|mayo|junio|julio|ago(?:sto)?|sept?iembre|set(?:iembre)?|"
    r"octubre|noviembre|dic(?:iembre)?)\.?"
)
_NUMERIC_DATE = r"\d{1,4}[/.\-]\d{1,2}[/.\-]\d{2,4}(?!\d)|\d{1,2} \d{1,2} \d{4}(?!\d)"
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
    """A record number has 4+ digits; 6+ when written in pieces ("1 2 3 4 5 6", "12-345-67"),
    so "10-12" stays a range; failing that, its first piece alone ("MRN 1234 5/8")."""
    number = m.group("id")
    if _digits(number) >= 6:
        return m.start(), m.end("id")
    first = re.match(r"[A-Za-z]{0,3}\d[\d\-]*", number)
    assert first is not None  # the id always starts so
    piece = first.group(0).rstrip("-")
    needed = 6 if "-" in piece else 4
    return (m.start(), m.start("id") + len(piece)) if _digits(piece) >= needed else None


def _phone(m: re.Match[str]) -> tuple[int, int] | None:
    digits = _digits(m.group(0))
    return m.span() if 9 <= digits <= 15 else None


def _keyword_phone(m: re.Match[str]) -> tuple[int, int] | None:
    return m.span() if 7 <= _digits(m.group("number")) <= 15 else None


def _is_name(word: str | None, stop: frozenset[str]) -> bool:
    return bool(word) and word.lower().strip("'’-") not in stop  # type: ignore[union-attr]


def _capitalised(word: str | None) -> bool:
    return bool(word) and word[0].isupper()  # type: ignore[index]


def _cued_name(m: re.Match[str]) -> tuple[int, int] | None:
    """The cue and one or two name words after it (see the module docstring for which)."""
    n1, n2 = m.group("n1"), m.group("n2")
    if m.group("cue").lower() in _TITLES:
        if not _is_name(n1, _NOT_AFTER_TITLE):
            return None
        # "mr john smith": after a lowercase first name a lowercase second one is a name too.
        second = _is_name(n2, _NOT_NAMES) and (_capitalised(n2) or not _capitalised(n1))
    else:
        if not (_capitalised(n1) and _is_name(n1, _NOT_NAMES)):
            return None
        second = _capitalised(n2) and _is_name(n2, _NOT_NAMES)
    return m.start(), m.end("n2") if second else m.end("n1")


def _place_name(m: re.Match[str]) -> tuple[int, int] | None:
    n1 = m.group("n1")
    return (m.start(), m.end("n1")) if _capitalised(n1) and _is_name(n1, _NOT_NAMES) else None


# Name rules consume only their cue and look ahead for the words, so a rejected candidate
# ("mr and Mrs Smith") cannot swallow the cue of the next one.
_RULES = (
    _Rule(
        "record_number",
        re.compile(
            r"(?<![\w#])(?:"
            r"(?i:mrn|mr\s?#|nhc|n\.?h\.?c\.?|hc|h\.c\.|expediente|historia(?:\s+cl[ií]nica)?)"
            r"\s*(?i:no\.?|n[º°o]\.?|num\.?|number|n[úu]mero)?"
            r"|(?i:med(?:ical)?\s*)?(?i:rec(?:ord)?)\s*(?i:no\.?|num\.?|number|n[º°o]\.?|#)"
            r")\s*[:#]?\s*(?P<id>[A-Za-z]{0,3}\d(?:[ .\-]?\d)*)"
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
    _Rule("email", re.compile(r"(?<![\w.+\-])[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")),
    _Rule("ssn", re.compile(r"(?<![\w\-/.])\d{3}(?P<sep>[\- ])\d{2}(?P=sep)\d{4}(?![\w\-/]|[.,]\d)")),
    _Rule(
        "name",
        re.compile(
            r"(?<!\w)(?P<cue>(?i:patient|pt|pte|paciente|señor|señora|senor|senora|miss|don|"
            r"doña|mr|mrs|ms|sr|sra|srta))"
            r"(?=\.?(?:\s*[:\-–])?\s+"
            rf"(?P<n1>{_WORD})(?!\w)(?:\s+(?P<n2>{_WORD})(?!\w))?)"
        ),
        _cued_name,
    ),
    _Rule(
        "room_and_name",
        re.compile(
            r"(?<!\w)(?i:room|rm|bed|bay|cama|habitaci[óo]n|hab)"
            r"(?=\.?\s*#?\s*\d{1,4}[A-Za-z]?"
            r"(?:\s*[,/]?\s*(?i:bed|b|cama|c)\.?\s*#?\s*\d{1,3}[A-Za-z]?)?"
            rf"\s*[,:\-]?\s+(?P<n1>{_WORD})(?!\w))"
        ),
        _place_name,
    ),
    # Bare runs of 7+ digits: record numbers far more often than anything teams send.
    _Rule("long_number", re.compile(r"\d{7,}")),
)


def find_identifiers(text: str | None) -> list[Finding]:
    """Every stretch of `text` that looks like a patient identifier, in order.

    The one detection every surface and the privacy reminder rely on. Spans are in `text`
    itself (an invisible character inside an identifier is part of its span).
    """
    text = text or ""
    norm = _normalise(text)
    found: list[Finding] = []
    for rule in _RULES:
        for match in rule.pattern.finditer(norm.text):
            span = rule.check(match) if rule.check else match.span()
            if span is not None and span[1] > span[0]:
                start, end = norm.original(*span)
                found.append(Finding(rule.kind, start, end, text[start:end]))
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
