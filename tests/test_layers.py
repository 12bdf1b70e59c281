"""The layer rule of README "Layout": only dash.app wires bots and scheduler into dash.

import-linter checks the contracts in pyproject.toml ([tool.importlinter]) over the source
as it is, so the README's test command fails as soon as the core imports bots, scheduler or
dash.app, even inside a function. The second test proves the contracts would catch it: it
plants such an import in a copy of the packages and expects import-linter to refuse it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dash", "bots", "scheduler", "curricula")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the packages under `root`, with the contracts of its pyproject.toml."""
    inherited = os.environ.get("PYTHONPATH")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(root), inherited])))
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command; lint_imports_command()",
            "--no-cache",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_layer_contracts_hold() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.fixture(scope="module")
def copy_of_the_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("layers")
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            root / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.yaml", "*.j2", "static"),
        )
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


@pytest.mark.parametrize(
    ("module", "planted", "contract"),
    [
        # The core reaching a channel from inside a function still counts.
        ("dash/models/__init__.py", "def _x():\n    import bots.delivery\n", "imports bots"),
        ("dash/web/board.py", "def _x():\n    from scheduler import tick\n", "imports scheduler"),
        ("dash/engine/__init__.py", "import dash.app.workers\n", "imports dash.app"),
        ("bots/delivery.py", "def _x():\n    import scheduler.tick\n", "never import each other"),
        ("scheduler/tick.py", "def _x():\n    from dash.app import server\n", "imports dash.app"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(
    copy_of_the_source: Path, module: str, planted: str, contract: str
) -> None:
    path = copy_of_the_source / module
    original = path.read_text(encoding="utf-8")
    path.write_text(original + "\n\n" + planted, encoding="utf-8")
    try:
        result = lint_imports(copy_of_the_source)
    finally:
        path.write_text(original, encoding="utf-8")
    assert result.returncode == 1, result.stdout + result.stderr
    broken = [line for line in result.stdout.splitlines() if line.endswith(" BROKEN")]
    assert any(contract in line for line in broken), result.stdout
