"""The conversation corpus: every YAML file under tests/conversations/ is one case, played
through the real engine by tests.support.conversations (format: README.md here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dash.context import AppContext
from tests.support.conversations import ConversationError, load, run

HERE = Path(__file__).parent
FILES = sorted(HERE.rglob("*.yaml"))


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(HERE)) for p in FILES])
def test_conversation(ctx: AppContext, path: Path) -> None:
    failure = None
    try:
        run(ctx, load(path))
    except ConversationError as exc:
        failure = str(exc)
    if failure is not None:  # the step, the actor and the replies say it all: no traceback
        pytest.fail(failure, pytrace=False)
