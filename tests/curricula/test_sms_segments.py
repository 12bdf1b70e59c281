"""Every SMS a nurse gets is counted in segments, and the ones she gets daily fit in one.

A typographic dash or quote forces the whole SMS into UCS-2 (70 characters a segment instead of
160), so chat texts keep to GSM-7; Spanish may keep the accents GSM-7 lacks (á í ó ú) where a
correct sentence needs them, except in the daily prompt and the nudge, which must be one segment
in every language.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from dash.curriculum import STEP_KINDS, Curriculum, load_all
from dash.sms import GSM7_BASIC, GSM7_EXTENDED, sms_segments
from dash.texts import render
from tests.curricula.test_curricula import step_context

GSM7 = set(GSM7_BASIC)


CURRICULA = list(load_all().values())
LONG_DAYS = {"en": "Wednesday 30 September", "es": "miércoles 30 de septiembre"}
LONG_DAY_LABEL = {"en": "Wednesday 30 September", "es": "30 de septiembre"}
LONG_MISSING = {"en": "Monday 28 to Wednesday 30 September", "es": "28 al 30 de septiembre"}
TEAM = {"team_name": "Ward 7 North", "unit_name": "Ward 7 North Medicine"}


def daily_contexts(cur: Curriculum, kind: str, lang: str) -> list[dict[str, Any]]:
    """The step's context with every measure asked or missing, and with each one alone."""
    base = step_context(cur, kind, lang) | {
        k: v for k, v in TEAM.items() if k in step_context(cur, kind, lang)
    }
    base["recipient_name"] = "Guadalupe Ruiz"
    if "date_label" in base:
        base["date_label"] = LONG_DAYS[lang]
    asked = [
        {"number": n, "key": m.key, "name": m.short(lang)} for n, m in enumerate(cur.measures, 1)
    ]
    if kind == "daily_prompt":
        base["day_label"] = LONG_DAY_LABEL[lang]
        return [base | {"measures": asked}, *(base | {"measures": [m]} for m in asked)]
    base["missing_days"] = LONG_MISSING[lang]
    contexts = [base | {"all_missing": True}]
    for measure in cur.measures:
        name = measure.short(lang)
        contexts.append(base | {"all_missing": False, "measure_name": name})
    return contexts


DAILY = [
    (cur, kind, lang)
    for cur in CURRICULA
    for kind in ("daily_prompt", "nudge_reporter")
    for lang in cur.languages
]


@pytest.mark.parametrize(
    ("cur", "kind", "lang"), DAILY, ids=[f"{c.topic}-{k}-{lang}" for c, k, lang in DAILY]
)
def test_daily_prompts_and_nudges_fit_one_segment(cur: Curriculum, kind: str, lang: str) -> None:
    for context in daily_contexts(cur, kind, lang):
        text = cur.render_message(kind, lang, **context)  # type: ignore[arg-type]
        assert sms_segments(text) == 1, f"{len(text)} characters: {text}"
        assert "7/9" in text  # says how to answer


def test_a_prompt_lists_every_measure_by_number() -> None:
    sepsis = next(c for c in CURRICULA if c.topic == "sepsis")
    [context, *_] = daily_contexts(sepsis, "daily_prompt", "en")
    text = sepsis.render_message("daily_prompt", "en", **context)
    assert "1) Antibiotics in 1 hour 2) Lactate in 1 hour 3) Cultures first" in text


ALL = [(cur, kind, lang) for cur in CURRICULA for kind in STEP_KINDS for lang in cur.languages]


@pytest.mark.parametrize(
    ("cur", "kind", "lang"), ALL, ids=[f"{c.topic}-{k}-{lang}" for c, k, lang in ALL]
)
def test_english_messages_stay_in_gsm7_and_every_message_is_counted(
    cur: Curriculum, kind: str, lang: str
) -> None:
    context = step_context(cur, kind, lang)
    text = cur.render_message(kind, lang, **context)  # type: ignore[arg-type]
    segments = sms_segments(text)
    if lang == "en":
        outside = sorted({c for c in text if c not in GSM7 | GSM7_EXTENDED})
        assert not outside, f"{outside} force UCS-2 in: {text}"
    # Typographic dashes and quotes have plain GSM-7 forms in every language.
    assert not set(text) & set("–—‘’“”«»…"), text
    assert segments <= 8, f"{segments} segments: {text}"


#: Templates that are never sent as a chat message (command-line and log texts).
NOT_CHAT = {"database_problem"}
MESSAGES = Path(__file__).resolve().parents[2] / "dash" / "templates" / "messages"
EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf]")


def chat_templates() -> list[Path]:
    return sorted(p for p in MESSAGES.glob("*/*.j2") if p.stem not in NOT_CHAT)


@pytest.mark.parametrize("path", chat_templates(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_message_templates_have_no_typographic_dashes_quotes_or_emoji(path: Path) -> None:
    source = re.sub(r"\{#.*?#\}", "", path.read_text(encoding="utf-8"), flags=re.S)
    assert not set(source) & set("–—‘’“”«»…"), path
    assert not EMOJI.search(source), path
    if path.parent.name == "en":
        outside = sorted({c for c in source if c not in GSM7 | GSM7_EXTENDED})
        assert not outside, f"{path.name}: {outside}"


def test_day_labels_of_a_nudge_are_gsm7_in_spanish() -> None:
    from datetime import date

    days = [date(2026, 12, 5), date(2026, 12, 6), date(2026, 12, 7)]  # Saturday to Monday
    label = render("agenda_days_label", "es", days=days)
    assert label == "5 al 7 de diciembre" and sms_segments(label) == 1
    assert all(c in GSM7 for c in label)
