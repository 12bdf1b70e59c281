"""What a process loads before it does anything: `dash --help` and the serving processes.

Each check runs in a fresh interpreter (this one has imported everything already) and looks at
sys.modules, so it holds however fast or busy the machine is. The times themselves are
measured by bench/bench_startup.py, not here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def loaded_after(code: str) -> set[str]:
    """The top-level names of every module loaded once `code` has run in a new interpreter."""
    probe = (
        "import json, sys\n"
        f"{code}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} "
        "| {m for m in sys.modules if m.startswith('dash.')})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


HELP = (
    "from dash.app.cli.main import app\n"
    "try:\n"
    "    app(['--help'], prog_name='dash')\n"
    "except SystemExit:\n"
    "    pass\n"
)


def test_help_loads_none_of_the_heavy_libraries() -> None:
    loaded = loaded_after(HELP)
    heavy = {
        "matplotlib",
        "scipy",
        "numpy",
        "telegram",
        "twilio",
        "sqlalchemy",
        "alembic",
        "uvicorn",
        "starlette",
        "asyncio",
        "bots",
        "scheduler",
        "dash.curriculum",
        "dash.engine",
    }
    assert loaded & heavy == set()


def test_help_still_shows_every_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dash", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    for command in ("init", "serve", "demo", "curriculum", "worker", "dispatch", "cohort"):
        assert command in done.stdout


def test_curriculum_list_loads_no_database_code() -> None:
    loaded = loaded_after(
        "from dash.app.cli.main import app\n"
        "try:\n"
        "    app(['curriculum', 'list'], prog_name='dash')\n"
        "except SystemExit:\n"
        "    pass\n"
    )
    assert "dash.curriculum" in loaded  # it did list them
    assert loaded & {"sqlalchemy", "alembic", "matplotlib", "scipy", "numpy"} == set()


def test_the_engine_and_the_server_draw_no_chart_at_start() -> None:
    # What `dash serve` and `dash worker` load before they listen: charts (matplotlib) are
    # imported when the first one is drawn, and the run-chart rules need no scipy at all.
    loaded = loaded_after("import dash.engine.router, dash.app.server, dash.report, dash.metrics")
    assert "dash.engine.router" in loaded
    assert loaded & {"matplotlib", "scipy"} == set()
