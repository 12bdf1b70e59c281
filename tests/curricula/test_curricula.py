"""Curricula: every shipped file validates and renders; broken files fail with useful paths."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import jinja2
import pytest
from typer.testing import CliRunner

from dash.app.cli.main import app as cli
from dash.curriculum import (
    STEP_KINDS,
    STEP_VARIABLES,
    TOPICS,
    Curriculum,
    CurriculumNotFound,
    LocalText,
    Problem,
    curricula_root,
    list_topics,
    load_all,
    load_curriculum,
    localise,
    render_text,
    validate_file,
)

BROKEN = Path(__file__).parent / "data" / "broken_curricula"


def step_context(cur: Curriculum, kind: str, lang: str) -> dict[str, Any]:
    """Exactly the documented variables of a step kind, with realistic values."""
    measure = cur.primary_measure
    team = {"team_name": "5 West", "unit_name": "5 West Surgery"}
    measure_ctx = measure.as_context(lang, **team)
    values: dict[str, Any] = {
        **team,
        "recipient_name": "Ana Ruiz",
        "coach_name": "Sam Okafor",
        "topic_title": cur.title.render(lang, **team),
        "session": cur.session(2).as_context(lang, **team),
        "join_link": "https://meet.example.org/dash-5west",
        "start_time_local": "14:00",
        "measure_name": measure_ctx["measure_name"],
        "measure_names": [m.name.render(lang, **team) for m in cur.measures],
        "numerator_definition": measure_ctx["numerator_definition"],
        "denominator_definition": measure_ctx["denominator_definition"],
        "measure_prompt": measure.render_prompt(lang, date_label="Tue 3 Dec", **team),
        "date_label": "Tue 3 Dec",
        "missed_days": 2,
        "reporter_names": "Ana Ruiz, Li Wei",
        "key_contact_name": "Priya Shah",
        "pdsa_cycle": 2,
        "pdsa_change": "POSS card on the medication cart",
        "pdsa_prediction": "8 of 10 doses will have a score",
        "completeness_pct": 86,
        "n_cycles": 3,
        "signal_text": "Six days in a row above the baseline median: a shift.",
        "baseline_pct": 55,
        "recent_pct": 78,
        "goal_pct": 90,
        "aim": "By 18 Dec, 90% of opioid doses on 5 West have a POSS score.",
        "cohort_name": "Spring 2025 opioid safety",
        "n_teams": 4,
        "teams_needing_attention": [{"name": "4 North", "reason": "no data for 2 days"}],
        "dashboard_link": "https://dash.example.org/cohorts/7",
    }
    return {name: values[name] for name in STEP_VARIABLES[kind]}


# --- shipped curricula ---------------------------------------------------------------------


def test_all_eight_topics_are_shipped() -> None:
    assert list_topics() == sorted(TOPICS)
    assert set(load_all()) == set(TOPICS)


@pytest.mark.parametrize("topic", TOPICS)
def test_shipped_curriculum_is_valid(topic: str) -> None:
    path = curricula_root().joinpath(topic, "curriculum.yaml")
    assert validate_file(path) == []
    cur = load_curriculum(topic)
    assert cur.topic == topic
    assert len(cur.sessions) == 6
    assert len(cur.change_package) >= 5
    assert all(idea.sources for idea in cur.change_package)
    assert cur.primary_measure in cur.measures


@pytest.mark.parametrize("topic", TOPICS)
def test_no_placeholder_text(topic: str) -> None:
    text = curricula_root().joinpath(topic, "curriculum.yaml").read_text(encoding="utf-8")
    # Upper-case markers as whole words ("todo" is Spanish for "every"), lorem in any case.
    assert not re.search(r"\b(TBD|TODO|FIXME|XXX)\b", text)
    assert "lorem" not in text.lower()


@pytest.mark.parametrize("topic", TOPICS)
def test_every_message_renders_with_documented_variables(topic: str) -> None:
    cur = load_curriculum(topic)
    for lang in cur.languages:
        for kind in STEP_KINDS:
            text = cur.render_message(kind, lang, **step_context(cur, kind, lang))
            assert text.strip()
            assert "{{" not in text and "{%" not in text
        aim = cur.render_aim(
            lang,
            goal_pct=90,
            measure_name=cur.primary_measure.name.get(lang),
            end_date="18 Dec",
            unit_name="5 West",
            baseline_pct=55,
        )
        assert "90%" in aim and "55%" in aim
        no_baseline = cur.render_aim(
            lang,
            goal_pct=90,
            measure_name="m",
            end_date="18 Dec",
            unit_name="5 West",
            baseline_pct=None,
        )
        assert "55" not in no_baseline


@pytest.mark.parametrize("topic", TOPICS)
def test_whatsapp_variables_resolve_from_step_context(topic: str) -> None:
    cur = load_curriculum(topic)
    for kind, template in cur.whatsapp_templates.items():
        values = template.content_variables(step_context(cur, kind, "en"))
        assert list(values) == [str(i) for i in range(1, len(template.variables) + 1)]
        assert all(values.values())


def test_summary_handles_missing_figures() -> None:
    cur = load_curriculum("sepsis")
    ctx = step_context(cur, "midpoint_summary", "en") | {
        "recent_pct": None,
        "baseline_pct": None,
        "signal_text": "",
    }
    text = cur.render_message("midpoint_summary", "en", **ctx)
    assert "None" not in text
    assert "no baseline" in text


def test_missing_variable_raises_instead_of_blanking() -> None:
    cur = load_curriculum("vte")
    ctx = step_context(cur, "nudge_reporter", "en")
    del ctx["missed_days"]
    with pytest.raises(jinja2.UndefinedError):
        cur.render_message("nudge_reporter", "en", **ctx)


def test_opioid_safety_renders_in_spanish() -> None:
    cur = load_curriculum("opioid-safety")
    assert cur.languages == ["en", "es"]
    reminder = cur.render_message(
        "session_reminder", "es", **step_context(cur, "session_reminder", "es")
    )
    assert "la sesión 2 de 6" in reminder
    assert "Primera prueba" in reminder
    prompt = cur.primary_measure.render_prompt("es", date_label="3 dic", team_name="5 Oeste")
    assert "recuento del 3 dic" in prompt
    assert "POSS registrada" in prompt
    assert cur.whatsapp_templates["daily_prompt"].sid_for("es") != cur.whatsapp_templates[
        "daily_prompt"
    ].sid_for("en")
    # Fallbacks: an undeclared language reads English; a regional variant reads its base.
    assert cur.title.get("fr") == cur.title.get("en")
    assert cur.title.get("es-MX") == cur.title.get("es")


def test_sessions_map_onto_two_weeks_of_three_session_days() -> None:
    cur = load_curriculum("delirium")
    assert [(s.week, s.weekday_index) for s in cur.sessions] == [
        (0, 0),
        (0, 1),
        (0, 2),
        (1, 0),
        (1, 1),
        (1, 2),
    ]


def test_unknown_topic_lists_known_ones() -> None:
    with pytest.raises(CurriculumNotFound) as info:
        load_curriculum("falls")
    assert "falls" in str(info.value)
    assert "opioid-safety" in str(info.value)


def test_localise_and_render_text_accept_plain_and_mapping() -> None:
    assert localise("Hello", "es") == "Hello"
    assert localise({"en": "Hello", "es": "Hola"}, "es") == "Hola"
    assert render_text({"en": "Hi {{ name }}", "es": "Hola {{ name }}"}, "es", name="Ana") == (
        "Hola Ana"
    )
    with pytest.raises(ValueError, match="'en'"):
        LocalText.model_validate({"es": "Hola"})
    with pytest.raises(ValueError, match="Jinja2"):
        LocalText.model_validate("Hi {{ name")


# --- broken files ----------------------------------------------------------------------------

BROKEN_CASES = [
    ("missing_field.yaml", "summary", "required field is missing"),
    ("wrong_type.yaml", "version", "valid integer"),
    ("five_sessions.yaml", "sessions", "exactly 6 sessions are required, found 5"),
    ("duplicate_slot.yaml", "sessions.2.slot", "slot 2 is already used by sessions.1"),
    ("goal_out_of_range.yaml", "measures.0.goal", "less than or equal to 1"),
    ("missing_translation.yaml", "sessions.3.title", "missing translation: es"),
    ("bad_jinja.yaml", "messages.session_reminder", "invalid Jinja2 template"),
    ("bad_content_sid.yaml", "whatsapp_templates.nudge_key_contact.content_sid", "ContentSid"),
    ("yaml_syntax_error.yaml", "<yaml>", "syntax error at line 9"),
]


@pytest.mark.parametrize(("name", "field", "message"), BROKEN_CASES)
def test_broken_file_reports_field_path_and_message(name: str, field: str, message: str) -> None:
    problems = validate_file(BROKEN / name)
    assert problems, name
    assert [p.field for p in problems] == [field]
    assert message in problems[0].message
    assert problems[0].file.endswith(name)


def test_every_broken_fixture_is_covered() -> None:
    assert sorted(p.name for p in BROKEN.glob("*.yaml")) == sorted(c[0] for c in BROKEN_CASES)


def test_problem_lines_point_into_the_file() -> None:
    (problem,) = validate_file(BROKEN / "goal_out_of_range.yaml")
    line = (BROKEN / "goal_out_of_range.yaml").read_text().splitlines()[problem.line - 1]
    assert line.strip() == "goal: 1.5"


def test_topic_must_match_folder(tmp_path: Path) -> None:
    folder = tmp_path / "sepsis"
    folder.mkdir()
    shutil.copy(curricula_root().joinpath("vte", "curriculum.yaml"), folder / "curriculum.yaml")
    (problem,) = validate_file(folder / "curriculum.yaml")
    assert problem.field == "topic"


def test_unknown_template_variable_is_caught(tmp_path: Path) -> None:
    source = curricula_root().joinpath("vte", "curriculum.yaml").read_text(encoding="utf-8")
    broken = source.replace("{{ measure_prompt }}", "{{ measure_question }}", 1)
    path = tmp_path / "typo.yaml"
    path.write_text(broken, encoding="utf-8")
    (problem,) = validate_file(path)
    assert problem.field == "messages.daily_prompt"
    assert "measure_question" in problem.message


def test_unquoted_time_gets_a_hint(tmp_path: Path) -> None:
    source = curricula_root().joinpath("vte", "curriculum.yaml").read_text(encoding="utf-8")
    path = tmp_path / "time.yaml"
    path.write_text(source.replace('daily_prompt_time: "18:00"', "daily_prompt_time: 18:00"))
    (problem,) = validate_file(path)
    assert problem.field == "schedule.daily_prompt_time"
    assert "quotes" in problem.message


# --- command line ----------------------------------------------------------------------------

runner = CliRunner()


def test_cli_list() -> None:
    result = runner.invoke(cli, ["curriculum", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for topic in TOPICS:
        assert topic in result.output
    assert "en, es" in result.output


def test_cli_validate_shipped() -> None:
    result = runner.invoke(cli, ["curriculum", "validate"])
    assert result.exit_code == 0, result.output
    assert "8 curricula valid" in result.output


def test_cli_validate_single_file_ok() -> None:
    path = str(curricula_root().joinpath("sepsis", "curriculum.yaml"))
    result = runner.invoke(cli, ["curriculum", "validate", path])
    assert result.exit_code == 0, result.output
    assert "1 curricula valid" in result.output


def test_cli_validate_broken_folder() -> None:
    result = runner.invoke(cli, ["curriculum", "validate", str(BROKEN)])
    assert result.exit_code == 1
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == len(BROKEN_CASES)
    for line in lines:
        assert re.match(r"^\S+\.yaml: \S+: .+", line), line
    assert any("goal_out_of_range.yaml: measures.0.goal: Input should be" in x for x in lines)


def test_cli_validate_missing_path() -> None:
    result = runner.invoke(cli, ["curriculum", "validate", "/nonexistent/curriculum.yaml"])
    assert result.exit_code == 1
    assert "no such file" in result.stderr


def test_cli_show() -> None:
    result = runner.invoke(cli, ["curriculum", "show", "opioid-safety"])
    assert result.exit_code == 0, result.output
    for heading in ("Measures", "Change package", "Sessions", "[poss-before-dose]"):
        assert heading in result.stdout
    spanish = runner.invoke(cli, ["curriculum", "show", "opioid-safety", "--lang", "es"])
    assert "Seguridad con opioides" in spanish.stdout


def test_cli_show_unknown_topic() -> None:
    result = runner.invoke(cli, ["curriculum", "show", "falls"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "known topics" in result.stderr


def test_problem_str_format() -> None:
    problem = Problem("a.yaml", "sessions.3.title", "missing translation: es", 12)
    assert str(problem) == "a.yaml: sessions.3.title: missing translation: es (line 12)"


def test_readme_documents_every_step_kind_and_variable() -> None:
    readme = curricula_root().joinpath("README.md").read_text(encoding="utf-8")
    for kind, names in STEP_VARIABLES.items():
        assert f"`{kind}`" in readme, kind
        for name in names:
            assert f"`{name}`" in readme, name
    for field in Curriculum.model_fields:
        assert f"`{field}`" in readme, field


def test_every_shipped_curriculum_gives_examples_in_its_own_words() -> None:
    """PLAN's prediction example and the adopted-change story come from the team's topic (a
    sepsis team was shown an opioid dose as the model answer)."""
    for topic, curriculum in load_all().items():
        assert curriculum.examples is not None, topic
        for lang in curriculum.languages:
            assert curriculum.examples.prediction.render(lang), (topic, lang)
            assert curriculum.examples.story.render(lang), (topic, lang)
    opioid = load_all()["opioid-safety"].examples
    assert opioid is not None and "dose" in opioid.prediction.render("en")
    for topic in ("sepsis", "delirium"):
        examples = load_all()[topic].examples
        assert examples is not None and "dose" not in examples.prediction.render("en")
