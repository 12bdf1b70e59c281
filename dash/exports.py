"""CSV exports with the exact columns of CONTRACT.md."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from dash.errors import UserError
from dash.models import (
    Cohort,
    Measure,
    MeasureValue,
    Message,
    Organisation,
    PdsaCycle,
    Person,
    Team,
    Unit,
)

COLUMNS = {
    "measures": [
        "cohort_id",
        "organization",
        "unit",
        "team_id",
        "measure",
        "date",
        "numerator",
        "denominator",
        "value",
        "reported_by",
        "reported_at",
        "channel",
    ],
    "pdsa": [
        "cohort_id",
        "team_id",
        "cycle",
        "change",
        "prediction",
        "plan",
        "started_on",
        "do_notes",
        "study_notes",
        "act",
        "created_by",
    ],
    "messages": [
        "cohort_id",
        "team_id",
        "direction",
        "channel",
        "sender",
        "text",
        "sent_at",
        "status",
    ],
}


def _measures(session: Session, cohort_id: int) -> Iterator[list[object]]:
    reporter = aliased(Person)
    rows = session.execute(
        select(MeasureValue, Measure.key, Organisation.name, Unit.name, reporter.name)
        .join(Team, Team.id == MeasureValue.team_id)
        .join(Unit, Unit.id == Team.unit_id)
        .join(Organisation, Organisation.id == Unit.organisation_id)
        .join(Measure, Measure.id == MeasureValue.measure_id)
        .outerjoin(reporter, reporter.id == MeasureValue.reported_by_id)
        .where(Team.cohort_id == cohort_id, MeasureValue.is_current.is_(True))
        .order_by(Team.id, Measure.position, MeasureValue.day)
    )
    for value, key, org, unit, who in rows:
        yield [
            cohort_id,
            org,
            unit,
            value.team_id,
            key,
            value.day.isoformat(),
            value.numerator,
            value.denominator,
            "" if value.value is None else f"{value.value:.4f}",
            who or "",
            value.reported_at.isoformat(),
            value.channel,
        ]


def _pdsa(session: Session, cohort_id: int) -> Iterator[list[object]]:
    rows = session.execute(
        select(PdsaCycle, Person.name)
        .join(Team, Team.id == PdsaCycle.team_id)
        .outerjoin(Person, Person.id == PdsaCycle.created_by_id)
        .where(Team.cohort_id == cohort_id)
        .order_by(Team.id, PdsaCycle.number)
    )
    from dash.privacy import mask_identifiers as m  # PDSA text is kept; what leaves is masked

    for cycle, who in rows:
        yield [
            cohort_id,
            cycle.team_id,
            cycle.number,
            m(cycle.change_text),
            m(cycle.prediction),
            m(" / ".join(p for p in (cycle.plan_who_where_when, cycle.plan_measure) if p)),
            cycle.test_date.isoformat() if cycle.test_date else "",
            m(cycle.do_notes),
            m(cycle.study_notes),
            cycle.act or "",
            who or "",
        ]


def _messages(session: Session, cohort_id: int) -> Iterator[list[object]]:
    from dash.privacy import mask_identifiers

    author = aliased(Person)
    rows = session.execute(
        select(Message, Person.name, author.name)
        .join(Team, Team.id == Message.team_id)
        .outerjoin(Person, Person.id == Message.person_id)
        .outerjoin(author, author.id == Message.author_id)
        .where(Team.cohort_id == cohort_id)
        .order_by(Team.id, Message.created_at, Message.id)
    )
    for msg, person_name, author_name in rows:
        sender = (author_name or "") if msg.direction == "out" else (person_name or msg.address)
        yield [
            cohort_id,
            msg.team_id,
            msg.direction,
            msg.channel,
            sender or "bot",
            mask_identifiers(msg.text),
            msg.created_at.isoformat(),
            msg.status,
        ]


_ROWS = {"measures": _measures, "pdsa": _pdsa, "messages": _messages}


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _inert(cell: object) -> object:
    """Text a spreadsheet would run as a formula gets a leading apostrophe (OWASP CSV injection).

    Only text: counts and dates are written as they are.
    """
    if isinstance(cell, str) and cell.startswith(_FORMULA_START):
        return "'" + cell
    return cell


def write_export(session: Session, cohort_id: int, what: str, out: TextIO) -> int:
    """Write the CSV to `out`; returns the number of data rows."""
    if what not in COLUMNS:
        raise UserError(f"unknown export {what!r}: use measures, pdsa or messages")
    if session.get(Cohort, cohort_id) is None:
        raise UserError(f"there is no cohort {cohort_id}")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS[what])
    count = 0
    for row in _ROWS[what](session, cohort_id):
        writer.writerow([_inert(cell) for cell in row])
        count += 1
    return count
