"""`dash demo [--db PATH] [--seed N] [--days 14] [--quiet]`: a simulated two-week Dash.

dash.app.cli.main adds `demo_command` as `dash demo`. It needs no configuration: a fresh
SQLite database (default ./demo/dash-demo.db, recreated each run; never the configured
database), the console channel, and an accelerated clock (dash.app.demo.simulation). On stderr it shows its
progress from the start: a line per step and per simulated day, with a progress bar on a
terminal. On stdout it prints a summary table per team, where the transcript and the cohort
reports are, and ends with the line `report: /abs/path/index.html`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from dash.errors import UserError

DEFAULT_DB = Path("demo") / "dash-demo.db"


def _configured_database() -> Path | None:
    """The file of the configured SQLite database (the one `dash serve` uses), if any."""
    from sqlalchemy.engine import make_url

    from dash.settings import get_settings

    url = make_url(get_settings().database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).resolve()


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def summary_table(rows: list[dict[str, Any]]) -> Any:
    """The per-team summary as a rich Table, readable in an 80-column terminal."""
    from rich import box
    from rich.table import Table

    table = Table(
        title="Improvement Dash demo: teams at the end",
        title_justify="left",
        caption="Data: days with data / days asked. PDSA: cycles started/finished. "
        "Out: opted out (STOP).",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        padding=(0, 1),
        collapse_padding=True,
    )
    table.add_column("Team", min_width=12, max_width=22)
    table.add_column("Topic, zone", min_width=16)
    table.add_column("Data", justify="right", no_wrap=True)
    table.add_column("PDSA", justify="right", no_wrap=True)
    table.add_column("Signal", no_wrap=True)
    table.add_column("Nudges", justify="right", no_wrap=True)
    table.add_column("Messages", justify="right", no_wrap=True)
    table.add_column("Out", justify="right", min_width=3)
    for row in rows:
        unit, _, organisation = row["team"].partition(", ")
        table.add_row(
            f"{unit}\n[dim]{organisation}[/dim]",
            f"{row['topic']}\n[dim]{row['timezone']}[/dim]",
            f"{_pct(row['completeness'])}\n[dim]{row['days_with_data']}/{row['days_asked']}[/dim]",
            f"{row['pdsa_started']}/{row['pdsa_finished']}",
            row["signal"] or "none",
            str(row["nudges"]),
            f"{row['messages_in']} in\n{row['messages_out']} out",
            str(row["opted_out"]),
        )
    return table


def demo_command(
    db: Annotated[
        Path, typer.Option("--db", help="The demo's SQLite file (recreated; reports go beside it).")
    ] = DEFAULT_DB,
    seed: Annotated[
        int, typer.Option(help="Seed for the simulated people: same seed, same run.")
    ] = 1,
    days: Annotated[
        int, typer.Option(min=1, max=14, help="Dash days to simulate (after 3 baseline days).")
    ] = 14,
    quiet: Annotated[
        bool, typer.Option("--quiet", help="Only the summary and the report.")
    ] = False,
) -> None:
    """Run a whole simulated two-week Dash (four teams, three cohorts and time zones, the
    console channel, an accelerated clock) and print where its report is."""
    from rich.console import Console

    target = db.expanduser().resolve()
    if target in (_configured_database(), Path("dash.db").resolve()):
        raise UserError(
            f"{target} is (or may be) your real database; the demo recreates its "
            "database, so give it another --db path"
        )
    if target.exists() and target.is_dir():
        raise UserError(f"--db {target} is a folder: give a file path such as demo/dash-demo.db")
    # Progress goes to stderr, so `dash demo > summary.txt` keeps the summary and the paths.
    progress_out = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

    def note(text: str) -> None:
        if not quiet:
            progress_out.print(text, highlight=False, markup=False)

    # Said before anything slow (the engine's imports, the migrations) starts.
    note(f"dash demo: a fresh database at {target} (seed {seed})")
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from dash.app.demo.simulation import run_demo

    console = Console(width=None if sys.stdout.isatty() else 160)
    # A bar on a terminal; elsewhere (CI logs, a pipe) a plain line per simulated day.
    bar = progress_out.is_terminal and not quiet
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=progress_out,
        transient=True,
        disable=not bar,
    )

    with progress:
        task = progress.add_task("preparing", total=1.0)

        def stage(text: str) -> None:
            note(text)
            progress.update(task, description=text.split(" ", 1)[0])  # "simulating", "writing"

        result = run_demo(
            target,
            seed=seed,
            days=days,
            on_day=note,
            on_progress=(lambda share: progress.update(task, completed=share)) if bar else None,
            on_stage=stage,
        )
    console.print(summary_table(result.rows))
    console.print(
        f"simulated {result.simulated_from:%d %b %Y %H:%M} to {result.simulated_to:%d %b %Y %H:%M}"
        f" UTC: {result.inbound} messages in, {result.delivered} delivered, "
        f"in {result.elapsed_seconds:.1f} s (seed {seed})",
        highlight=False,
    )
    typer.echo(f"database: {result.db_path}")
    typer.echo(f"transcript: {result.transcript_path}")
    for path in result.report_paths:
        typer.echo(f"cohort report: {path}")
    typer.echo(f"report: {result.index_path}")
