"""What a nurse reads on a phone: message templates render as separate, readable lines.

Found by walking the conversations with `dash chat`: a sentence glued to the next one
("Welcome to 5 West!Daily count: ...") because a block tag at the end of a line swallowed
its newline (the message environment uses trim_blocks).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dash.models import Team
from dash.texts import LANGUAGES, TEMPLATES, render
from tests.support.engine import Chat, enrol, make_cohort

MESSAGES = TEMPLATES / "messages"
_TAG = re.compile(r"{%-?.*?[-+]?%}|{{.*?}}|{#.*?#}")


def _glued_lines(path: Path) -> list[int]:
    """Lines with text that end in a block tag eating their newline, followed by more text."""
    lines = path.read_text(encoding="utf-8").split("\n")
    bad = []
    for number, (line, following) in enumerate(zip(lines, lines[1:], strict=False), start=1):
        stripped = line.rstrip()
        if not stripped.endswith("%}") or stripped.endswith("+%}"):
            continue
        has_text = _TAG.sub("", stripped).strip() != ""
        next_is_text = following.strip() != "" and not following.lstrip().startswith("{%")
        if has_text and next_is_text:
            bad.append(number)
    return bad


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_message_template_glues_two_lines_together(lang: str) -> None:
    glued = {
        path.name: lines
        for path in sorted((MESSAGES / lang).glob("*.j2"))
        if (lines := _glued_lines(path))
    }
    assert glued == {}


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("shared", [True, False])
def test_the_adopted_message_puts_the_question_on_its_own_line(lang: str, shared: bool) -> None:
    text = render("pdsa_adopted", lang, number=1, change="A", example="B", shared=shared)
    last = text.split("\n")[-1]
    assert last in ("Send your line, or SKIP.", "Envíe su línea, u OMITIR.")


def test_a_new_member_reads_the_welcome_and_the_how_to_on_separate_lines(ctx) -> None:
    chat = Chat(ctx)
    team = enrol(chat, make_cohort(ctx))
    with ctx.db.transaction() as s:
        code = s.get(Team, team.id).join_code
    reply = chat.say("+15551230007", f"join {code}")
    assert reply.startswith("Welcome to 5 West, St Mary's Hospital!\nDaily count:")
    chat.say("+15551230007", "LANG es")
    again = chat.say("+15551230007", f"join {code}")
    assert again.startswith("Ya está en 5 West, St Mary's Hospital.\nRecuento diario:")


def test_lang_es_before_join_keeps_the_whole_enrolment_in_spanish(ctx) -> None:
    chat = Chat(ctx)
    cohort = make_cohort(ctx)
    stranger = "+15551230020"
    assert chat.say(stranger, "LANG es") == "A partir de ahora le escribiré en español."
    welcome = chat.say(stranger, f"UNIRME {cohort.enrolment_code}")
    assert "¿Cómo se llama?" in welcome and "What is your name" not in welcome
    assert "¿En qué hospital" in chat.say(stranger, "Ana Ruiz")
    # Someone who has not joined yet is told what to do, in the language they chose.
    assert chat.say("+15551230021", "idioma es") == "A partir de ahora le escribiré en español."
    assert "Envíe JOIN y su código de equipo" in chat.say("+15551230021", "hola")


def test_the_leader_reads_a_short_plain_matrix_and_what_they_are_signing(ctx) -> None:
    chat = Chat(ctx)
    cohort = make_cohort(ctx)
    enrol_until_leader = ["Maria Lopez", "St Mary's Hospital", "5 West", "4", "5", "3", "2", "5"]
    chat.say("+15551230030", f"JOIN {cohort.enrolment_code}")
    for answer in [*enrol_until_leader, "Ana Ruiz, CNO", "+15551230031"]:
        chat.say("+15551230030", answer)
    request = chat.text("+15551230031")
    assert "for a two-week Improvement Dash (Test cohort)" in request
    assert "Quick results: 3\n" in request and "shorter scores higher" not in request
    assert "Total: 19 of 25" in request and "Reply YES" in request
