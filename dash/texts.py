"""Every sentence a person reads comes from a Jinja2 template; this renders them.

Message templates live in `dash/templates/messages/<lang>/<name>.j2`; a missing
translation falls back to English. Web pages use `dash/templates/web/` through
the web app's own environment, sharing the filters defined here.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)

TEMPLATES = Path(__file__).parent / "templates"
LANGUAGES = ("en", "es")
DEFAULT_LANGUAGE = "en"


def pct(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value * 100:.{digits}f}%"


@lru_cache(maxsize=1)
def message_env() -> Environment:
    """Plain-text environment (no HTML escaping: chat messages are not HTML)."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES / "messages")),
        undefined=StrictUndefined,
        autoescape=False,  # noqa: S701 - chat text, never rendered as HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["pct"] = pct
    return env


def language_of(code: str | None) -> str:
    """Our language for a person's language tag ('es-MX' -> 'es'); English otherwise."""
    base = (code or "").split("-")[0].split("_")[0].lower()
    return base if base in LANGUAGES else DEFAULT_LANGUAGE


def render(name: str, lang: str | None = None, **context: Any) -> str:
    """Render message template `name` in `lang`, falling back to English."""
    env = message_env()
    lang = language_of(lang)
    try:
        template = env.get_template(f"{lang}/{name}.j2")
    except TemplateNotFound:
        template = env.get_template(f"{DEFAULT_LANGUAGE}/{name}.j2")
    return template.render(lang=lang, **context).strip()


def web_env() -> Environment:
    """HTML environment for pages and reports: autoescaped, strict."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES / "web")),
        undefined=StrictUndefined,
        autoescape=select_autoescape(["html", "j2", "xml"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = pct
    return env
