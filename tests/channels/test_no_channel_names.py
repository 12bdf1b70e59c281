"""The generic parts never name a channel: what differs per channel is its ChannelType's.

Scans the delivery worker, the rate limiter, the dashboard and the engine for a channel's
name as a string ("telegram", "sms:…"), as a member of the Channel enum (Channel.TELEGRAM),
or inside an identifier (telegram_chat_id).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from bots import registry

ROOT = Path(__file__).resolve().parents[2]
GENERIC = [
    "bots/delivery.py",
    "bots/ratelimit.py",
    "dash/web",
    "dash/engine",
    "dash/actions",
    "dash/queries",
    "dash/reach.py",
    "scheduler",
]

#: Not a channel there: the log-in e-mail (a form field and the Person column it fills).
NOT_A_CHANNEL = {
    ("dash/web", "email"),
    ("dash/actions/assignments.py", "email"),
    ("dash/actions/logins.py", "email"),
    ("dash/actions/logins.py", "_staff_by_email"),
}

#: Still named: the leader's contact typed in chat (a phone number is reached by SMS, a
#: @username on Telegram, an e-mail address by e-mail), the admin adding a contact by phone, and the reason recorded when
#: a Telegram user blocks the bot. The list must only shrink.
KNOWN = {
    ("dash/engine/enrol.py", "telegram"),
    ("dash/engine/enrol.py", "Channel.CONSOLE"),
    ("dash/engine/enrol.py", "Channel.SMS"),
    ("dash/engine/enrol.py", "Channel.TELEGRAM"),
    ("dash/engine/enrol.py", "Channel.WHATSAPP"),
    ("dash/engine/router.py", "telegram: bot blocked"),
    # A leader's contact may be an e-mail address (dash.reach.EMAIL, the address rows' channel).
    ("dash/engine/enrol.py", "email"),
    ("dash/engine/enrol.py", "EMAIL"),
    ("dash/engine/enrol.py", "_leader_by_email"),
    ("dash/web/admin.py", "Channel.SMS"),
    # The same leader's contact typed by a coach repairing an enrolment (find_leader).
    ("dash/actions/enrolment.py", "telegram"),
    ("dash/actions/enrolment.py", "email"),
    ("dash/actions/enrolment.py", "EMAIL"),
    ("dash/actions/enrolment.py", "Channel.CONSOLE"),
    ("dash/actions/enrolment.py", "Channel.SMS"),
    ("dash/actions/enrolment.py", "Channel.TELEGRAM"),
    ("dash/actions/enrolment.py", "Channel.WHATSAPP"),
    # A coach's log-in e-mail is also their address row on "email" (dash.reach.EMAIL).
    ("dash/actions/coaches.py", "email"),
    ("dash/actions/coaches.py", "_email_address"),
    ("dash/actions/coaches.py", "EMAIL"),
    ("dash/reach.py", "EMAIL"),
    ("dash/reach.py", "email"),
    # The curriculum format's field (CONTRACT.md): a step's pre-approved provider template.
    ("scheduler/steps.py", "whatsapp_templates"),
}


def _files() -> list[Path]:
    found: list[Path] = []
    for entry in GENERIC:
        path = ROOT / entry
        found += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return found


def _names_in(tree: ast.AST, channels: set[str]) -> set[str]:
    """Every string, Channel member and identifier in `tree` that names a channel."""
    word = re.compile(r"(?:^|_)(" + "|".join(sorted(channels)) + r")(?:_|$)", re.I)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            head = node.value.split(":", 1)[0].strip().lower()
            if head in channels:
                found.add(node.value)
        elif isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "Channel":
                if node.attr.lower() in channels:  # Channel.WEB is the dashboard, not a channel
                    found.add(f"Channel.{node.attr}")
            elif word.search(node.attr):
                found.add(node.attr)
        elif isinstance(node, ast.Name) and word.search(node.id):
            found.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and word.search(node.name):
            found.add(node.name)
        elif isinstance(node, ast.keyword) and node.arg and word.search(node.arg):
            found.add(node.arg)
    return found


def test_the_generic_parts_name_no_channel() -> None:
    channels = {t.name for t in registry.channel_types()}
    named: set[tuple[str, str]] = set()
    for path in _files():
        where = str(path.relative_to(ROOT))
        for name in _names_in(ast.parse(path.read_text(), where), channels):
            if any(where.startswith(top) and name == n for top, n in NOT_A_CHANNEL):
                continue
            named.add((where, name))
    assert named - KNOWN == set(), "name the channel type's property instead (bots/channel.py)"
    assert KNOWN - named == set(), "no longer named there: take it off KNOWN"


def test_the_scan_finds_what_it_looks_for() -> None:
    tree = ast.parse(
        'if item.channel == "telegram": pass\n'
        "x = Channel.SMS\n"
        "person.whatsapp_e164 = None\n"
        'key = f"sms:{n}"\n'
    )
    assert _names_in(tree, {"telegram", "sms", "whatsapp"}) == {
        "telegram",
        "Channel.SMS",
        "whatsapp_e164",
        "sms:",
    }
