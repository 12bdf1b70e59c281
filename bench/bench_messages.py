"""What the simulated fortnight costs each person's phone: messages, characters, SMS segments.

Runs `python -m dash demo` (the default seed, 14 days: three cohorts, four teams, the console
channel) into a temporary folder, then reads every message the demo delivered to a person from
its database and prints, by role (key contact, leader, reporter, member, coach, and everyone):

- messages per person per day: the most any one person got in a day, and the median over the
  days a person got anything;
- messages per person over the whole run (the most);
- characters per message (median, 90th percentile);
- SMS segments per message (median, max; dash.sms.sms_segments, GSM-7 or UCS-2) and the share
  of messages that need UCS-2 (one typographic dash or accented letter does it).

A person's role is the highest they hold (leader > key contact > reporter > member); a day is
the local day of their team's cohort. The segments are counted by this checkout's dash.sms,
whatever tree ran the demo, so `--tree DIR` measures another checkout (its `dash demo`, run from
DIR with DIR first on PYTHONPATH) on the same scale: how docs/CONVERSATIONS.md's "before" was
taken. The demo is seeded, so the figures are the same on every run of the same code.

Run: python bench/bench_messages.py [--tree DIR] [--seed 1]
"""

from __future__ import annotations

import argparse
import math
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

if __package__ in (None, ""):  # run as a script: make `bench` and `dash` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT  # noqa: E402
from dash.actions.queueing import BUDGET_KINDS as SCHEDULED_KINDS  # noqa: E402
from dash.sms import is_gsm7, sms_segments  # noqa: E402

#: Roles in the order they are printed; a person holding several is counted under the first.
ROLES = ("leader", "key_contact", "data_reporter", "member", "coach")
LABELS = {
    "leader": "leader",
    "key_contact": "key contact",
    "data_reporter": "reporter",
    "member": "member",
    "coach": "coach",
    "all": "everyone",
}
LIMIT = 600.0


@dataclass
class Figures:
    """Messages received by the people of one role."""

    people: set[int] = field(default_factory=set)
    per_day: Counter[tuple[int, str]] = field(default_factory=Counter)
    per_person: Counter[int] = field(default_factory=Counter)
    chars: list[int] = field(default_factory=list)
    segments: list[int] = field(default_factory=list)
    ucs2: int = 0

    def add(self, person: int, day: str, text: str) -> None:
        self.people.add(person)
        self.per_day[(person, day)] += 1
        self.per_person[person] += 1
        self.chars.append(len(text))
        self.segments.append(sms_segments(text))
        self.ucs2 += not is_gsm7(text)


def run_demo(tree: Path, folder: Path, seed: int) -> Path:
    """`dash demo` of `tree` into `folder`; returns its database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASH_")}
    env["PYTHONPATH"] = str(tree)
    db = folder / "dash-demo.db"
    subprocess.run(
        [sys.executable, "-m", "dash", "demo", "--db", str(db), "--seed", str(seed), "--quiet"],
        cwd=tree,
        env=env,
        check=True,
        capture_output=True,
        timeout=LIMIT,
    )
    return db


def _role_and_zone(conn: sqlite3.Connection) -> dict[int, tuple[str, str]]:
    """person id -> (role, time zone of their cohort)."""
    held: dict[int, tuple[int, str]] = {}
    rows = conn.execute(
        "SELECT m.person_id, m.role, c.timezone FROM memberships m "
        "JOIN teams t ON t.id = m.team_id JOIN cohorts c ON c.id = t.cohort_id"
    )
    for person, role, tz in rows:
        rank = ROLES.index(role) if role in ROLES else len(ROLES)
        if person not in held or rank < held[person][0]:
            held[person] = (rank, tz)
    for person, tz in conn.execute(
        "SELECT cc.person_id, c.timezone FROM cohort_coaches cc JOIN cohorts c ON c.id = cc.cohort_id"
    ):
        held.setdefault(person, (ROLES.index("coach"), tz))
    return {p: (ROLES[rank] if rank < len(ROLES) else "member", tz) for p, (rank, tz) in held.items()}




def measure(db: Path, scheduled: bool = False) -> dict[str, Figures]:
    """Every message delivered to a known person, by role (and "all"); only the scheduler's
    when `scheduled` (replies to what a person sent left out)."""
    conn = sqlite3.connect(db)
    try:
        people = _role_and_zone(conn)
        figures: dict[str, Figures] = defaultdict(Figures)
        only = f" AND kind IN ({', '.join('?' for _ in SCHEDULED_KINDS)})" if scheduled else ""
        rows = conn.execute(
            "SELECT person_id, text, created_at FROM messages "
            f"WHERE direction = 'out' AND status = 'sent' AND person_id IS NOT NULL{only} "
            "ORDER BY id",
            SCHEDULED_KINDS if scheduled else (),
        )
        for person, text, created in rows:
            role, tz = people.get(person, ("member", "UTC"))
            at = datetime.fromisoformat(str(created))
            at = at if at.tzinfo else at.replace(tzinfo=UTC)
            day = at.astimezone(ZoneInfo(tz)).date().isoformat()
            figures[role].add(person, day, text or "")
            figures["all"].add(person, day, text or "")
    finally:
        conn.close()
    return figures


def _p90(values: list[int]) -> int:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def table(figures: dict[str, Figures]) -> str:
    """A Markdown table, one row per role."""
    head = (
        "| role | people | messages | per person per day: max | median | per person: max "
        "| chars: median | p90 | segments: median | max | UCS-2 |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for role in (*ROLES, "all"):
        f = figures.get(role)
        if f is None or not f.chars:
            continue
        days = list(f.per_day.values())
        lines.append(
            f"| {LABELS[role]} | {len(f.people)} | {len(f.chars)} | {max(days)} "
            f"| {statistics.median(days):g} | {max(f.per_person.values())} "
            f"| {statistics.median(f.chars):g} | {_p90(f.chars)} "
            f"| {statistics.median(f.segments):g} | {max(f.segments)} "
            f"| {100 * f.ucs2 / len(f.chars):.0f}% |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tree", type=Path, default=ROOT, help="checkout whose demo to run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--scheduled", action="store_true", help="count only scheduled messages (not replies)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-messages-") as tmp:
        db = run_demo(args.tree.resolve(), Path(tmp), args.seed)
        print(table(measure(db, args.scheduled)))


if __name__ == "__main__":
    main()
