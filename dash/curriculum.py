"""Curricula as data: the versioned YAML format, its validation and its loader.

A curriculum is everything topic-specific in a two-week Improvement Dash (measures, change
package, six sessions, the schedule rules and the text of every scheduled message). It lives in
``curricula/<topic>/curriculum.yaml`` so that clinical faculty can edit content without touching
code, and it is validated strictly (pydantic, ``extra="forbid"``) so that a typo fails in
``dash curriculum validate`` rather than at 6 a.m. on a ward. The format is documented field by
field in ``curricula/README.md``.

Paths in problems are dotted, with **0-based** list indices (``sessions.0`` is the first session
in the file), the same convention pydantic uses, so every problem has one spelling.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import time
from functools import cache, lru_cache
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import jinja2
import jinja2.meta
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

FORMAT_VERSION = 1
"""The only ``format_version`` this code reads; bump it on a breaking change of the format."""

Topic = Literal[
    "opioid-safety",
    "pressure-ulcers",
    "vte",
    "sepsis",
    "delirium",
    "c-difficile",
    "choosing-wisely",
    "knowing-your-doctor",
]
TOPICS: tuple[str, ...] = get_args(Topic)

StepKind = Literal[
    "session_reminder",
    "session_followup",
    "daily_prompt",
    "nudge_reporter",
    "nudge_key_contact",
    "nudge_leader",
    "pdsa_followup",
    "midpoint_summary",
    "final_summary",
    "coach_digest",
]
STEP_KINDS: tuple[str, ...] = get_args(StepKind)

# Steps that may reach a team member outside WhatsApp's 24-hour window need an approved template.
# The coach digest goes to coaches, who are reached on e-mail/dashboard or a channel they opened.
TEMPLATE_EXEMPT_STEPS: frozenset[str] = frozenset({"coach_digest"})

# ---------------------------------------------------------------------------------------------
# Template variables. Rendering uses StrictUndefined, so a template may only use the variables the
# engine promises to pass; validation checks every template against these sets.
# ---------------------------------------------------------------------------------------------

STATIC_VARIABLES: frozenset[str] = frozenset({"team_name", "unit_name"})
"""Variables allowed in content texts (titles, teaching, change ideas, definitions, notes)."""

PROMPT_VARIABLES: frozenset[str] = frozenset(
    {"measure_name", "date_label", "team_name", "numerator_definition", "denominator_definition"}
)
"""Variables of ``Measure.prompt``."""

AIM_VARIABLES: frozenset[str] = frozenset(
    {"goal_pct", "measure_name", "end_date", "unit_name", "baseline_pct"}
)
"""Variables of ``Curriculum.aim_template``."""

SESSION_ATTRIBUTES: frozenset[str] = frozenset(
    {"number", "title", "teaching", "bring", "planning_prompt", "report_out"}
)
"""Attributes of the ``session`` variable (rendered strings, and the number)."""

_TEAM_STEP = frozenset({"team_name", "unit_name", "recipient_name", "coach_name", "topic_title"})
_SUMMARY = frozenset(
    {
        "measure_name",
        "completeness_pct",
        "n_cycles",
        "signal_text",
        "baseline_pct",
        "recent_pct",
        "goal_pct",
        "aim",
    }
)
STEP_VARIABLES: dict[str, frozenset[str]] = {
    "session_reminder": _TEAM_STEP | {"session", "join_link", "start_time_local"},
    "session_followup": _TEAM_STEP | {"session"},
    "daily_prompt": _TEAM_STEP
    | {
        "measure_name",
        "measure_prompt",
        "date_label",
        "numerator_definition",
        "denominator_definition",
    },
    "nudge_reporter": _TEAM_STEP | {"measure_name", "measure_names", "date_label", "missed_days"},
    "nudge_key_contact": _TEAM_STEP
    | {"measure_name", "measure_names", "date_label", "missed_days", "reporter_names"},
    "nudge_leader": _TEAM_STEP
    | {"measure_name", "measure_names", "missed_days", "reporter_names", "key_contact_name"},
    "pdsa_followup": _TEAM_STEP | {"pdsa_cycle", "pdsa_change", "pdsa_prediction"},
    "midpoint_summary": _TEAM_STEP | _SUMMARY,
    "final_summary": _TEAM_STEP | _SUMMARY,
    "coach_digest": frozenset(
        {
            "coach_name",
            "cohort_name",
            "topic_title",
            "date_label",
            "n_teams",
            "teams_needing_attention",
            "dashboard_link",
        }
    ),
}
"""The variables each step kind's message is rendered with (documented in curricula/README.md)."""

UNTRANSLATED_SUFFIXES: tuple[str, ...] = (".coach_notes",)
"""Texts read only by faculty: English is enough, other declared languages are optional."""

# Chat text is not HTML: no autoescaping. Block tags swallow their own line so YAML block scalars
# can use {% if %} without leaving blank lines.
_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,  # noqa: S701 - plain-text chat messages, never HTML
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=False,
)

LANG_RE = re.compile(r"^[a-z]{2,3}(-[A-Z]{2})?$")
SLUG_RE = r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$"
CONTENT_SID_RE = r"^HX[0-9a-f]{32}$"
_PLACEHOLDER_RE = re.compile(r"\{\{(\d+)\}\}")


class CurriculumError(ValueError):
    """A curriculum file is unreadable or invalid; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class CurriculumNotFound(LookupError):
    """No shipped curriculum for the requested topic; the message lists the known topics."""

    def __init__(self, topic: str, known: Iterable[str]) -> None:
        self.topic = topic
        self.known = sorted(known)
        super().__init__(
            f"no curriculum for topic {topic!r}; known topics: {', '.join(self.known) or 'none'}"
        )

    def __str__(self) -> str:  # LookupError would otherwise repr() the args
        return str(self.args[0])


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a curriculum file.

    ``field`` is a dotted path with 0-based list indices (``sessions.3.title`` is the fourth
    session's title), ``<yaml>`` for a syntax error, ``<document>`` for the file as a whole.
    ``line`` is the 1-based line in the file when it can be found.
    """

    file: str
    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        # A YAML syntax error already names its line and column in the message.
        show_line = self.line is not None and self.field != "<yaml>"
        where = f" (line {self.line})" if show_line else ""
        return f"{self.file}: {self.field}: {self.message}{where}"


# ---------------------------------------------------------------------------------------------
# Localised text
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _compile(source: str) -> jinja2.Template:
    """Compile once per distinct source; curricula are immutable once loaded."""
    return _ENV.from_string(source)


def template_variables(source: str) -> set[str]:
    """Top-level names a Jinja2 template reads from its context (so we can check them early)."""
    return set(_template_variables(source))


@lru_cache(maxsize=4096)
def _template_variables(source: str) -> frozenset[str]:
    if "{" not in source:  # every Jinja2 delimiter starts with "{": most texts have none
        return frozenset()
    return frozenset(jinja2.meta.find_undeclared_variables(_ENV.parse(source)))


def _check_template(source: str) -> None:
    try:
        _template_variables(source)  # parsed once: the variables are asked for next
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(
            f"invalid Jinja2 template: {exc.message} (template line {exc.lineno})"
        ) from None


class LocalText(RootModel[dict[str, str]]):
    """A text in one or more languages; each value is a Jinja2 template.

    Written in YAML either as a plain string (English) or as a mapping ``{en: ..., es: ...}``
    with ``en`` required. Always stored as the mapping.
    """

    model_config = ConfigDict(frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _from_plain_string(cls, value: Any) -> Any:
        if isinstance(value, LocalText):
            return value.root
        if isinstance(value, str):
            return {"en": value}
        if isinstance(value, Mapping):
            return value
        raise ValueError(
            "expected text: a string, or a mapping of language code to string with 'en'"
        )

    @model_validator(mode="after")
    def _check(self) -> LocalText:
        if "en" not in self.root:
            raise ValueError("the English text ('en') is required")
        for lang, source in self.root.items():
            if not LANG_RE.match(lang):
                raise ValueError(f"{lang!r} is not a language code like 'es' or 'pt-BR'")
            if not source.strip():
                raise ValueError(f"the {lang!r} text is empty")
            try:
                _check_template(source)
            except ValueError as exc:
                raise ValueError(f"{lang}: {exc}") from None
        return self

    @property
    def languages(self) -> frozenset[str]:
        """Languages this text is written in."""
        return frozenset(self.root)

    def get(self, lang: str) -> str:
        """Source in ``lang``, else its base language (``pt`` for ``pt-BR``), else English."""
        if lang in self.root:
            return self.root[lang]
        base = lang.split("-", 1)[0]
        return self.root.get(base, self.root["en"])

    def render(self, lang: str = "en", /, **context: Any) -> str:
        """Render in ``lang`` with StrictUndefined (a missing variable raises, never blanks)."""
        return _compile(self.get(lang)).render(**context).strip()

    def variables(self) -> set[str]:
        """Every top-level variable any language of this text uses."""
        names: set[str] = set()
        for source in self.root.values():
            names |= template_variables(source)
        return names


TextLike = LocalText | str | Mapping[str, str]


def localise(text: TextLike, lang: str = "en") -> str:
    """The source of ``text`` in ``lang`` with fallback to English (no rendering)."""
    return LocalText.model_validate(text).get(lang)


def render_text(text: TextLike, lang: str = "en", /, **context: Any) -> str:
    """Render a localised Jinja2 text with StrictUndefined; surrounding whitespace is stripped."""
    return LocalText.model_validate(text).render(lang, **context)


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

_STRICT = ConfigDict(extra="forbid", frozen=True)
Slug = Annotated[str, Field(pattern=SLUG_RE, max_length=60)]
NonEmpty = Annotated[str, Field(min_length=1)]


def _parse_hhmm(value: Any) -> Any:
    """Accept only "HH:MM" strings; explain YAML's sexagesimal trap (unquoted 18:00 is 1080)."""
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError('write times in quotes, e.g. "18:00" (YAML reads 18:00 as a number)')
    if not isinstance(value, str) or not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
        raise ValueError(f'expected a 24-hour time "HH:MM", got {value!r}')
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


HHMM = Annotated[time, BeforeValidator(_parse_hhmm)]


class Measure(BaseModel):
    """A daily count the unit can do: numerator over denominator, reported as ``N/D``."""

    model_config = _STRICT

    key: Slug = Field(description="Stable identifier; stored with every data point. Never rename.")
    name: LocalText = Field(description="Short name shown in prompts, charts and summaries.")
    numerator: LocalText = Field(description="Definition of what counts in the numerator.")
    denominator: LocalText = Field(description="Definition of the denominator (the population).")
    better: Literal["higher", "lower"] = Field(description="Direction of improvement.")
    goal: float = Field(ge=0, le=1, description="Target proportion, 0..1 (0.9 means 90%).")
    baseline_hint: float | None = Field(
        default=None, ge=0, le=1, description="Typical starting proportion, to calibrate aims."
    )
    prompt: LocalText = Field(
        description="The daily question. Variables: measure_name, date_label, team_name, "
        "numerator_definition, denominator_definition."
    )
    primary: bool = Field(default=False, description="The measure the aim is about; one only.")

    def as_context(self, lang: str = "en", /, **context: Any) -> dict[str, str]:
        """Rendered name and definitions, ready to pass to a prompt or message template."""
        return {
            "measure_name": self.name.render(lang, **context),
            "numerator_definition": self.numerator.render(lang, **context),
            "denominator_definition": self.denominator.render(lang, **context),
        }

    def render_prompt(
        self, lang: str, /, *, date_label: str, team_name: str, **context: Any
    ) -> str:
        """The daily question for this measure and date, in ``lang``."""
        ctx = {"team_name": team_name, **context}
        return self.prompt.render(
            lang, date_label=date_label, team_name=team_name, **self.as_context(lang, **ctx)
        )


class ChangeIdea(BaseModel):
    """A proven change the team may test, with why it works and where that is published."""

    model_config = _STRICT

    key: Slug = Field(description="Stable identifier; PDSA cycles may refer to it.")
    title: LocalText = Field(description="Short name of the change.")
    description: LocalText = Field(description="What to do, concretely, on a unit.")
    evidence: LocalText = Field(description="Why it works (mechanism and published results).")
    sources: list[NonEmpty] = Field(min_length=1, description="Real citations.")


class Examples(BaseModel):
    """Examples the chat gives in this topic's own words, so a sepsis team is never shown an
    opioid dose as the model answer."""

    model_config = _STRICT

    prediction: LocalText = Field(
        description="A PDSA prediction with a number in it (PLAN's second question)."
    )
    story: LocalText = Field(description="A one-line story of an adopted change, to share.")


class Session(BaseModel):
    """One of the six team sessions (30-60 minutes, three a week for two weeks)."""

    model_config = _STRICT

    number: int = Field(ge=1, le=6, description="1..6, the order sessions are taught in.")
    slot: int = Field(
        ge=1,
        le=6,
        description="k-th session day of the Dash: week (k-1)//3, weekday index (k-1)%3 into "
        "the cohort's three session weekdays.",
    )
    title: LocalText
    teaching: LocalText = Field(description="Short teaching, readable on a phone; <= 700 chars.")
    bring: LocalText = Field(description="What to bring; goes in the reminder.")
    planning_prompt: LocalText = Field(description="What the team plans during the session.")
    report_out: LocalText = Field(description="Question the team answers at report-out.")
    coach_notes: LocalText = Field(description="For faculty only; English is fine.")

    @field_validator("teaching")
    @classmethod
    def _short_teaching(cls, value: LocalText) -> LocalText:
        for lang, source in value.root.items():
            if len(source.strip()) > 700:
                raise ValueError(
                    f"{lang}: teaching is {len(source.strip())} characters; at most 700 "
                    "(it is read on a phone between tasks)"
                )
        return value

    @property
    def week(self) -> int:
        """0-based week of the Dash this session falls in."""
        return (self.slot - 1) // 3

    @property
    def weekday_index(self) -> int:
        """Index (0..2) into the cohort's three session weekdays."""
        return (self.slot - 1) % 3

    def as_context(self, lang: str = "en", /, **context: Any) -> dict[str, Any]:
        """The ``session`` variable of messages: number and rendered texts (not coach notes)."""
        rendered: dict[str, Any] = {"number": self.number}
        for name in ("title", "teaching", "bring", "planning_prompt", "report_out"):
            rendered[name] = getattr(self, name).render(lang, **context)
        return rendered


class Schedule(BaseModel):
    """Timing rules the scheduler compiles into agenda rows (all times local to the unit)."""

    model_config = _STRICT

    days: Literal[14] = Field(description="Length of the Dash in days.")
    baseline_days: int = Field(ge=0, le=7, description="Days before the start with a prompt.")
    daily_prompt_time: HHMM = Field(description="When the daily measure prompt goes out.")
    reminder_before_minutes: int = Field(ge=5, le=1440, description="Reminder lead time.")
    followup_after_minutes: int = Field(
        ge=0, le=1440, description="Minutes after a session's start that its follow-up goes."
    )
    nudge_after_minutes: int = Field(
        ge=15, le=1440, description="Minutes after an unanswered daily prompt before a nudge."
    )
    pdsa_followup_time: HHMM = Field(description="When to ask how an open PDSA cycle went.")
    coach_digest_time: HHMM = Field(description="When coaches get their daily digest.")
    summary_time: HHMM = Field(description="When midpoint and final summaries go out.")
    quiet_start: HHMM = Field(description="Default quiet hours start (nothing is sent).")
    quiet_end: HHMM = Field(description="Default quiet hours end.")
    grace_minutes: dict[StepKind, Annotated[int, Field(ge=0, le=1440)]] = Field(
        description="How late each step kind may still be sent; later it is skipped."
    )

    @field_validator("grace_minutes")
    @classmethod
    def _every_kind(cls, value: dict[str, int]) -> dict[str, int]:
        missing = [kind for kind in STEP_KINDS if kind not in value]
        if missing:
            raise ValueError(f"missing grace_minutes for: {', '.join(missing)}")
        return value

    def in_quiet_hours(self, moment: time) -> bool:
        """True when a local time falls in the default quiet hours (which may span midnight)."""
        start, end = self.quiet_start, self.quiet_end
        if start == end:
            return False
        if start < end:
            return start <= moment < end
        return moment >= start or moment < end

    @model_validator(mode="after")
    def _times_outside_quiet_hours(self) -> Schedule:
        for name in ("daily_prompt_time", "pdsa_followup_time", "summary_time"):
            if self.in_quiet_hours(getattr(self, name)):
                raise ValueError(
                    f"{name} {getattr(self, name):%H:%M} falls in the quiet hours "
                    f"{self.quiet_start:%H:%M}-{self.quiet_end:%H:%M}"
                )
        return self


class WhatsAppTemplate(BaseModel):
    """A pre-approved WhatsApp template (Twilio Content API) for sends outside the 24-h window.

    Content SIDs belong to a Twilio account: a deployment registers the ``body`` texts and puts
    its own SIDs here (see curricula/README.md).
    """

    model_config = _STRICT

    content_sid: Annotated[str, Field(pattern=CONTENT_SID_RE)] = Field(
        description="Twilio ContentSid of the English template."
    )
    localized_sids: dict[str, Annotated[str, Field(pattern=CONTENT_SID_RE)]] = Field(
        default_factory=dict, description="ContentSid per other declared language."
    )
    variables: list[Annotated[str, Field(pattern=r"^[a-z_]+(\.[a-z_]+)?$")]] = Field(
        description="Context variable names filling {{1}}, {{2}}, ... in order; "
        "'session.title' reads an attribute."
    )
    body: dict[str, str] = Field(
        description="The approved text per language, with {{1}}.. placeholders (not Jinja2)."
    )

    @field_validator("body", mode="before")
    @classmethod
    def _body_from_string(cls, value: Any) -> Any:
        return {"en": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _placeholders_match(self) -> WhatsAppTemplate:
        if "en" not in self.body:
            raise ValueError("body: the English text ('en') is required")
        wanted = {str(i) for i in range(1, len(self.variables) + 1)}
        for lang, text in self.body.items():
            found = set(_PLACEHOLDER_RE.findall(text))
            if found != wanted:
                raise ValueError(
                    f"body.{lang}: placeholders {sorted(found, key=int)} do not match the "
                    f"{len(self.variables)} variables (expected {{{{1}}}}..{{{{{len(wanted)}}}}})"
                )
        return self

    def sid_for(self, lang: str) -> str:
        """The ContentSid to send in ``lang`` (English when there is no template in it)."""
        return self.localized_sids.get(lang, self.content_sid)

    def content_variables(self, context: Mapping[str, Any]) -> dict[str, str]:
        """Twilio ``ContentVariables`` ({"1": ..., "2": ...}) taken from a step's context."""
        values: dict[str, str] = {}
        for index, name in enumerate(self.variables, start=1):
            head, _, attr = name.partition(".")
            value: Any = context[head]
            if attr:
                value = value[attr] if isinstance(value, Mapping) else getattr(value, attr)
            values[str(index)] = str(value)
        return values


class Curriculum(BaseModel):
    """One topic's complete Dash content, as read from ``curricula/<topic>/curriculum.yaml``.

    ``version`` is the content version: bump it whenever content changes; cohorts record the
    version they run so a report can say which content a team saw.
    """

    model_config = _STRICT

    format_version: Literal[1] = Field(description="Version of this file format.")
    topic: Topic
    version: int = Field(ge=1, description="Content version; bump on every content change.")
    title: LocalText
    summary: LocalText
    aim_template: LocalText = Field(
        description="Variables: goal_pct, measure_name, end_date, unit_name, baseline_pct."
    )
    languages: list[Annotated[str, Field(pattern=LANG_RE.pattern)]] = Field(min_length=1)
    measures: list[Measure] = Field(min_length=1)
    change_package: list[ChangeIdea] = Field(min_length=4)
    examples: Examples | None = Field(
        default=None, description="Examples in the topic's words (PDSA prediction, story)."
    )
    sessions: list[Session] = Field(min_length=6, max_length=6)
    schedule: Schedule
    messages: dict[StepKind, LocalText]
    whatsapp_templates: dict[StepKind, WhatsAppTemplate]
    sources: list[NonEmpty] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Curriculum:
        """Cross-field rules. With a ``problems`` list in the validation context, collect them."""
        found = list(self._problems())
        sink = info.context.get("problems") if isinstance(info.context, dict) else None
        if isinstance(sink, list):
            sink.extend(found)
        elif found:
            raise ValueError("; ".join(f"{path}: {message}" for path, message in found))
        return self

    def _problems(self) -> Iterator[tuple[str, str]]:
        declared = self.languages
        if "en" not in declared:
            yield "languages", "must include 'en'"
        if len(set(declared)) != len(declared):
            yield "languages", "lists a language twice"

        yield from _unique_keys("measures", [m.key for m in self.measures])
        yield from _unique_keys("change_package", [c.key for c in self.change_package])
        primaries = [i for i, m in enumerate(self.measures) if m.primary]
        if len(primaries) != 1:
            where = ", ".join(f"measures.{i}" for i in primaries) or "none"
            yield "measures", f"exactly one measure must be primary: true (found {where})"

        yield from self._session_problems()

        for kind in STEP_KINDS:
            if kind not in self.messages:
                yield f"messages.{kind}", f"missing message for step kind {kind!r}"
            needs_template = kind not in TEMPLATE_EXEMPT_STEPS
            if needs_template and kind not in self.whatsapp_templates:
                yield (
                    f"whatsapp_templates.{kind}",
                    f"missing WhatsApp template for {kind!r} (it may be sent outside the "
                    "24-hour window)",
                )

        for kind, template in self.whatsapp_templates.items():
            yield from _whatsapp_problems(kind, template, declared)

        yield from self._variable_problems()

        for path, text in _walk_texts(self):
            if path.endswith(UNTRANSLATED_SUFFIXES):
                continue
            missing = [lang for lang in declared if lang not in text.root]
            if missing:
                yield path, f"missing translation: {', '.join(missing)}"

    def _session_problems(self) -> Iterator[tuple[str, str]]:
        slot_seen: dict[int, int] = {}
        for index, session in enumerate(self.sessions):
            if session.number != index + 1:
                yield (
                    f"sessions.{index}.number",
                    f"sessions must be listed in order 1..6; expected {index + 1}, "
                    f"got {session.number}",
                )
            if session.slot in slot_seen:
                yield (
                    f"sessions.{index}.slot",
                    f"slot {session.slot} is already used by sessions.{slot_seen[session.slot]}",
                )
            else:
                slot_seen[session.slot] = index
            if index and session.slot < self.sessions[index - 1].slot:
                yield (
                    f"sessions.{index}.slot",
                    "slots must increase with session number (a session cannot come before "
                    "the one it builds on)",
                )

    def _variable_problems(self) -> Iterator[tuple[str, str]]:
        allowed_by_path: list[tuple[str, LocalText, frozenset[str]]] = []
        allowed_by_path.append(("aim_template", self.aim_template, AIM_VARIABLES))
        for i, measure in enumerate(self.measures):
            allowed_by_path.append((f"measures.{i}.prompt", measure.prompt, PROMPT_VARIABLES))
        for kind, text in self.messages.items():
            allowed_by_path.append((f"messages.{kind}", text, STEP_VARIABLES[kind]))
        special = {path for path, _, _ in allowed_by_path}
        for path, text in _walk_texts(self):
            if path not in special:
                allowed_by_path.append((path, text, STATIC_VARIABLES))
        for path, text, allowed in allowed_by_path:
            unknown = sorted(text.variables() - allowed)
            if unknown:
                yield (
                    path,
                    f"unknown template variable(s) {', '.join(unknown)}; available: "
                    f"{', '.join(sorted(allowed)) or 'none'}",
                )

    # -- conveniences for the scheduler and the conversation engine --------------------------

    @property
    def primary_measure(self) -> Measure:
        """The measure the aim is written about."""
        return next(m for m in self.measures if m.primary)

    def measure(self, key: str) -> Measure:
        """The measure with this key (KeyError if none)."""
        for measure in self.measures:
            if measure.key == key:
                return measure
        raise KeyError(key)

    def session(self, number: int) -> Session:
        """The session with this number, 1..6 (KeyError if none)."""
        for session in self.sessions:
            if session.number == number:
                return session
        raise KeyError(number)

    def render_message(self, kind: StepKind, lang: str = "en", /, **context: Any) -> str:
        """Render the message of a step kind in ``lang`` (StrictUndefined)."""
        return self.messages[kind].render(lang, **context)

    def render_aim(self, lang: str = "en", /, **context: Any) -> str:
        """Render the aim statement (goal_pct, measure_name, end_date, unit_name, baseline_pct)."""
        return self.aim_template.render(lang, **context)


def _unique_keys(prefix: str, keys: list[str]) -> Iterator[tuple[str, str]]:
    seen: dict[str, int] = {}
    for index, key in enumerate(keys):
        if key in seen:
            yield f"{prefix}.{index}.key", f"key {key!r} is already used by {prefix}.{seen[key]}"
        else:
            seen[key] = index


def _whatsapp_problems(
    kind: str, template: WhatsAppTemplate, declared: list[str]
) -> Iterator[tuple[str, str]]:
    base = f"whatsapp_templates.{kind}"
    allowed = STEP_VARIABLES[kind]
    for index, name in enumerate(template.variables):
        head, _, attr = name.partition(".")
        if head not in allowed:
            yield (
                f"{base}.variables.{index}",
                f"{name!r} is not a variable of {kind}; available: {', '.join(sorted(allowed))}",
            )
        elif head == "session" and attr not in SESSION_ATTRIBUTES:
            yield (
                f"{base}.variables.{index}",
                f"use one of session.{', session.'.join(sorted(SESSION_ATTRIBUTES))}",
            )
        elif head != "session" and attr:
            yield f"{base}.variables.{index}", f"{head!r} has no attributes"
    for lang in declared:
        if lang == "en":
            continue
        if lang not in template.localized_sids:
            yield f"{base}.localized_sids", f"missing ContentSid for declared language {lang!r}"
        if lang not in template.body:
            yield f"{base}.body", f"missing translation: {lang}"


def _walk_texts(node: Any, path: str = "") -> Iterator[tuple[str, LocalText]]:
    """Every LocalText in a model tree with its dotted path (0-based list indices)."""
    if isinstance(node, LocalText):
        yield path, node
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            yield from _walk_texts(getattr(node, name), f"{path}.{name}" if path else name)
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _walk_texts(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk_texts(value, f"{path}.{index}")


# ---------------------------------------------------------------------------------------------
# Loading and validating files
# ---------------------------------------------------------------------------------------------

CURRICULUM_FILE = "curriculum.yaml"


def curricula_root() -> Traversable:
    """The installed ``curricula`` package folder (works from a wheel or an editable install)."""
    return resources.files("curricula")


def list_topics() -> list[str]:
    """Topics that have a shipped ``curricula/<topic>/curriculum.yaml``, sorted."""
    root = curricula_root()
    return sorted(
        entry.name
        for entry in root.iterdir()
        if entry.is_dir() and entry.joinpath(CURRICULUM_FILE).is_file()
    )


def validate_file(path: str | Path | Traversable) -> list[Problem]:
    """Every problem in one curriculum file (empty list: valid). Never raises for bad content."""
    problems, _ = _read(path)
    return problems


@cache
def load_curriculum(topic: str) -> Curriculum:
    """The shipped curriculum for ``topic`` (cached; models are frozen).

    Raises CurriculumNotFound for an unknown topic, CurriculumError if the file is invalid.
    """
    known = list_topics()
    if topic not in known:
        raise CurriculumNotFound(topic, known)
    problems, curriculum = _read(curricula_root().joinpath(topic, CURRICULUM_FILE))
    if problems or curriculum is None:
        raise CurriculumError(problems)
    return curriculum


def load_all() -> dict[str, Curriculum]:
    """Every shipped curriculum by topic."""
    return {topic: load_curriculum(topic) for topic in list_topics()}


def iter_curriculum_files(path: str | Path) -> list[Path]:
    """A file itself, or every ``*.yaml``/``*.yml`` under a folder (sorted)."""
    target = Path(path)
    if target.is_dir():
        return sorted(p for p in target.rglob("*") if p.suffix in {".yaml", ".yml"} and p.is_file())
    return [target]


def _read(path: str | Path | Traversable) -> tuple[list[Problem], Curriculum | None]:
    name = str(path)
    readable = Path(path) if isinstance(path, str) else path
    try:
        source = readable.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [Problem(name, "<document>", f"cannot read file: {exc}")], None
    try:
        data = _load_yaml(source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        what = getattr(exc, "problem", None) or str(exc)
        where = f"syntax error at line {line}, column {mark.column + 1}" if mark else "syntax error"
        return [Problem(name, "<yaml>", f"{where}: {what}", line)], None
    if not isinstance(data, dict):
        return [Problem(name, "<document>", "expected a mapping of curriculum fields")], None

    collected: list[tuple[str, str]] = []
    try:
        curriculum = Curriculum.model_validate(data, context={"problems": collected})
    except ValidationError as exc:
        tree = _yaml_tree(source)
        problems = [
            Problem(name, path, message, _line_of(tree, path))
            for path, message in _pydantic_problems(exc)
        ]
        return problems, None

    path_obj = Path(name)
    if path_obj.name == CURRICULUM_FILE and path_obj.parent.name != curriculum.topic:
        collected.append(
            ("topic", f"is {curriculum.topic!r} but the folder is {path_obj.parent.name!r}")
        )
    tree = _yaml_tree(source) if collected else None
    problems = [Problem(name, p, m, _line_of(tree, p)) for p, m in collected]
    return problems, (None if problems else curriculum)


def _load_yaml(source: str) -> Any:
    """`yaml.safe_load`, through libyaml when PyYAML was built with it (the pure-Python parser
    was most of `dash curriculum list`'s time). A document libyaml rejects is read again by
    the pure-Python parser, so syntax errors keep its messages and line numbers."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return yaml.load(source, Loader=fast)  # noqa: S506 - CSafeLoader is the safe loader
        except yaml.YAMLError:
            pass
    return yaml.safe_load(source)


def _yaml_tree(source: str) -> yaml.Node | None:
    """The node tree of a document that parsed, for the line numbers of its problems."""
    try:
        return yaml.compose(source, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None


_PATTERN_HINTS = {
    CONTENT_SID_RE: 'a Twilio ContentSid: "HX" and 32 lowercase hex digits',
    SLUG_RE: "a key: lowercase letters and digits, words joined by '-' or '_'",
    LANG_RE.pattern: "a language code like 'es' or 'pt-BR'",
}
_RANGE_ERRORS = {"less_than_equal", "greater_than_equal", "less_than", "greater_than"}


def _pydantic_problems(exc: ValidationError) -> Iterator[tuple[str, str]]:
    for error in exc.errors(include_url=False):
        path = ".".join(str(part) for part in error["loc"]) or "<document>"
        message = error["msg"]
        for prefix in ("Value error, ", "Assertion failed, "):
            if message.startswith(prefix):
                message = message[len(prefix) :]
        kind = error["type"]
        last = str(error["loc"][-1]) if error["loc"] else ""
        if kind == "missing":
            message = "required field is missing"
        elif kind == "extra_forbidden":
            message = "unknown field (check the spelling; see curricula/README.md)"
        elif kind == "string_pattern_mismatch":
            wanted = _PATTERN_HINTS.get(error.get("ctx", {}).get("pattern", ""))
            if wanted:
                message = f"expected {wanted}, got {error['input']!r}"
        elif kind in {"too_short", "too_long"} and last == "sessions":
            message = f"exactly 6 sessions are required, found {len(error['input'])}"
        if last in {"goal", "baseline_hint"} and kind in _RANGE_ERRORS:
            message += " (a proportion between 0 and 1: 0.9 means 90%)"
        yield path, message


def _line_of(tree: yaml.Node | None, path: str) -> int | None:
    """1-based line of the YAML node at a dotted path, or of its closest existing ancestor.

    None when not even the first segment exists (e.g. a missing top-level field).
    """
    node = tree
    line = None
    for part in path.split("."):
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and part.isdigit():
            index = int(part)
            child = node.value[index] if index < len(node.value) else None
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line
