"""Figures from the fault tests, for docs/RELIABILITY.md.

A test calls `record(scenario, **figures)`; with FAULT_FIGURES_FILE set (e.g.
`FAULT_FIGURES_FILE=/tmp/figures.jsonl pytest tests/faults/`) each record is appended
to that file as one JSON line, so the document's tables come from real runs. Without it
nothing is written: figures are reported, never asserted on timing.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def record(scenario: str, **figures: Any) -> dict[str, Any]:
    """Append `figures` for `scenario` to $FAULT_FIGURES_FILE (if set); returns the record."""
    row = {
        "scenario": scenario,
        "database": "postgresql"
        if os.environ.get("DASH_TEST_DATABASE_URL", "").startswith("postgresql")
        else "sqlite",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        **figures,
    }
    target = os.environ.get("FAULT_FIGURES_FILE")
    if target:
        with Path(target).open("a", encoding="utf-8") as out:
            out.write(json.dumps(row) + "\n")
    return row
