"""Reply parsers: what a nurse typed on a phone, turned into something the engine can act on.

Pure functions, no database: each takes text (and sometimes today's date) and returns a small
value or None. They never raise on any input (tests/engine/test_parsing.py checks that with
hypothesis). They are forgiving about case, spaces, accents and punctuation, and strict about
meaning: anything that is not clearly a count is never turned into one.

The words recognised here (weekday names, "yesterday", "de") are input vocabulary, not text we
show; everything the bot says is in dash/templates/messages.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

from email_validator import EmailNotValidError, validate_email

from dash.codes import normalise_code

#: Largest count accepted in a daily answer; a unit counts patients or doses, not thousands.
MAX_COUNT = 9999

#: Whole-message keywords that opt a person out (Twilio's list, plus Spanish).
STOP_WORDS = frozenset(
    {
        "stop",
        "stopall",
        "unsubscribe",
        "cancel",
        "end",
        "quit",
        "revoke",
        "optout",
        "alto",
        "parar",
        "baja",
    }
)
#: Whole-message keywords that opt a person back in. YES is not one: here it answers sign-offs.
START_WORDS = frozenset({"start", "unstop", "subscribe", "empezar", "reanudar"})

_SIMPLE_COMMANDS = {
    "plan": "plan",
    "planear": "plan",
    "pdsa": "plan",
    "chart": "chart",
    "grafico": "chart",
    "grafica": "chart",
    "help": "help",
    "ayuda": "help",
    "?": "help",
    "revise": "revise",
    "revisar": "revise",
    "skip": "skip",
    "omitir": "skip",
    "saltar": "skip",
}
_JOIN_WORDS = ("join", "unirme", "unir", "unirse")
_LANG_WORDS = ("lang", "language", "idioma", "lengua")
_SHARE_WORDS = ("share", "compartir")
_ON_WORDS = frozenset({"on", "yes", "si", "1", "true"})
_OFF_WORDS = frozenset({"off", "no", "0", "false"})

YES_WORDS = frozenset({"yes", "y", "si", "approve", "approved", "aprobar", "aprobado", "ok"})
NO_WORDS = frozenset({"no", "n", "decline", "declined", "rechazar", "rechazado"})

ACT_WORDS = {
    "adopt": "adopt",
    "adoptar": "adopt",
    "adapt": "adapt",
    "adaptar": "adapt",
    "abandon": "abandon",
    "abandonar": "abandon",
    "1": "adopt",
    "2": "adapt",
    "3": "abandon",
}

_NUMBER_WORDS = frozenset(
    """zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen
    fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty
    ninety hundred none cero uno una dos tres cuatro cinco seis siete ocho nueve diez once doce
    trece catorce quince dieciseis diecisiete dieciocho diecinueve veinte treinta cuarenta
    cincuenta sesenta setenta ochenta noventa cien ciento""".split()  # noqa: SIM905
)

WEEKDAYS = {
    "mon": 0, "monday": 0, "lun": 0, "lunes": 0,
    "tue": 1, "tues": 1, "tuesday": 1, "mar": 1, "martes": 1,
    "wed": 2, "wednesday": 2, "mie": 2, "miercoles": 2,
    "thu": 3, "thur": 3, "thurs": 3, "thursday": 3, "jue": 3, "jueves": 3,
    "fri": 4, "friday": 4, "vie": 4, "viernes": 4,
    "sat": 5, "saturday": 5, "sab": 5, "sabado": 5,
    "sun": 6, "sunday": 6, "dom": 6, "domingo": 6,
}  # fmt: skip
MONTHS = {
    "jan": 1, "january": 1, "ene": 1, "enero": 1,
    "feb": 2, "february": 2, "febrero": 2,
    "march": 3, "marzo": 3,
    "apr": 4, "april": 4, "abr": 4, "abril": 4,
    "may": 5, "mayo": 5,
    "jun": 6, "june": 6, "junio": 6,
    "jul": 7, "july": 7, "julio": 7,
    "aug": 8, "august": 8, "ago": 8, "agosto": 8,
    "sep": 9, "sept": 9, "september": 9, "septiembre": 9, "setiembre": 9,
    "oct": 10, "october": 10, "octubre": 10,
    "nov": 11, "november": 11, "noviembre": 11,
    "dec": 12, "december": 12, "dic": 12, "diciembre": 12,
}  # fmt: skip
# "mar" is Tuesday in Spanish; March must be written "march"/"marzo" (as a month it is rare here).
_RELATIVE_DAYS = {"today": 0, "hoy": 0, "yesterday": 1, "ayer": 1, "anteayer": 2}


def fold(text: str) -> str:
    """Lower case, accents removed, whitespace collapsed: 'Miércoles  7 DE 9' -> 'miercoles 7 de 9'."""
    text = text or ""
    if not text.isascii():  # plain ASCII has no accents to remove (every message is folded)
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(text.lower().split())


def _bare(text: str) -> str:
    """Folded text without surrounding punctuation: 'Stop!' -> 'stop'."""
    return fold(text).strip(" .!¡¿?,;:'\"")


# ---------------------------------------------------------------------------------------------
# Commands


@dataclass(frozen=True)
class Command:
    """A keyword message. `name` is one of: join, plan, chart, help, stop, start, lang, yes,
    no, revise, skip, share. `arg` is what followed the keyword (a code, a language, a comment)."""

    name: str
    arg: str = ""


def parse_command(text: str) -> Command | None:
    """The keyword a whole message is, or None when it is not one."""
    folded = fold(text)
    if not folded:
        return None
    bare = _bare(text)
    if bare in STOP_WORDS:
        return Command("stop")
    if bare in START_WORDS:
        return Command("start")
    if folded == "?":
        return Command("help")
    if bare in _SIMPLE_COMMANDS:
        return Command(_SIMPLE_COMMANDS[bare])
    head, _, rest = folded.partition(" ")
    head = head.strip(".!,:;")
    rest = rest.strip()
    original_rest = " ".join((text or "").split()[1:]).strip()
    if head in _JOIN_WORDS:
        code = normalise_code(rest)
        return Command("join", code) if code else Command("join")
    if head in _LANG_WORDS and rest:
        return Command("lang", rest.split()[0].strip(".!,"))
    if head in _SHARE_WORDS and rest:
        word = rest.split()[0].strip(".!,")
        if word in _ON_WORDS:
            return Command("share", "on")
        if word in _OFF_WORDS:
            return Command("share", "off")
    if head in YES_WORDS and head not in {"y", "n", "ok"}:
        return Command("yes", original_rest.lstrip(" ,.:-–"))
    if head in {"no", "decline", "rechazar"}:
        return Command("no", original_rest.lstrip(" ,.:-–"))
    if bare in {"y", "ok"}:
        return Command("yes")
    if bare == "n":
        return Command("no")
    return None


def parse_yes_no(text: str) -> tuple[str, str] | None:
    """('yes' | 'no', the comment after it) for a sign-off answer, else None."""
    command = parse_command(text)
    if command is None or command.name not in ("yes", "no"):
        return None
    return command.name, command.arg


# ---------------------------------------------------------------------------------------------
# Daily counts


@dataclass(frozen=True)
class Fraction:
    """A well-formed daily answer: N of D, for an optional named day and measure word."""

    numerator: int
    denominator: int
    day: date | None = None
    measure: str | None = None


@dataclass(frozen=True)
class BadFraction:
    """Something meant as a daily answer that cannot be recorded; `reason` names the problem:
    words, negative, over, zero_denominator, decimal, too_big, single, percent, future_day."""

    reason: str
    numerator: int | None = None
    denominator: int | None = None


_SEP = r"(?:/|\\|out\s+of|of|de|sobre|en)"
_NUM = r"[+-]?\d+(?:[.,]\d+)?"
_FRACTION_RE = re.compile(rf"^(?P<prefix>.*?)\s*(?P<n>{_NUM})\s*{_SEP}\s*(?P<d>{_NUM})\s*$")
_WORD_OR_NUM = r"(?:[+-]?\d+|[a-z]+)"
_WORDS_RE = re.compile(
    rf"^(?P<prefix>.*?)\s*(?P<n>{_WORD_OR_NUM})\s+(?:out\s+of|of|de|sobre)\s+(?P<d>{_WORD_OR_NUM})\s*$"
    rf"|^(?P<prefix2>.*?)\s*(?P<n2>{_WORD_OR_NUM})\s*/\s*(?P<d2>{_WORD_OR_NUM})\s*$"
)
_SINGLE_RE = re.compile(r"^[+-]?\d+$")
_PERCENT_RE = re.compile(r"^(?P<prefix>.*?)\s*\d+(?:[.,]\d+)?\s*%$")
_ISO_DAY_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_PREFIX_TOKEN_RE = re.compile(r"[a-z0-9][a-z0-9\-_]*")
_NUMBERED_RE = re.compile(r"^(?:#\s*(?P<h>\d{1,2})(?:\s*[:.)=-])?|(?P<n>\d{1,2})\s*[:)=])")


def _clean(text: str) -> str:
    """Folded, with emoji and other pictographs dropped: '👍 7/9' and '7/9 ✅' are counts."""
    folded = fold(text)
    if not folded.isascii():
        folded = " ".join(
            "".join(ch for ch in folded if unicodedata.category(ch) not in _PICTOGRAPHS).split()
        )
    return folded.rstrip(" .!")


#: Unicode categories of emoji, symbols and their joiners/selectors.
_PICTOGRAPHS = frozenset({"So", "Sk", "Cf", "Co", "Cs", "Me"})


def parse_fraction(text: str, today: date) -> Fraction | BadFraction | None:
    """A daily answer in `text`, a BadFraction when it is meant as one but is wrong, or None.

    Accepted: '7/9', '7 / 9', '7 of 9', '7 out of 9', '7 de 9', with an optional day before
    it ('mon 7/9', 'yesterday 7/9', '3 dec 7/9', 'ayer 7 de 9') and/or one measure word
    ('lactate 7/9'). `today` is the unit's local date, for resolving weekday names.
    None means "not a count at all" (free text for the coach).
    """
    clean = _clean(text)
    if not clean or len(clean) > 80:
        return None
    match = _FRACTION_RE.match(clean)
    if match:
        prefix = _parse_prefix(match.group("prefix"), today)
        if prefix is None:
            return None
        day, measure, future = prefix
        n_text, d_text = match.group("n"), match.group("d")
        if any(ch in n_text + d_text for ch in ".,"):
            return BadFraction("decimal")
        n, d = int(n_text), int(d_text)
        if n < 0 or d < 0:
            return BadFraction("negative", n, d)
        if len(n_text.lstrip("+")) > 5 or len(d_text.lstrip("+")) > 5 or d > MAX_COUNT:
            return BadFraction("too_big")
        if d == 0 and n > 0:
            return BadFraction("zero_denominator", n, d)
        if n > d:
            return BadFraction("over", n, d)
        if future:
            return BadFraction("future_day", n, d)
        return Fraction(n, d, day, measure)
    words = _WORDS_RE.match(clean)
    if words:
        n_word = words.group("n") or words.group("n2")
        d_word = words.group("d") or words.group("d2")
        prefix_text = words.group("prefix") if words.group("n") else words.group("prefix2")
        is_word = [w for w in (n_word, d_word) if not _SINGLE_RE.match(w)]
        if (
            is_word
            and all(w in _NUMBER_WORDS for w in is_word)
            and _parse_prefix(prefix_text or "", today) is not None
        ):
            return BadFraction("words")
    if _SINGLE_RE.match(clean):
        return BadFraction("negative" if clean.startswith("-") else "single")
    if clean in _NUMBER_WORDS:
        return BadFraction("words")
    percent = _PERCENT_RE.match(clean)
    if percent and _parse_prefix(percent.group("prefix"), today) is not None:
        return BadFraction("percent")
    return None


#: What joins two counts in one message: '3/4 and 5/8', '3/4, 5/8', '3/4 y 5/8', one a line.
_JOINERS_RE = re.compile(r"\s*(?:[,;&+]|\band\b|\by\b|\be\b)\s*")
#: A count followed by more text: the point where a second count may start ('3/4 5/8').
_AFTER_COUNT_RE = re.compile(r"(\d\s*/\s*\d+)\s+(?=\S)")


def parse_counts(text: str, today: date) -> list[Fraction | BadFraction] | None:
    """Two or more counts in one message ('3/4 and 5/8', '1: 3/4 2: 5/8'), each parsed as
    `parse_fraction` would; None unless every part is one (then it is not several counts)."""
    raw = " ".join((text or "").replace("\n", " ; ").split())
    folded = fold(raw)
    if len(raw) > 160 or raw.count("/") + folded.count(" de ") + folded.count(" of ") < 2:
        return None
    raw = _AFTER_COUNT_RE.sub(r"\1 ; ", raw)
    parts = [p for p in _JOINERS_RE.split(raw) if p and p.strip(" .!")]
    if len(parts) < 2:
        return None
    parsed = [parse_fraction(p, today) for p in parts]
    if any(p is None for p in parsed) or not any(isinstance(p, Fraction) for p in parsed):
        return None
    return [p for p in parsed if p is not None]


_FILLER = frozenset({"for", "the", "on", "el", "de", "del", "para"})


def _parse_prefix(prefix: str, today: date) -> tuple[date | None, str | None, bool] | None:
    """(day, measure word, day is in the future) from what precedes a count, or None if the
    prefix is anything else (then the message is free text, not a count).

    The measure may be its number in the list, marked as such: '2: 7/9', '#2 7/9', '2) 7/9'."""
    numbered = _NUMBERED_RE.match(prefix.strip())
    if numbered:
        rest = _parse_prefix(prefix.strip()[numbered.end() :], today)
        if rest is None or rest[1] is not None:
            return None
        return rest[0], numbered.group("h") or numbered.group("n"), rest[2]
    tokens = [t.strip("-") for t in re.split(r"[\s:,;–=]+", prefix.strip())]
    tokens = [t for t in tokens if t and t not in _FILLER]
    day: date | None = None
    measure: str | None = None
    i = 0
    while i < len(tokens):
        token = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if day is None:
            two = _day_of_two(token, nxt, today) if nxt is not None else None
            if two is not None:
                day = two
                i += 2
                continue
            one = parse_day(token, today)
            if one is not None:
                day = one
                i += 1
                continue
        if measure is None and _PREFIX_TOKEN_RE.fullmatch(token) and not token.isdigit():
            measure = token
            i += 1
            continue
        return None
    return day, measure, day is not None and day > today


def _day_of_two(first: str, second: str, today: date) -> date | None:
    """'3 dec', 'dec 3' (and '3 de dic', whose 'de' the caller drops as filler)."""
    if first.isdigit() and second in MONTHS:
        return _month_day(MONTHS[second], int(first), today)
    if first in MONTHS and second.isdigit():
        return _month_day(MONTHS[first], int(second), today)
    return None


def _month_day(month: int, day: int, today: date) -> date | None:
    """That day of the month in this year, or last year when it would be months ahead."""
    try:
        candidate = date(today.year, month, day)
    except ValueError:
        return None
    if candidate > today + timedelta(days=31):
        try:
            candidate = date(today.year - 1, month, day)
        except ValueError:
            return None
    return candidate


def parse_day(token: str, today: date) -> date | None:
    """One word naming a day: a weekday (the latest one on or before today), 'yesterday',
    'today', 'ayer', 'hoy', or an ISO date."""
    word = fold(token).strip(" .,:")
    if word in _RELATIVE_DAYS:
        return today - timedelta(days=_RELATIVE_DAYS[word])
    if word in WEEKDAYS:
        back = (today.weekday() - WEEKDAYS[word]) % 7
        return today - timedelta(days=back)
    iso = _ISO_DAY_RE.match(word)
    if iso:
        try:
            return date(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
        except ValueError:
            return None
    return None


# ---------------------------------------------------------------------------------------------
# Answers to questions


def parse_score(text: str, callback_data: str | None, criterion: str) -> int | None:
    """A 1-5 score for `criterion`: a button ('score:importance:4') or a digit typed by SMS."""
    if callback_data:  # a button answers only the question it was attached to
        parts = callback_data.split(":")
        if len(parts) == 3 and parts[0] == "score" and parts[1] == criterion:
            value = parts[2]
            return int(value) if value in {"1", "2", "3", "4", "5"} else None
        return None
    bare = _bare(text)
    return int(bare) if bare in {"1", "2", "3", "4", "5"} else None


def parse_choice(text: str, callback_data: str | None, count: int) -> int | None:
    """A numbered choice 1..count (a button 'choice:N' or the digit), else None."""
    raw = text
    if callback_data:
        if not callback_data.startswith("choice:"):
            return None
        raw = callback_data.split(":", 1)[1]
    bare = _bare(raw).lstrip("#")
    if bare.isdigit() and len(bare) <= 3 and 1 <= int(bare) <= count:
        return int(bare)
    return None


def parse_act(text: str, callback_data: str | None) -> str | None:
    """adopt / adapt / abandon, from a button ('act:adopt'), a word or 1-3; else None."""
    if callback_data:
        value = callback_data.split(":", 1)[1] if callback_data.startswith("act:") else ""
        return value if value in ("adopt", "adapt", "abandon") else None
    bare = _bare(text)
    return ACT_WORDS.get(bare) or ACT_WORDS.get(bare.split(" ")[0] if bare else "")


def parse_language(text: str) -> str | None:
    """'es', 'ES', 'español', 'spanish' -> 'es'; 'en', 'english', 'inglés' -> 'en'; else None."""
    word = _bare(text)
    if word in ("es", "espanol", "spanish", "castellano"):
        return "es"
    if word in ("en", "english", "ingles"):
        return "en"
    return None


def parse_leader(text: str) -> tuple[str, str] | None:
    """How to reach the leader: ('me', ''), ('telegram', '@name'), ('email', the address
    normalised) or ('phone', raw digits).

    The phone is returned as typed; the caller normalises it (dash.phones) with the
    deployment's region and replies when it is not a valid number.
    """
    bare = _bare(text)
    if bare in ("me", "yo", "i am", "myself", "soy yo", "i am the leader", "it's me", "its me"):
        return "me", ""
    stripped = (text or "").strip()
    if re.fullmatch(r"@[A-Za-z][A-Za-z0-9_]{3,31}", stripped):
        return "telegram", stripped
    if "@" in stripped[1:]:
        try:  # syntax only: a chat reply must not wait on DNS
            address = validate_email(stripped, check_deliverability=False).normalized
        except EmailNotValidError:
            return None
        return "email", address.lower()  # as coach accounts store theirs (one person per address)
    digits = re.sub(r"[\s().\-]", "", stripped)
    if re.fullmatch(r"\+?\d{6,15}", digits):
        return "phone", stripped
    return None
