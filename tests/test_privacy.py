"""Patient identifiers are masked; what teams legitimately send passes untouched."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dash.privacy import MASK, find_identifiers, looks_identifying, mask_identifiers

# (message, the identifying part that must disappear, a word of context that must stay)
IDENTIFYING = [
    ("MRN 1234567 missed dose", "1234567", "missed dose"),
    ("mrn: 00123 late", "00123", "late"),
    ("record #55512 refused", "55512", "refused"),
    ("med rec no 445566", "445566", ""),
    ("MRN A123456 ok", "A123456", "ok"),
    ("MRN: 12-345-67", "12-345-67", ""),
    ("checked 12345678 twice", "12345678", "checked"),
    ("DOB 3/4/1950 given", "3/4/1950", "given"),
    ("born 04.03.50", "04.03.50", ""),
    ("date of birth 1950-03-04", "1950-03-04", ""),
    ("d.o.b. 04/03/1950", "04/03/1950", ""),
    ("DOB: 12 March 1950", "12 March 1950", ""),
    ("born March 4, 1950", "March 4, 1950", ""),
    ("call 555-123-4567 about it", "555-123-4567", "about it"),
    ("family on +1 (555) 123-4567", "123-4567", "family on"),
    ("tel 555-1234", "555-1234", ""),
    ("patient Smith refused the scale", "Smith", "refused"),
    ("pt John Smith sedated", "John Smith", "sedated"),
    ("Mr Jones in bed 4", "Jones", "in bed 4"),
    ("Mrs. O'Brien 2/3", "O'Brien", "2/3"),
    ("Ms Garcia fell", "Garcia", "fell"),
    ("rm 12 bed 2 Garcia overdue", "Garcia", "overdue"),
    ("room 4B Jones", "Jones", ""),
    ("bed 4 Smith missed", "Smith", "missed"),
    ("Patient McDonald again", "McDonald", "again"),
    # Spanish
    ("paciente García no recibió la dosis", "García", "no recibió"),
    ("Sr. Pérez sedado", "Pérez", "sedado"),
    ("Sra López 3/4", "López", "3/4"),
    ("cama 3 Pérez sin escala", "Pérez", "sin escala"),
    ("habitación 12 cama 2 López", "López", ""),
    ("hab 4B Ruiz", "Ruiz", ""),
    ("fecha de nacimiento 04/03/1950", "04/03/1950", ""),
    ("f. nac. 4-3-50", "4-3-50", ""),
    ("nacido el 4/3/1950", "4/3/1950", ""),
    ("nacida el 4 de marzo de 1950", "4 de marzo de 1950", ""),
    ("historia clínica 1234567", "1234567", ""),
    ("HC 123456 pendiente", "123456", "pendiente"),
    ("NHC 5551234", "5551234", ""),
    ("expediente 99887 revisado", "99887", "revisado"),
    ("tel 612 345 678", "612 345 678", ""),
    ("llamar al 612 345 678 mañana", "612 345 678", "mañana"),
    ("móvil +34 612 34 56 78", "612 34 56 78", ""),
]

# What teams send all day and must reach the coach as written.
ORDINARY = [
    "7/9",
    "7 of 9",
    "7 out of 10",
    "0/0 no patients today",
    "Tue 3 Dec 5/8",
    "yesterday 5/8",
    "9/10 at 07:45",
    "huddle 14:30",
    "at 2:15pm",
    "80%",
    "85.5 % of doses",
    "bed 4",
    "bed 4 was empty",
    "bed 4 Today we tried the scale",
    "Room 3 at 14:30",
    "change idea 3",
    "PDSA 2",
    "We did PDSA 2 on Mon 3 Dec",
    "on 12/03/2025 we started",
    "2025-12-03",
    "2024-2025",
    "scores 5 4 3 4 5",
    "12 14 15 13 16",
    "DOB checked on 8/10 patients",
    "Patient Safety week went well",
    "pt Education handout done",
    "record 5/8 today",
    "we record 10-12 per day",
    "1,250 ml",
    "1.234 doses",
    "MRSA screen 6/6",
    "10:00-11:30 huddle",
    # Spanish
    "7 de 9",
    "8 de 10 hoy",
    "ayer 6/10",
    "mar 3 dic 4/5",
    "Jueves 12 dic: 8 de 9",
    "cama 4",
    "cama 4 estaba vacía",
    "El paciente de la cama 4 mejoró",
    "Hoy 5/8, mañana probamos la lista",
    "idea de cambio 2",
    "ciclo PDSA 3",
    "90 % con escala",
    "Sr. enfermero hoy no vino",
    "paciente nuevo en la cama 2",
]


@pytest.mark.parametrize(("text", "identifier", "context"), IDENTIFYING)
def test_identifiers_are_masked_and_context_kept(text: str, identifier: str, context: str) -> None:
    masked = mask_identifiers(text)
    assert identifier not in masked
    assert MASK in masked
    assert context in masked
    assert looks_identifying(text)


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_messages_pass_untouched(text: str) -> None:
    assert mask_identifiers(text) == text
    assert not looks_identifying(text)
    assert find_identifiers(text) == []


def test_findings_name_the_rule_and_the_span() -> None:
    text = "pt Smith MRN 1234567"
    kinds = {f.kind for f in find_identifiers(text)}
    assert {"name", "record_number"} <= kinds
    for finding in find_identifiers(text):
        assert text[finding.start : finding.end] == finding.text


def test_none_and_empty_are_safe() -> None:
    assert mask_identifiers(None) == ""
    assert mask_identifiers("") == ""
    assert not looks_identifying(None)


def test_a_mask_next_to_a_word_is_still_stable() -> None:
    # The name goes first; the number that followed it must not surface on a second pass.
    text = "Mr Smith555 123 4567 x1234567y"
    once = mask_identifiers(text)
    assert mask_identifiers(once) == once
    assert not re.search(r"\d{7,}", once)


# Text built from the pieces the rules look at, so the properties test the edges, not just noise.
_PIECES = st.sampled_from(
    [
        *"0123456789 /.-:+()#,'[]",
        "MRN",
        "Mr ",
        "pt ",
        "paciente ",
        "Smith",
        "García",
        "room ",
        "bed ",
        "cama ",
        "DOB ",
        "born ",
        "tel ",
        "4B",
        "Today",
        "removed",
        "1234567",
        "\u0663",
        "call ",
        "de ",
        "marzo ",
        "x",
        "É",
        "ñ",
        "\n",
    ]
)
_TEXTS = st.one_of(st.text(), st.lists(_PIECES, max_size=40).map("".join))


@settings(max_examples=400, deadline=None)
@given(_TEXTS)
def test_masking_is_idempotent(text: str) -> None:
    once = mask_identifiers(text)
    assert mask_identifiers(once) == once


@settings(max_examples=400, deadline=None)
@given(_TEXTS)
def test_masking_never_lengthens_beyond_the_mask_tokens(text: str) -> None:
    assert len(mask_identifiers(text).replace(MASK, "")) <= len(text)


@settings(max_examples=400, deadline=None)
@given(_TEXTS)
def test_no_run_of_seven_digits_survives(text: str) -> None:
    assert not re.search(r"\d{7,}", mask_identifiers(text))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=2000))
def test_never_raises_on_any_text(text: str) -> None:
    masked = mask_identifiers(text)
    assert isinstance(masked, str)
    assert looks_identifying(text) == (masked != text)


# -- where masking is applied ------------------------------------------------------------------


def test_exports_mask_pdsa_notes_and_messages(db) -> None:
    import io

    from dash.exports import write_export
    from dash.models import Message, PdsaCycle
    from tests.web_support import cohort, team

    with db.transaction() as s:
        c = cohort(s)
        t = team(s, c, "5 West")
        s.add(
            PdsaCycle(
                team_id=t.id,
                number=1,
                state="done",
                change_text="Sedation scale at handover",
                prediction="8 of 10 checked",
                do_notes="pt Smith MRN 1234567 was missed",
            )
        )
        s.add(
            Message(
                team_id=t.id,
                direction="in",
                channel="console",
                address="+15550001111",
                text="bed 4 Garcia 3/4",
                status="processed",
            )
        )
        s.flush()
        pdsa, messages = io.StringIO(), io.StringIO()
        write_export(s, c.id, "pdsa", pdsa)
        write_export(s, c.id, "messages", messages)
    assert "Sedation scale at handover" in pdsa.getvalue() and "8 of 10" in pdsa.getvalue()
    assert f"{MASK} was missed" in pdsa.getvalue()
    assert "Smith" not in pdsa.getvalue() and "1234567" not in pdsa.getvalue()
    assert f"{MASK} 3/4" in messages.getvalue() and "Garcia" not in messages.getvalue()
