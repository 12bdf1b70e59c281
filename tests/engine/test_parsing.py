"""Reply parsers: forgiving about form, strict about meaning, never crashing."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dash.parsing import (
    BadFraction,
    Fraction,
    parse_act,
    parse_choice,
    parse_command,
    parse_counts,
    parse_fraction,
    parse_leader,
    parse_score,
)

TODAY = date(2024, 12, 5)  # a Thursday


@pytest.mark.parametrize(
    "text",
    ["7/9", "7 / 9", " 7/9 ", "7 of 9", "7 out of 9", "7 OUT OF 9", "7 de 9", "7/9.", "7\\9"],
)
def test_counts_in_every_accepted_form(text: str) -> None:
    assert parse_fraction(text, TODAY) == Fraction(7, 9)


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("mon 7/9", date(2024, 12, 2)),
        ("Monday: 7/9", date(2024, 12, 2)),
        ("yesterday 7/9", date(2024, 12, 4)),
        ("ayer 7 de 9", date(2024, 12, 4)),
        ("miércoles 7 de 9", date(2024, 12, 4)),
        ("3 dec 7/9", date(2024, 12, 3)),
        ("3 de dic 7 de 9", date(2024, 12, 3)),
        ("dec 3 - 7/9", date(2024, 12, 3)),
        ("thu 7/9", TODAY),
        ("2024-12-01 7/9", date(2024, 12, 1)),
    ],
)
def test_a_named_day_goes_with_the_count(text: str, day: date) -> None:
    assert parse_fraction(text, TODAY) == Fraction(7, 9, day=day)


def test_a_measure_word_goes_with_the_count() -> None:
    assert parse_fraction("lactate 3/4", TODAY) == Fraction(3, 4, measure="lactate")
    assert parse_fraction("mon lactate-measured 3/4", TODAY) == Fraction(
        3, 4, day=date(2024, 12, 2), measure="lactate-measured"
    )


def test_zero_of_zero_is_a_day_without_eligible_patients() -> None:
    assert parse_fraction("0/0", TODAY) == Fraction(0, 0)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("seven of nine", "words"),
        ("siete de nueve", "words"),
        ("seven/9", "words"),
        ("10/9", "over"),
        ("-3/9", "negative"),
        ("3/-9", "negative"),
        ("5/0", "zero_denominator"),
        ("7.5/9", "decimal"),
        ("7", "single"),
        ("78%", "percent"),
        ("123456/999999", "too_big"),
        ("2024-12-25 1/2", "future_day"),
    ],
)
def test_bad_counts_say_why(text: str, reason: str) -> None:
    result = parse_fraction(text, TODAY)
    assert isinstance(result, BadFraction)
    assert result.reason == reason


@pytest.mark.parametrize(
    "text",
    ["hello", "we had 3/4 huddles today", "STOP", "PLAN", "", "   ", "great day, 3 of us on shift"],
)
def test_text_that_is_not_a_count_is_left_alone(text: str) -> None:
    assert parse_fraction(text, TODAY) is None


@pytest.mark.parametrize(
    ("text", "name", "arg"),
    [
        ("STOP", "stop", ""),
        ("stop!", "stop", ""),
        ("Unsubscribe", "stop", ""),
        ("parar", "stop", ""),
        ("ALTO", "stop", ""),
        ("start", "start", ""),
        ("UNSTOP", "start", ""),
        ("join k7q2-mx", "join", "K7Q2MX"),
        ("JOIN", "join", ""),
        ("plan", "plan", ""),
        ("Chart", "chart", ""),
        ("gráfico", "chart", ""),
        ("help", "help", ""),
        ("ayuda", "help", ""),
        ("LANG es", "lang", "es"),
        ("idioma ES", "lang", "es"),
        ("YES", "yes", ""),
        ("sí, adelante", "yes", "adelante"),
        ("No - not this quarter", "no", "not this quarter"),
        ("share on", "share", "on"),
        ("compartir no", "share", "off"),
        ("REVISE", "revise", ""),
    ],
)
def test_keywords(text: str, name: str, arg: str) -> None:
    command = parse_command(text)
    assert command is not None
    assert (command.name, command.arg) == (name, arg)


def test_stop_inside_a_sentence_is_not_stop() -> None:
    command = parse_command("please don't stop the prompts")
    assert command is None or command.name != "stop"


def test_scores_choices_acts_and_leaders() -> None:
    assert parse_score("4", None, "importance") == 4
    assert parse_score("whatever", "score:importance:5", "importance") == 5
    assert parse_score("4", "score:influence:4", "importance") is None  # an old button
    assert parse_score("6", None, "importance") is None
    assert parse_choice("2", None, 3) == 2
    assert parse_choice("4", None, 3) is None
    assert parse_act("Adapt", None) == "adapt"
    assert parse_act("3", None) == "abandon"
    assert parse_act("x", "act:adopt") == "adopt"
    assert parse_act("maybe", None) is None
    assert parse_leader("me") == ("me", "")
    assert parse_leader("@ana_ruiz") == ("telegram", "@ana_ruiz")
    assert parse_leader("+1 (202) 555-0123") == ("phone", "+1 (202) 555-0123")
    assert parse_leader("ask Bob") is None


# -- properties -----------------------------------------------------------------------------
# Example counts are sized for a 2-core CI machine: 3000/2000/1000 took over 90 s there, nearly
# all of it Hypothesis generating inputs (the parser needs well under 1 ms a call). Each run
# draws fresh examples, so the search keeps widening from run to run.

_count_like = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda a, sep, b, pre: f"{pre}{a}{sep}{b}",
        st.integers(-(10**7), 10**7),
        st.sampled_from(["/", " / ", " of ", " de ", " out of ", "\\", "//", " ", "-"]),
        st.integers(-(10**7), 10**7),
        st.sampled_from(["", "mon ", "ayer ", "3 dec ", "x ", "lactate ", "2024-02-30 ", "-"]),
    ),
    st.from_regex(r"[a-z ]{0,8}[-+]?\d{1,8}([.,]\d)?\s*(/|of|de)\s*[-+]?\d{1,8}%?", fullmatch=True),
)


@settings(max_examples=500, deadline=None)
@given(_count_like, st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)))
def test_no_text_crashes_the_parser_or_yields_an_impossible_count(text: str, today: date) -> None:
    result = parse_fraction(text, today)
    assert result is None or isinstance(result, Fraction | BadFraction)
    if isinstance(result, Fraction):
        # Never a recorded value from bad input: only a true, bounded proportion gets through.
        assert 0 <= result.numerator <= result.denominator <= 9999
        assert result.numerator == 0 or result.denominator > 0
        assert result.day is None or result.day <= today
        # The numbers come from the text (any script's digits, e.g. Arabic-Indic, count).
        digits = "".join(str(int(ch)) if ch.isdecimal() else ch for ch in text)
        assert str(result.numerator) in digits and str(result.denominator) in digits


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80), st.one_of(st.none(), st.text(max_size=30)))
def test_no_text_crashes_any_other_parser(text: str, callback: str | None) -> None:
    parse_command(text)
    parse_leader(text)
    score = parse_score(text, callback, "importance")
    assert score is None or 1 <= score <= 5
    choice = parse_choice(text, callback, 4)
    assert choice is None or 1 <= choice <= 4
    assert parse_act(text, callback) in (None, "adopt", "adapt", "abandon")
    several = parse_counts(text, TODAY)
    assert several is None or (
        len(several) >= 2 and all(isinstance(p, Fraction | BadFraction) for p in several)
    )


@pytest.mark.parametrize(
    ("text", "measure"),
    [("2: 5/8", "2"), ("#2 5/8", "2"), ("2) 5/8", "2"), ("lactato 5 de 8", "lactato")],
)
def test_a_measure_number_or_name_goes_before_the_count(text: str, measure: str) -> None:
    assert parse_fraction(text, TODAY) == Fraction(5, 8, None, measure)


def test_emoji_around_a_count_are_ignored() -> None:
    assert parse_fraction("👍 7/9", TODAY) == Fraction(7, 9)
    assert parse_fraction("7/9 ✅", TODAY) == Fraction(7, 9)
    assert parse_fraction("👍", TODAY) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3/4 and 5/8", [Fraction(3, 4), Fraction(5, 8)]),
        ("3/4, 5/8", [Fraction(3, 4), Fraction(5, 8)]),
        ("3/4 5/8", [Fraction(3, 4), Fraction(5, 8)]),
        ("3 de 4 y 5 de 8", [Fraction(3, 4), Fraction(5, 8)]),
        ("1: 3/4 2: 5/8", [Fraction(3, 4, None, "1"), Fraction(5, 8, None, "2")]),
        ("3/4 and 9/8", [Fraction(3, 4), BadFraction("over", 9, 8)]),
    ],
)
def test_two_counts_in_one_message(text: str, expected: list) -> None:
    assert parse_fraction(text, TODAY) is None
    assert parse_counts(text, TODAY) == expected


@pytest.mark.parametrize("text", ["7/9", "3 dec, 7/9", "we had 3/4 huddles and 5/8", "hello"])
def test_one_count_or_none_is_not_several(text: str) -> None:
    assert parse_counts(text, TODAY) is None


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 9999), st.integers(0, 9999))
def test_every_true_count_is_read_back_exactly(n: int, d: int) -> None:
    result = parse_fraction(f"{n}/{d}", TODAY)
    if n <= d and (d > 0 or n == 0):
        assert result == Fraction(n, d)
    else:
        assert isinstance(result, BadFraction)
