"""The Jinja2 environment for digest templates: loaders, escaping, filters, checking."""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from urllib.parse import urlsplit

import jinja2

from digest.exceptions import ConfigError, RenderError
from digest.render import placeholders
from digest.render.frame import fit, short_headline
from digest.render.wrap import wrap_text

TEMPLATE_SUFFIX = ".j2"


def package_templates_dir() -> Path:
    """The templates shipped with digest (wheel package data, or the checkout's templates/)."""
    candidates: list[Path] = []
    try:
        shipped = importlib.resources.files("digest") / "templates"
        candidates.append(Path(str(shipped)))
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - only for odd importers
        pass
    # An editable or source checkout keeps templates/ at the repository root, beside src/.
    candidates.append(Path(__file__).resolve().parents[3] / "templates")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise RenderError(f"digest's own templates are missing (looked in {tried}); reinstall digest")


def wrap72(text: str, width: int = 72, indent: str = "") -> str:
    """Wrap plain text at ``width`` display columns (CJK counts double; see render.wrap);
    words longer than that (URLs) stay whole, Latin words are never broken."""
    return wrap_text(text, width, indent)


def safe_url(url: str) -> str:
    """Return ``url`` if it is http(s) or mailto, else "#" (no javascript: links in mail)."""
    value = str(url).strip()
    if placeholders.is_token(value):
        return value  # filled at send time with a URL digest made and checked itself
    if urlsplit(value).scheme.lower() in {"http", "https", "mailto"}:
        return value
    return "#"


def make_environment(templates_dir: Path | None = None) -> jinja2.Environment:
    """A strict environment; files in ``templates_dir`` override the packaged ones by name."""
    loaders: list[jinja2.BaseLoader] = []
    if templates_dir is not None:
        if not templates_dir.is_dir():
            raise ConfigError(
                "templates folder does not exist; create it or remove the setting",
                file=str(templates_dir),
            )
        loaders.append(jinja2.FileSystemLoader(str(templates_dir)))
    loaders.append(jinja2.FileSystemLoader(str(package_templates_dir())))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        # Only plain-text templates are unescaped; anything else (MJML, HTML, strings) is.
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("mjml.j2", "html.j2", "mjml", "html"),
            disabled_extensions=("txt.j2", "txt"),
            default_for_string=True,
            default=True,
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap72"] = wrap72
    env.filters["safe_url"] = safe_url
    env.filters["fit"] = fit
    env.filters["short_headline"] = short_headline
    return env


def check_templates(env: jinja2.Environment) -> None:
    """Compile every ``*.j2`` template; the first syntax error raises ConfigError(file:line)."""
    for name in env.list_templates(filter_func=lambda n: n.endswith(TEMPLATE_SUFFIX)):
        try:
            env.get_template(name)
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(
                f"template syntax error: {exc.message}; fix the template",
                file=exc.filename or name,
                line=exc.lineno,
            ) from exc
