"""Masking text that looks like a patient identifier before anyone else sees it.

Teams must not send patient identifiers, but someone will. What a coach, another
team or an export sees goes through `mask_identifiers`; the raw message is kept
for the record under the retention policy.
"""

from __future__ import annotations

import re

MASK = "[removed]"

_PATTERNS = [
    # Medical record numbers: "MRN 1234567", "mrn: 00123", "record # 55512"
    re.compile(
        r"\b(?:MRN|med(?:ical)?\s*rec(?:ord)?(?:\s*(?:no|number|#))?)\s*[:#]?\s*\d{4,}\b", re.I
    ),
    # Dates of birth: "DOB 3/4/1950", "born 1950-03-04", "d.o.b. 04.03.50"
    re.compile(
        r"\b(?:DOB|D\.O\.B\.?|born|date of birth)\s*[:\-]?\s*\d{1,4}[/.\-]\d{1,2}[/.\-]\d{2,4}\b",
        re.I,
    ),
    # Phone numbers: 7+ digits with separators
    re.compile(r"(?<!\d)(?:\+?\d[\d\s().\-]{8,}\d)(?!\d)"),
    # "patient Smith", "pt John Smith", "Mr. Jones in bed 4"
    re.compile(r"\b(?:patient|pt\.?|paciente|mr\.?|mrs\.?|ms\.?)\s+[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?"),
    # Room and bed with a name: "room 12 bed 2 Garcia", "rm 4B Jones"
    re.compile(
        r"\b(?:room|rm|bed)\s*\d+[A-Za-z]?(?:\s*(?:bed|b)\s*\d+)?\s*[,:\-]?\s+[A-Z][a-z]+", re.I
    ),
    # Long bare digit runs (7+) are record numbers far more often than anything else here.
    re.compile(r"\b\d{7,}\b"),
]


def find_identifiers(text: str) -> list[str]:
    found: list[str] = []
    for pattern in _PATTERNS:
        found.extend(m.group(0) for m in pattern.finditer(text or ""))
    return found


def mask_identifiers(text: str) -> str:
    """`text` with anything that looks like a patient identifier replaced by [removed]."""
    masked = text or ""
    for pattern in _PATTERNS:
        masked = pattern.sub(MASK, masked)
    return masked


def looks_identifying(text: str) -> bool:
    return bool(find_identifiers(text))
