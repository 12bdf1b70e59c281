"""The daily prompt is the message a nurse reads most: every day, on a phone, often by SMS.

Walking a Dash with `dash chat` showed prompts of 400-600 characters (four SMS segments, two
prompts a day) that pasted both full measure definitions. Each measure now asks one plain
question; this keeps every shipped prompt within two SMS segments even with a long unit name.
"""

from __future__ import annotations

import pytest

from dash.curriculum import load_all

#: Two concatenated GSM-7 SMS segments hold 306 characters; a little slack for names.
MAX_PROMPT = 320
LONG_TEAM = "Medicina Interna 5, Hospital San Juan"
LONG_DAY = "miércoles 16 de diciembre"

CASES = [
    (cur, measure, lang)
    for cur in load_all().values()
    for measure in cur.measures
    for lang in cur.languages
]


@pytest.mark.parametrize(
    ("cur", "measure", "lang"),
    CASES,
    ids=[f"{c.topic}-{m.key}-{lang}" for c, m, lang in CASES],
)
def test_every_daily_prompt_fits_two_sms_segments_and_asks_one_question(cur, measure, lang):
    prompt = measure.render_prompt(lang, date_label=LONG_DAY, team_name=LONG_TEAM)
    asked = [{"number": 1, "key": measure.key, "name": measure.short(lang)}]
    text = cur.render_message(
        "daily_prompt", lang, measure_prompt=prompt, measures=asked, team_name=LONG_TEAM,
        date_label=LONG_DAY, day_label=LONG_DAY,
    )
    assert len(prompt) <= MAX_PROMPT, prompt
    assert "?" in prompt and "D =" not in prompt
    assert "7/9" in text  # says how to answer


def test_spanish_messages_name_the_spanish_chart_keyword():
    opioids = load_all()["opioid-safety"]
    for kind in ("midpoint_summary", "final_summary"):
        template = opioids.messages[kind].root["es"]
        assert "CHART" not in template and "GRAFICO" in template
