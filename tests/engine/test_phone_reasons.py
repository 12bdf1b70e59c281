"""Why a typed phone number is refused, and the example the bot shows (issue 18, section 1)."""

from __future__ import annotations

import pytest

from dash.phones import example_number, number_problem, to_e164
from dash.texts import render


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("+1 555 123 0009", "not_in_use"),  # the old example's format: fiction to the library
        ("+1 201 555 01", "too_short"),
        ("612 345", "too_short"),
        ("+1 201 555 0123 4567 89", "too_long"),
        ("+999 1234567", "unknown_country"),
        ("+44 20 7946 0958", "not_mobile"),  # a London landline cannot take a text
        ("+1 202 555 0123", None),
        ("+34 612 34 56 78", None),
        ("(202) 555-0123", None),  # the deployment's region fills in the country
    ],
)
def test_number_problem_names_the_reason(typed: str, reason: str | None) -> None:
    assert number_problem(typed, "US", mobile=True) == reason


def test_a_landline_is_a_number_where_no_mobile_is_needed() -> None:
    assert number_problem("+44 20 7946 0958", "US") is None


@pytest.mark.parametrize("region", ["US", "GB", "ES", "MX", "DE"])
def test_the_example_is_a_mobile_number_the_bot_accepts(region: str) -> None:
    example = example_number(region)
    assert number_problem(example, region, mobile=True) is None
    assert to_e164(example, region)


@pytest.mark.parametrize("lang", ["en", "es"])
def test_every_reason_has_words(lang: str) -> None:
    texts = {
        reason: render("phone_refused_reason", lang, reason=reason, number="+1 555")
        for reason in ("too_short", "too_long", "unknown_country", "not_in_use", "not_mobile")
    }
    assert len(set(texts.values())) == len(texts)
