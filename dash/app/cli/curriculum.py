"""`dash curriculum ...`: list, validate and show curricula.

A Typer sub-app so the main CLI can mount it with ``app.add_typer(app, name="curriculum")``.
Faculty edit YAML, so ``validate`` prints every problem as ``FILE: field.path: message`` (the
same text ``Problem.__str__`` gives) and exits 1, which also makes it usable in CI.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from dash.curriculum import Curriculum, Problem

# dash.curriculum (pydantic models, YAML, Jinja) is imported inside the commands: `dash --help`
# registers this sub-app and should not pay for it.

app = typer.Typer(
    help="Curricula: list the shipped topics, validate YAML files, show one topic.",
    no_args_is_help=True,
)


def _console() -> Console:
    from rich.console import Console

    # Created per call so CliRunner's captured stdout is used, and long lines are not wrapped
    # into broken "FILE: path: message" lines.
    return Console(soft_wrap=True, highlight=False)


def _fail(message: str) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(1)


@app.command("list")
def list_command() -> None:
    """Table of shipped curricula: topic, version, title, languages, measures."""
    from dash.curriculum import CurriculumError, list_topics, load_curriculum

    # Plain aligned columns: drawing with rich cost a tenth of this command's start-up.
    rows = [("topic", "version", "languages", "measures", "title")]
    for topic in list_topics():
        try:
            cur = load_curriculum(topic)
        except CurriculumError as exc:
            rows.append((topic, "-", "-", "-", f"INVALID ({len(exc.problems)} problems)"))
            continue
        rows.append(
            (
                topic,
                str(cur.version),
                ", ".join(cur.languages),
                str(len(cur.measures)),
                cur.title.get("en") or "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        typer.echo("  ".join([*cells, row[-1]]).rstrip())


@app.command("validate")
def validate_command(
    path: Annotated[
        Path | None,
        typer.Argument(help="A curriculum file or a folder of them; default: every shipped one."),
    ] = None,
) -> None:
    """Check curricula; print each problem as FILE: field.path: message; exit 1 on any."""
    from dash.curriculum import (
        CURRICULUM_FILE,
        curricula_root,
        iter_curriculum_files,
        list_topics,
        validate_file,
    )

    if path is None:
        root = curricula_root()
        files: list = [root.joinpath(topic, CURRICULUM_FILE) for topic in list_topics()]
    else:
        if not path.exists():
            _fail(f"{path}: no such file or folder")
        files = iter_curriculum_files(path)
    if not files:
        _fail(f"{path}: no curriculum files (*.yaml) found")
    problems: list[Problem] = []
    for file in files:
        problems.extend(validate_file(file))
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        bad = len({p.file for p in problems})
        typer.echo(f"{bad} of {len(files)} curricula invalid, {len(problems)} problems", err=True)
        raise typer.Exit(1)
    typer.echo(f"{len(files)} curricula valid")


@app.command("show")
def show_command(
    topic: Annotated[str, typer.Argument(help="Topic, e.g. opioid-safety.")],
    lang: Annotated[str, typer.Option(help="Language to show (falls back to English).")] = "en",
) -> None:
    """Readable print of one curriculum: measures, change ideas, sessions."""
    from dash.curriculum import CurriculumError, CurriculumNotFound, load_curriculum

    try:
        cur = load_curriculum(topic)
    except (CurriculumNotFound, CurriculumError) as exc:
        _fail(str(exc).splitlines()[0])
        return
    _print_curriculum(_console(), cur, lang)


#: The team and start date `dash curriculum show` renders the aim for.
EXAMPLE_UNIT = "5 West"
EXAMPLE_START = date(2026, 12, 7)


def example_aim(cur: Curriculum, lang: str) -> str:
    """The aim statement as a team would get it, for an example unit and start date, the
    primary measure's goal and its typical baseline."""
    from dash.texts import render

    measure = cur.primary_measure
    end = EXAMPLE_START + timedelta(days=cur.schedule.days - 1)
    return cur.render_aim(
        lang,
        goal_pct=round((measure.goal or 0) * 100),
        measure_name=measure.name.get(lang),
        end_date=render("agenda_date_label", lang, day=end),
        unit_name=EXAMPLE_UNIT,
        baseline_pct=None if measure.baseline_hint is None else round(measure.baseline_hint * 100),
    ).strip()


def _print_curriculum(console: Console, cur: Curriculum, lang: str) -> None:
    def out(text: str = "", **kwargs: object) -> None:
        # Content is printed as written: no rich markup ("[key]" would be read as a style).
        console.print(text, markup=False, **kwargs)  # type: ignore[arg-type]

    def heading(text: str) -> None:
        out()
        out(text, style="bold")

    out(f"{cur.title.get(lang)}", style="bold")
    out(f"topic {cur.topic}, version {cur.version}, languages {', '.join(cur.languages)}")
    out(cur.summary.get(lang).strip())
    start = f"{EXAMPLE_START:%A} {EXAMPLE_START.day} {EXAMPLE_START:%B}"
    heading(f"Aim (for example: unit {EXAMPLE_UNIT}, a Dash starting {start})")
    out(example_aim(cur, lang))

    heading("Measures")
    for measure in cur.measures:
        flag = " (primary)" if measure.primary else ""
        goal = f"goal {measure.goal:.0%}, {measure.better} is better"
        if measure.baseline_hint is not None:
            goal += f", typical baseline {measure.baseline_hint:.0%}"
        out(f"- {measure.name.get(lang)} [{measure.key}]{flag}: {goal}")
        out(f"    N: {measure.numerator.get(lang).strip()}")
        out(f"    D: {measure.denominator.get(lang).strip()}")

    heading("Change package")
    for idea in cur.change_package:
        out(f"- {idea.title.get(lang)} [{idea.key}]")
        out(f"    {idea.description.get(lang).strip()}")
        out(f"    Why: {idea.evidence.get(lang).strip()}")
        for source in idea.sources:
            out(f"    Source: {source}")

    heading("Sessions")
    for session in cur.sessions:
        out(
            f"{session.number}. {session.title.get(lang)} "
            f"(week {session.week + 1}, session day {session.weekday_index + 1} of the week)"
        )
        teaching = session.teaching.get(lang).strip().replace("\n", "\n    ")
        out(f"    {teaching}")
        out(f"    Bring: {session.bring.get(lang).strip()}")
        out(f"    Plan: {session.planning_prompt.get(lang).strip()}")
        out(f"    Report-out: {session.report_out.get(lang).strip()}")
        out(f"    Coach notes: {session.coach_notes.get(lang).strip()}")

    heading("Sources")
    for source in cur.sources:
        out(f"- {source}")
