"""The corpus runner itself: a conversation that does not go as written fails, naming the
step, the actor, what was expected and the replies received."""

from __future__ import annotations

from pathlib import Path

import pytest

from dash.context import AppContext
from tests.support.conversations import ConversationError, load, run

ENROL = """
title: a kc starts enrolling by SMS
covers: runner
channel: sms
actors:
  kc: {address: "+12025550101"}
steps:
  - kc: "JOIN {code}"
    expect: [%s]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "case.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_missing_phrase_names_step_actor_and_replies(ctx: AppContext, tmp_path: Path) -> None:
    with pytest.raises(ConversationError) as failed:
        run(ctx, load(_write(tmp_path, ENROL % '"a phrase nobody sends"')))
    message = str(failed.value)
    assert "step 1 (kc: 'JOIN {code}')" in message
    assert "expected kc to get 'a phrase nobody sends'" in message
    assert "replies to kc:" in message and "What is your name?" in message


def test_a_failed_check_says_what_was_found(ctx: AppContext, tmp_path: Path) -> None:
    text = ENROL % '"name"' + "".join(
        f"  - kc: {answer}\n" for answer in ("Maria", "St Mary's", "5 West", "5", "4", "3", "4", "5")
    ) + "  - check: {team_state: enrolled}\n"
    with pytest.raises(ConversationError, match="expected the team's state 'enrolled'"):
        run(ctx, load(_write(tmp_path, text)))


def test_unknown_keys_are_errors_not_ignored(ctx: AppContext, tmp_path: Path) -> None:
    with pytest.raises(ConversationError, match="unknown top-level keys"):
        load(_write(tmp_path, ENROL % '"name"' + "expectations: []\n"))
    with pytest.raises(ConversationError, match="unknown check 'flagged'"):
        run(ctx, load(_write(tmp_path, ENROL % '"name"' + "  - check: {flagged: true}\n")))


def test_wait_moves_the_clock_and_runs_the_scheduler(ctx: AppContext, tmp_path: Path) -> None:
    text = """
title: the morning prompt arrives after a wait
covers: runner
channel: sms
actors:
  kc: {address: "+12025550101"}
  leader: {address: "+12025550102"}
given:
  - enrolled: {key_contact: kc, leader: leader}
steps:
  - wait: 1d
    others: {kc: ["POSS documented before opioid doses"]}
"""
    run(ctx, load(_write(tmp_path, text)))
    with pytest.raises(ConversationError, match="expected no replies to kc"):
        run(ctx, load(_write(tmp_path, text.replace('["POSS documented before opioid doses"]', "[]"))))
