"""Message templates: Jinja2 in a sandbox, checked before any send.

A message's ``template: referral/post_purchase_invite`` names files in the
templates directory: ``<name>.subject.j2`` and ``<name>.txt.j2`` (email, with
an optional ``<name>.html.j2``, autoescaped) or ``<name>.sms.j2`` (SMS).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import FileSystemLoader, StrictUndefined, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

# What templates may use; ``contact.attributes`` and ``event.properties`` are free-form.
CONTEXT_VARIABLES: dict[str, set[str]] = {
    "contact": {
        "external_id", "email", "phone", "first_name", "last_name", "locale", "time_zone",
        "attributes",
    },
    "event": {"type", "occurred_at", "properties"},
    "message": {"id", "scenario", "journey", "channel"},
}  # fmt: skip
FREE_FORM = {("contact", "attributes"), ("event", "properties")}


class TemplateError(Exception):
    """A template cannot be rendered; the message names the file and what is wrong."""


class _SendUndefined(StrictUndefined):
    """Printing a missing value fails the render, but ``{% if x %}`` may test for it."""

    def __bool__(self) -> bool:
        return False


@dataclass(frozen=True)
class RenderedMessage:
    subject: str | None
    text: str
    html: str | None


@dataclass(frozen=True)
class TemplateProblem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


def parts_for(channel: str) -> list[tuple[str, bool]]:
    """(suffix, required) of the files a message on this channel uses."""
    if channel == "sms":
        return [("sms", True)]
    return [("subject", True), ("txt", True), ("html", False)]


class TemplateStore:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        loader = FileSystemLoader(self.directory)
        common: dict[str, Any] = {"loader": loader, "keep_trailing_newline": False}
        self._text = ImmutableSandboxedEnvironment(autoescape=False, undefined=_SendUndefined, **common)
        self._html = ImmutableSandboxedEnvironment(autoescape=True, undefined=_SendUndefined, **common)

    def _env(self, suffix: str) -> jinja2.Environment:
        return self._html if suffix == "html" else self._text

    def path(self, name: str, suffix: str) -> Path:
        return self.directory / f"{name}.{suffix}.j2"

    def render(self, name: str, channel: str, context: dict[str, Any]) -> RenderedMessage:
        rendered: dict[str, str | None] = {}
        for suffix, required in parts_for(channel):
            file = f"{name}.{suffix}.j2"
            if not required and not self.path(name, suffix).exists():
                rendered[suffix] = None
                continue
            try:
                rendered[suffix] = self._env(suffix).get_template(file).render(context)
            except jinja2.TemplateNotFound:
                raise TemplateError(f"{self.directory / file}: file not found") from None
            except jinja2.TemplateError as error:
                line = getattr(error, "lineno", None)
                where = f"{self.directory / file}" + (f":{line}" if line else "")
                raise TemplateError(f"{where}: {error.__class__.__name__}: {error}") from error
        if channel == "sms":
            return RenderedMessage(subject=None, text=(rendered["sms"] or "").strip(), html=None)
        subject = " ".join((rendered["subject"] or "").split())  # one line, always
        return RenderedMessage(subject=subject, text=rendered["txt"] or "", html=rendered["html"])

    def check(self, name: str, channel: str) -> list[TemplateProblem]:
        """Problems found without rendering: missing files, syntax, unknown variables."""
        problems: list[TemplateProblem] = []
        for suffix, required in parts_for(channel):
            path = self.path(name, suffix)
            if not path.exists():
                if required:
                    problems.append(TemplateProblem(str(path), 1, f"file not found: create {path.name}"))
                continue
            source = path.read_text(encoding="utf-8")
            try:
                tree = self._env(suffix).parse(source, name=path.name, filename=str(path))
            except jinja2.TemplateSyntaxError as error:
                problems.append(TemplateProblem(str(path), error.lineno, f"syntax: {error.message}"))
                continue
            problems += [TemplateProblem(str(path), line, msg) for line, msg in _unknown(tree)]
        return problems


def _unknown(tree: nodes.Template) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for name in sorted(meta.find_undeclared_variables(tree) - set(CONTEXT_VARIABLES)):
        node = next(n for n in tree.find_all(nodes.Name) if n.name == name)
        found.append((node.lineno, f"unknown variable '{name}'{_suggest(name, CONTEXT_VARIABLES)}"))
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        target = node.node
        if not isinstance(target, nodes.Name) or target.name not in CONTEXT_VARIABLES:
            continue
        attr = node.attr if isinstance(node, nodes.Getattr) else _const(node.arg)
        if attr is None:
            continue
        if attr not in CONTEXT_VARIABLES[target.name]:
            found.append(
                (
                    node.lineno,
                    f"unknown variable '{target.name}.{attr}'"
                    f"{_suggest(attr, CONTEXT_VARIABLES[target.name])}",
                )
            )
    return sorted(set(found))


def _const(node: nodes.Node) -> str | None:
    return node.value if isinstance(node, nodes.Const) and isinstance(node.value, str) else None


def _suggest(name: str, candidates: object) -> str:
    options = sorted(candidates)  # type: ignore[call-overload]
    close = difflib.get_close_matches(name, options, n=1)
    if close:
        return f": did you mean '{close[0]}'?"
    return f"; known: {', '.join(options)}"


def sample_context(
    scenario: str = "example",
    journey: str = "example",
    message: str = "example",
    channel: str = "email",
) -> dict[str, Any]:
    """Plausible data for previews and validation renders."""
    return {
        "contact": {
            "external_id": "sample-1",
            "email": "camille.martin@example.com",
            "phone": "+33612345678",
            "first_name": "Camille",
            "last_name": "Martin",
            "locale": "fr",
            "time_zone": "Europe/Paris",
            "attributes": {},
        },
        "event": {
            "type": "purchase",
            "occurred_at": datetime(2026, 9, 1, 10, 0, tzinfo=UTC),
            "properties": {"order_id": "SAMPLE-1", "amount": 59.9},
        },
        "message": {"id": message, "scenario": scenario, "journey": journey, "channel": channel},
    }
