"""SMS segment counting (dash.sms): what a text costs a nurse's phone and the budget."""

from __future__ import annotations

import pytest

from dash.sms import is_gsm7, sms_segments


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("", 0),
        ("Recorded 7/9 for today.", 1),
        ("a" * 160, 1),  # a full GSM-7 segment
        ("a" * 161, 2),  # split: 153 per part
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # extension characters take two septets each: 160
        ("€" * 81, 2),
        ("Hola, ¿cuántos pacientes?", 1),  # á is not GSM-7: UCS-2, still short
        ("x" * 69 + "–", 1),  # an en dash forces UCS-2: 70 units fit one segment
        ("x" * 70 + "–", 2),  # 71 units: split at 67
        ("x" * 134, 1),
        ("x" * 133 + "–", 2),
        ("x" * 134 + "–", 3),
        ("👍" * 35, 1),  # emoji are two UTF-16 units each
        ("👍" * 36, 2),
    ],
)
def test_segments(text: str, segments: int) -> None:
    assert sms_segments(text) == segments


def test_typographic_dashes_and_quotes_are_not_gsm7() -> None:
    assert is_gsm7("Reply 7/9 - or HELP. It's fine: [ok] {a} ~ ^ | \\ €")
    for ch in "–—‘’“”…":
        assert not is_gsm7(f"word{ch}word"), ch
