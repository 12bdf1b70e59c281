"""Patient identifiers are masked; what teams legitimately send passes untouched."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from dash.actions.pdsa import ask_followup
from dash.models import Cohort, PdsaCycle
from dash.privacy import (
    MASK,
    find_identifiers,
    looks_identifying,
    mask_identifiers,
    normalise,
)
from dash.report import build_report
from tests.support import web as w
from tests.support.board import board_page
from tests.support.engine import KC, Chat, enrol, make_cohort

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
        "\u200b",
        "\u00ad",
        "SMITH",
        "@x.org",
        "-45-",
        "１",
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
    # Not even one that only shows once invisible characters are dropped ("123<ZWSP>4567").
    assert not re.search(r"\d{7,}", normalise(mask_identifiers(text)))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=2000))
def test_never_raises_on_any_text(text: str) -> None:
    masked = mask_identifiers(text)
    assert isinstance(masked, str)
    assert looks_identifying(text) == (masked != text)


# -- the phrasing table (issue 15): published in docs/PRIVACY.md ------------------------------
#
# Each row: the message, whether it must be masked, what must disappear, and a piece of
# context that must stay. Not-to-be-masked rows must come back unchanged.
ZWSP, ZWNJ, SHY, WJ = "\u200b", "\u200c", "\u00ad", "\u2060"
MASKED, KEPT = True, False

PHRASINGS: list[tuple[str, bool, tuple[str, ...], str]] = [
    # English: names after a patient cue or a title, in any capitalisation
    ("pt. JOHN SMITH refused", MASKED, ("JOHN", "SMITH"), "refused"),
    ("PATIENT JOHN SMITH in bed 4", MASKED, ("JOHN", "SMITH"), "in bed 4"),
    ("MR JONES 3/4", MASKED, ("JONES",), "3/4"),
    ("bed 4 SMITH missed dose", MASKED, ("SMITH",), "missed dose"),
    ("mr jones refused the scale", MASKED, ("jones",), "refused the scale"),
    ("Mrs. O'BRIEN 2/3", MASKED, ("O'BRIEN",), "2/3"),
    ("patient: Smith was drowsy", MASKED, ("Smith",), "was drowsy"),
    ("ms garcia fell", MASKED, ("garcia",), "fell"),
    ("rm 12 bed 2 GARCIA overdue", MASKED, ("GARCIA",), "overdue"),
    ("Patient McDONALD again", MASKED, ("McDONALD",), "again"),
    ("mr and Mrs Smith visited", MASKED, ("Smith",), "visited"),
    ("Pt Jo" + ZWSP + "hn Smith sedated", MASKED, ("hn", "Smith"), "sedated"),
    # English: record numbers, dates of birth, contact details
    ("MRN 123" + ZWSP + "4567 late", MASKED, ("123", "4567"), "late"),
    ("MRN 123" + ZWNJ + "4567", MASKED, ("123", "4567"), ""),
    ("MRN 123" + SHY + "4567", MASKED, ("123", "4567"), ""),
    ("MRN 123" + WJ + "4567 seen", MASKED, ("123", "4567"), "seen"),
    ("MRN 1 2 3 4 5 6 7 today", MASKED, ("1 2 3 4 5 6 7",), "today"),
    ("ＭＲＮ １２３４５６７", MASKED, ("１２３４５６７",), ""),
    ("DOB" + ZWSP + " 03/04/1950", MASKED, ("03/04/1950",), ""),
    ("D.O.B. 4/3/1950 checked", MASKED, ("4/3/1950",), "checked"),
    ("born 3 4 1950", MASKED, ("3 4 1950",), ""),
    ("record # 55512 refused", MASKED, ("55512",), "refused"),
    ("12345678 checked twice", MASKED, ("12345678",), "checked twice"),
    ("1234" + ZWSP + "5678 checked", MASKED, ("1234", "5678"), "checked"),
    ("email jo.smith@example.com please", MASKED, ("jo.smith@example.com",), "please"),
    ("daughter: JO_SMITH+ward@mail.example.org", MASKED, ("JO_SMITH", "example.org"), "daughter"),
    ("SSN 123-45-6789 on the form", MASKED, ("123-45-6789",), "on the form"),
    ("123 45 6789 on file", MASKED, ("123 45 6789",), "on file"),
    ("call 555-123-4567 after rounds", MASKED, ("555-123-4567",), "after rounds"),
    # Spanish
    ("paciente Juan Pérez no recibió la dosis", MASKED, ("Juan", "Pérez"), "no recibió la dosis"),
    ("PACIENTE JUAN PÉREZ sin escala", MASKED, ("JUAN", "PÉREZ"), "sin escala"),
    ("cama 4 García", MASKED, ("García",), ""),
    ("cama 4 GARCÍA 3/4", MASKED, ("GARCÍA",), "3/4"),
    ("habitación 12 cama 2 López", MASKED, ("López",), ""),
    ("Sr. López sedado", MASKED, ("López",), "sedado"),
    ("Sra. Gómez no recibió la dosis", MASKED, ("Gómez",), "no recibió la dosis"),
    ("sra gómez se cayó", MASKED, ("gómez",), "se cayó"),
    ("señora Ruiz 2/3", MASKED, ("Ruiz",), "2/3"),
    ("Srta. Martínez", MASKED, ("Martínez",), ""),
    ("paciente: Fernández", MASKED, ("Fernández",), ""),
    ("NHC 1234567", MASKED, ("1234567",), ""),
    ("NHC 12 34 567 pendiente", MASKED, ("12 34 567",), "pendiente"),
    ("historia clínica 123" + ZWSP + "4567", MASKED, ("123", "4567"), ""),
    ("fecha de nacimiento 03/04/1950", MASKED, ("03/04/1950",), ""),
    ("fecha de nacimiento" + ZWNJ + " 03/04/1950", MASKED, ("03/04/1950",), ""),
    ("nacida el 4 de marzo de 1950", MASKED, ("4 de marzo de 1950",), ""),
    ("correo ana.ruiz@hospital.es", MASKED, ("ana.ruiz@hospital.es",), "correo"),
    ("móvil 612 345 678", MASKED, ("612 345 678",), ""),
    # Not to be masked: counts, beds without a name, doses, wards, staff, dates in a plan
    ("7/9", KEPT, (), ""),
    ("7 of 9", KEPT, (), ""),
    ("7 out of 10 today", KEPT, (), ""),
    ("bed 4", KEPT, (), ""),
    ("bed 4 was empty", KEPT, (), ""),
    ("BED 4 TODAY WE TRIED THE SCALE", KEPT, (), ""),
    ("morphine 2 mg", KEPT, (), ""),
    ("morphine MR 10 mg at 22:00", KEPT, (), ""),
    ("naloxone 0.4 mg IV given", KEPT, (), ""),
    ("5 West", KEPT, (), ""),
    ("ward 7B 6/8", KEPT, (), ""),
    ("Dr. Chen said the POSS card helps", KEPT, (), ""),
    ("Casey Coach: great work, 5 West", KEPT, (), ""),
    ("Maria Lopez will lead PDSA 2", KEPT, (), ""),
    ("We did PDSA 2 on Mon 3 Dec, review 10/12/2025", KEPT, (), ""),
    ("PDSA 3 starts 2025-12-03, study on 2025-12-05", KEPT, (), ""),
    ("Patient Safety week went well", KEPT, (), ""),
    ("PATIENT SAFETY WEEK 8/10", KEPT, (), ""),
    ("pt Education handout done", KEPT, (), ""),
    ("patient refused the scale, 6 of 8", KEPT, (), ""),
    ("pt ICU transfer 2/3", KEPT, (), ""),
    ("DOB checked on 8/10 patients", KEPT, (), ""),
    ("scores 5 4 3 4 5", KEPT, (), ""),
    ("10:00-11:30 huddle, 85.5 %", KEPT, (), ""),
    ("e-mail the coach about bed 4", KEPT, (), ""),
    ("thanks @coach 9/9", KEPT, (), ""),
    ("1,250 ml over 24 h", KEPT, (), ""),
    # Spanish, not to be masked
    ("7 de 9", KEPT, (), ""),
    ("cama 4", KEPT, (), ""),
    ("cama 4 estaba vacía", KEPT, (), ""),
    ("El paciente de la cama 4 mejoró", KEPT, (), ""),
    ("paciente nuevo en la cama 2", KEPT, (), ""),
    ("Sr. enfermero hoy no vino", KEPT, (), ""),
    ("morfina 2 mg a las 14:30", KEPT, (), ""),
    ("UCI 2, 8 de 10 hoy", KEPT, (), ""),
    ("planta 5 Oeste 4/5", KEPT, (), ""),
    ("ciclo PDSA 3 el 12/03/2025", KEPT, (), ""),
]


@pytest.mark.parametrize(("text", "masked", "gone", "kept"), PHRASINGS)
def test_phrasing_table(text: str, masked: bool, gone: tuple[str, ...], kept: str) -> None:
    shown = mask_identifiers(text)
    if masked:
        assert MASK in shown and looks_identifying(text)
        for part in gone:
            assert part not in shown
        assert kept in shown
    else:
        assert shown == text and not looks_identifying(text)


def test_only_the_identifier_changes_in_text_that_needed_normalising() -> None:
    # Joiners inside emoji, ligatures and full-width letters are matched through their NFKC
    # form, but everything that is not masked comes back exactly as it was sent.
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert mask_identifiers(f"Hoy {family} 8 de 10, ﬁne") == f"Hoy {family} 8 de 10, ﬁne"
    text = f"ﬁne {family} ｐｔ ＳＭＩＴＨ ok 👍🏽 MRN 12\u200b34567."
    assert mask_identifiers(text) == f"ﬁne {family} {MASK} ok 👍🏽 {MASK}."
    # Spans are in the text as sent, invisible characters included.
    assert [(f.kind, f.text) for f in find_identifiers(text)] == [
        ("name", "ｐｔ ＳＭＩＴＨ"),
        ("record_number", "MRN 12\u200b34567"),
        ("long_number", "12\u200b34567"),
    ]
    assert normalise(text).endswith("pt SMITH ok 👍🏽 MRN 1234567.")


def test_the_published_figures_are_the_tables() -> None:
    """docs/PRIVACY.md quotes this table's size; the parametrised test above proves the rest."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "PRIVACY.md").read_text(encoding="utf-8")
    to_mask = sum(1 for _, masked, _, _ in PHRASINGS if masked)
    kept = len(PHRASINGS) - to_mask
    assert len(PHRASINGS) >= 60 and to_mask and kept
    assert f"{len(PHRASINGS)} phrasings" in doc
    assert f"{to_mask} of {to_mask} masked as expected" in doc
    assert f"0 of {kept} false positives" in doc


# -- where masking is applied ------------------------------------------------------------------


def test_exports_mask_pdsa_notes_and_messages(db) -> None:
    import io

    from dash.exports import write_export
    from dash.models import Message, PdsaCycle
    from tests.support.web import cohort, team

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


# -- every surface, end to end: a message through the engine, then what people read ----------

NAME = "PATIENT JOHN SMITH"


@pytest.fixture
def team_with_identifiers(ctx):
    """An enrolled, sharing team whose thread, PDSA cycle and story all name a patient in capitals,
    each typed on the console through the real engine; a coach for its cohort."""

    chat = Chat(ctx)
    cohort = make_cohort(ctx)
    team = enrol(chat, cohort)
    assert "now shares" in chat.say(KC, "SHARE ON")
    assert "coach will see" in chat.say(KC, f"{NAME} was very drowsy after the 22:00 dose")
    for line in ("PLAN", f"Sedation score first for {NAME}", "8 of 10", "Sam, nights", "POSS"):
        chat.say(KC, line)
    with ctx.db.transaction() as s:
        cycle = s.execute(select(PdsaCycle).where(PdsaCycle.team_id == team.id)).scalar_one()
        ask_followup(s, cycle)
    chat.say(KC, f"Worked on 7 of 9; {NAME} was missed at handover")
    chat.say(KC, "Close to the prediction")
    chat.say(KC, "adopt", callback_data="act:adopt")
    assert "story saved" in chat.say(KC, f"{NAME} slept safely: 9 of 10 by day 3")
    with ctx.db.transaction() as s:
        w.coach(s, "coach@example.org", cohorts=[s.get_one(Cohort, cohort.id)])
        stored = s.execute(select(PdsaCycle).where(PdsaCycle.team_id == team.id)).scalar_one()
        # The record keeps what was typed; only what people read is masked.
        assert NAME in stored.change_text and NAME in stored.story and NAME in stored.do_notes
    return ctx, cohort.id, team.id


def _assert_masked(text: str, *kept: str) -> None:
    assert "JOHN" not in text and "SMITH" not in text
    assert MASK in text
    for part in kept:
        assert part in text


def test_the_team_thread_masks_what_the_engine_stored(team_with_identifiers) -> None:
    ctx, _, team_id = team_with_identifiers
    client = w.client_for(ctx)
    w.login(client, "coach@example.org")
    page = client.get(f"/teams/{team_id}")
    assert page.status_code == 200
    _assert_masked(page.text, "was very drowsy after the 22:00 dose", "slept safely: 9 of 10")


def test_the_shared_board_masks_the_adopted_change_and_story(team_with_identifiers) -> None:
    ctx, cohort_id, team_id = team_with_identifiers
    with ctx.db.transaction() as s:  # another team of the cohort reads the board
        other_id = w.team(s, s.get_one(Cohort, cohort_id), "6 East").id
    page = board_page(ctx, other_id)
    _assert_masked(page, "5 West", "Sedation score first for", "slept safely: 9 of 10 by day 3")


@pytest.mark.parametrize(
    ("what", "kept"),
    [
        ("messages", "was very drowsy after the 22:00 dose"),
        ("pdsa", "was missed at handover"),
    ],
)
def test_the_csv_exports_mask_text(team_with_identifiers, what: str, kept: str) -> None:
    ctx, cohort_id, _ = team_with_identifiers
    client = w.client_for(ctx)
    w.login(client, "coach@example.org")
    response = client.get(f"/cohorts/{cohort_id}/export/{what}.csv")
    assert response.status_code == 200
    _assert_masked(response.text, kept)


def test_the_html_report_masks_the_pdsa_record(team_with_identifiers) -> None:
    ctx, cohort_id, _ = team_with_identifiers
    with ctx.db.transaction() as s:
        html = build_report(s, cohort_id)
    _assert_masked(html, "Sedation score first for", "was missed at handover", "slept safely")


@pytest.mark.parametrize(
    "text",
    [
        "pt. JOHN SMITH very drowsy",
        "MR JONES very drowsy",
        "bed 4 SMITH very drowsy",
        "MRN 123\u200b4567 very drowsy",
        "DOB\u200b 03/04/1950 on the chart",
        "email jo.smith@example.com about it",
        "123-45-6789 on the chart",
        "paciente Juan Pérez muy somnoliento",
    ],
)
def test_the_reminder_fires_on_the_same_detections(ctx, text: str) -> None:
    chat = Chat(ctx)
    team = enrol(chat, make_cohort(ctx))
    nurse = "+15559870001"
    chat.say(nurse, f"JOIN {team.join_code}")
    chat.say(nurse, "Sam")
    assert looks_identifying(text)
    assert "gentle reminder" in chat.say(nurse, text)


def test_no_reminder_for_counts_beds_and_doses(ctx) -> None:
    chat = Chat(ctx)
    team = enrol(chat, make_cohort(ctx))
    nurse = "+15559870002"
    chat.say(nurse, f"JOIN {team.join_code}")
    chat.say(nurse, "Sam")
    reply = chat.say(nurse, "Bed 4 was empty; morphine 2 mg on ward 7B. Dr. Chen said thanks")
    assert "your coach will see this" in reply and "gentle reminder" not in reply
