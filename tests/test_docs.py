"""Nothing a deployment can set or run goes undocumented (the Datasette habit)."""

from __future__ import annotations

from pathlib import Path

import typer

from dash.cli import app
from dash.settings import Settings

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def _command_paths(typer_app: typer.Typer) -> list[str]:
    group = typer.main.get_group(typer_app)
    paths: list[str] = []
    for name, command in group.commands.items():
        sub = getattr(command, "commands", None)
        if sub:
            paths += [f"{name} {child}" for child in sub]
        else:
            paths.append(name)
    return paths


def test_every_setting_is_documented_in_the_readme() -> None:
    missing = [
        f"DASH_{name.upper()}" for name in Settings.model_fields if f"DASH_{name.upper()}" not in README
    ]
    assert not missing, f"README.md does not document {missing}"


def test_every_command_is_documented_in_the_readme() -> None:
    missing = [path for path in _command_paths(app) if f"dash {path}" not in README]
    assert not missing, f"README.md does not show {missing}"
