"""Message templates: Jinja2 in a sandbox, checked before any send.

A message's ``template: referral/post_purchase_invite`` names files in the
templates directory: ``<name>.subject.j2`` and ``<name>.txt.j2`` (email, with
an optional ``<name>.html.j2``, autoescaped) or ``<name>.sms.j2`` (SMS).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import jinja2
from jinja2 import FileSystemLoader, StrictUndefined, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

Severity = Literal["error", "warning"]

# Exactly what a template may read, with what each value holds (for docs and previews).
CONTEXT_VARIABLES: Mapping[str, Mapping[str, str]] = {
    "contact": {
        "external_id": "the contact's id in your system",
        "email": "email address, or None",
        "phone": "phone number in E.164 form, or None",
        "first_name": "first name, or None",
        "last_name": "last name, or None",
        "locale": "language tag such as 'fr', or None",
        "time_zone": "IANA time zone such as 'Europe/Paris', or None",
        "attributes": "free-form data imported with the contact",
    },
    "event": {
        "type": "type of the event that started the journey",
        "occurred_at": "when that event happened (datetime)",
        "properties": "free-form data sent with that event",
    },
    "links": {
        "unsubscribe": "signed link that unsubscribes the contact from marketing",
        "opt_in": "signed link where the contact opts in to marketing on the message's channel",
    },
    "sender": {
        "name": "who signs: the salesperson of the contact's list (sender: salesperson), else the default",
        "email": "the sender's address",
    },
    "message": {
        "id": "id of the message in its journey",
        "scenario": "scenario id",
        "journey": "journey id",
        "channel": "'email' or 'sms'",
    },
}
# Anything below these is the sender's own data, so it is not checked.
FREE_FORM = {("contact", "attributes"), ("event", "properties")}
PART_SUFFIXES = ("subject", "txt", "html", "sms")
LOCALE_TAG = re.compile(r"^[a-z]{2}(-[a-z]{2})?$")  # file infix of a locale variant: fr, fr-ca

_MAX_REPEAT = 100_000  # longest string or list a template may build with '*'
_MAX_EXPONENT = 1_000


class TemplateError(Exception):
    """A template cannot be rendered; the message names the file and what is wrong."""


class _SendUndefined(StrictUndefined):
    """Printing a missing value fails the render, but ``{% if x %}`` may test for it."""

    # StrictUndefined makes __bool__ raise; here a missing value is only falsy.
    def __bool__(self) -> bool:  # type: ignore[override]  # the base's raises, typed -> Never
        return False


class _Sandbox(ImmutableSandboxedEnvironment):
    """No unsafe attributes or mutation (Jinja's sandbox), and no giant strings or numbers."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > _MAX_EXPONENT:
            raise SecurityError(f"exponent {right} is too large")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int):
                    if len(seq) * times > _MAX_REPEAT:
                        raise SecurityError(f"'*' would build a value longer than {_MAX_REPEAT}")
        return super().call_binop(context, operator, left, right)


@dataclass(frozen=True)
class RenderedMessage:
    subject: str | None
    text: str
    html: str | None


@dataclass(frozen=True)
class TemplateProblem:
    file: str
    line: int  # 0 when the problem is not inside the file (e.g. the file is missing)
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


def parts_for(channel: str) -> list[tuple[str, bool]]:
    """(suffix, required) of the files a message on this channel uses."""
    if channel == "sms":
        return [("sms", True)]
    return [("subject", True), ("txt", True), ("html", False)]


class TemplateStore:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        # Jinja caches compiled templates per environment and recompiles a file when it changes.
        common: dict[str, Any] = {
            "loader": FileSystemLoader(self.directory),
            "keep_trailing_newline": False,
            "undefined": _SendUndefined,
        }
        self._text = _Sandbox(autoescape=False, **common)
        self._html = _Sandbox(autoescape=True, **common)

    def _env(self, suffix: str) -> jinja2.Environment:
        return self._html if suffix == "html" else self._text

    def path(self, name: str, suffix: str) -> Path:
        return self.directory / _file_name(name, suffix)

    # -- rendering ---------------------------------------------------------------------------

    def variant(self, name: str, channel: str, locale: str | None) -> str:
        """The template for this locale: ``name.fr-ca``, else ``name.fr``, else ``name`` itself.

        A variant is chosen whole (all its parts), so one message never mixes two languages.
        """
        if locale:
            tag = locale.replace("_", "-").lower()
            for candidate in dict.fromkeys([tag, tag.split("-")[0]]):
                localized = f"{name}.{candidate}"
                if all(self.path(localized, s).is_file() for s, required in parts_for(channel) if required):
                    return localized
        return name

    def locales(self, name: str) -> list[str]:
        """Locale tags that have files for this template (``name.<tag>.<part>.j2``)."""
        base = self.directory / _inside(name)
        found = {
            file.name[len(base.name) + 1 :].split(".")[0]
            for file in base.parent.glob(f"{base.name}.*.*.j2")
            if file.name.count(".") == base.name.count(".") + 3
        }
        return sorted(tag for tag in found if LOCALE_TAG.match(tag))

    def render(
        self, name: str, channel: str, context: dict[str, Any], locale: str | None = None
    ) -> RenderedMessage:
        name = self.variant(name, channel, locale)
        parts = {s: self._render_part(name, s, required, context) for s, required in parts_for(channel)}
        if channel == "sms":
            return RenderedMessage(subject=None, text=(parts["sms"] or "").strip(), html=None)
        # A subject is one header line: line breaks (even from contact data) become spaces.
        subject = " ".join((parts["subject"] or "").split())
        return RenderedMessage(subject=subject, text=parts["txt"] or "", html=parts["html"])

    def _render_part(self, name: str, suffix: str, required: bool, context: dict[str, Any]) -> str | None:
        path = self.path(name, suffix)
        if not required and not path.is_file():
            return None
        try:
            return self._env(suffix).get_template(_file_name(name, suffix)).render(context)
        except jinja2.TemplateNotFound as error:  # the file itself, or one it includes
            raise TemplateError(f"{path}: '{error.name}' not found in {self.directory}") from None
        except jinja2.TemplateSyntaxError as error:
            where = _where(error.filename or str(path), error.lineno)
            raise TemplateError(f"{where}: syntax error: {error.message}") from error
        except Exception as error:  # any failure of a template is the template's, not the sender's
            file, line = _template_frame(error) or (str(path), 0)
            raise TemplateError(f"{_where(file, line)}: {_describe(error)}") from error

    # -- static checks -----------------------------------------------------------------------

    def check(self, name: str, channel: str) -> list[TemplateProblem]:
        """Problems found without rendering: missing files, syntax, unknown variables."""
        try:
            _file_name(name, "txt")
        except TemplateError as error:
            return [TemplateProblem(str(self.directory), 0, str(error))]
        wanted = parts_for(channel)
        if not any(self.path(name, suffix).is_file() for suffix in PART_SUFFIXES):
            return [self._no_such_template(name, [s for s, required in wanted if required])]
        problems: list[TemplateProblem] = []
        for variant in [name, *(f"{name}.{tag}" for tag in self.locales(name))]:
            if variant != name and not any(self.path(variant, s).is_file() for s, _ in wanted):
                continue  # a variant for the other channel
            for suffix, required in wanted:
                path = self.path(variant, suffix)
                if path.is_file():
                    problems += self._check_file(path, suffix, seen=set())
                elif required and (
                    variant == name or any(self.path(variant, s).is_file() for s in PART_SUFFIXES)
                ):
                    problems.append(TemplateProblem(str(path), 0, self._missing_part(variant, suffix)))
        return problems

    def references(self, name: str, suffix: str, owner: str, attr: str) -> bool:
        """Whether this part reads ``owner.attr`` (e.g. ``links.unsubscribe``); False if unreadable."""
        path = self.path(name, suffix)
        try:
            tree = self._env(suffix).parse(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, jinja2.TemplateSyntaxError):
            return False
        return any(
            isinstance(node.node, nodes.Name) and node.node.name == owner and node.attr == attr
            for node in tree.find_all(nodes.Getattr)
        )

    def _no_such_template(self, name: str, suffixes: list[str]) -> TemplateProblem:
        files = " and ".join(_file_name(name, s) for s in suffixes)
        close = difflib.get_close_matches(name, sorted(self.names()), n=1)
        guess = f"did you mean '{close[0]}'? Otherwise " if close else ""
        return TemplateProblem(str(self.directory), 0, f"no template '{name}': {guess}create {files}")

    def _missing_part(self, name: str, suffix: str) -> str:
        message = f"file not found: create {Path(_file_name(name, suffix)).name}"
        # The template exists for the other channel: the message's channel is probably wrong.
        other = "email" if suffix == "sms" else "sms"
        present = [s for s, required in parts_for(other) if required and self.path(name, s).is_file()]
        if present:
            message += f" ({Path(_file_name(name, present[0])).name} exists: is the channel {other}?)"
        return message

    def _check_file(self, path: Path, suffix: str, seen: set[Path]) -> list[TemplateProblem]:
        if path in seen:  # includes that include each other: checked once
            return []
        seen.add(path)
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            return [TemplateProblem(str(path), 0, f"cannot read the file ({error}): save it as UTF-8")]
        try:
            tree = self._env(suffix).parse(source, name=path.name, filename=str(path))
        except jinja2.TemplateSyntaxError as error:
            return [TemplateProblem(str(path), error.lineno, f"syntax error: {error.message}")]
        problems = [TemplateProblem(str(path), line, message) for line, message in _unknown(tree)]
        if suffix == "subject":
            problems += _subject_lines(path, source)
        for line, included in _referenced(tree):
            try:
                target = self.directory / _inside(included)
            except TemplateError as error:
                problems.append(TemplateProblem(str(path), line, str(error)))
                continue
            if target.is_file():
                problems += self._check_file(target, suffix, seen)
            else:
                problems.append(
                    TemplateProblem(str(path), line, f"'{included}' not found in {self.directory}")
                )
        return problems

    def names(self) -> set[str]:
        """Template names available in the directory, e.g. ``referral/post_purchase_invite``."""
        found: set[str] = set()
        for file in self.directory.rglob("*.j2"):
            stem, _, suffix = file.relative_to(self.directory).as_posix()[:-3].rpartition(".")
            if suffix in PART_SUFFIXES and stem:
                found.add(stem)
        return found


def _file_name(name: str, suffix: str) -> str:
    return f"{_inside(name)}.{suffix}.j2"


def _inside(name: str) -> str:
    """A relative path that cannot leave the templates directory (as Jinja's loader requires)."""
    parts = [p for p in name.replace("\\", "/").split("/") if p]
    if not parts or any(p in {".", ".."} for p in parts):
        raise TemplateError(
            f"template name '{name}' must be a path inside the templates directory, "
            "e.g. referral/post_purchase_invite"
        )
    return "/".join(parts)


def _where(file: str, line: int | None) -> str:
    return f"{file}:{line}" if line else file


def _template_frame(error: BaseException) -> tuple[str, int] | None:
    """File and line of the innermost template frame (Jinja rewrites tracebacks to point there)."""
    found = None
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(".j2"):
            found = (tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def _describe(error: Exception) -> str:
    if isinstance(error, SecurityError):
        return f"not allowed in templates: {error}"
    if isinstance(error, jinja2.UndefinedError):
        return f"undefined value: {error} (test optional values with {{% if ... %}} or use '| default(...)')"
    return f"{error.__class__.__name__}: {error}"


def _unknown(tree: nodes.Template) -> list[tuple[int, str]]:
    """(line, message) for every variable or attribute the render context does not have."""
    undeclared = meta.find_undeclared_variables(tree)
    found: list[tuple[int, str]] = []
    for name in sorted(undeclared - set(CONTEXT_VARIABLES)):
        line = next(n.lineno for n in tree.find_all(nodes.Name) if n.name == name)
        hint = _suggest(name, CONTEXT_VARIABLES)
        if not hint.startswith(":"):
            hint += f" (free-form data: contact.attributes.{name} or event.properties.{name})"
        found.append((line, f"unknown variable '{name}'{hint}"))
    for node, owner, attr in _attribute_reads(tree):
        if attr.startswith("_"):
            found.append(
                (node.lineno, f"'{attr}' is not allowed: templates cannot read names starting with '_'")
            )
        elif owner in undeclared and owner in CONTEXT_VARIABLES and attr not in CONTEXT_VARIABLES[owner]:
            found.append((node.lineno, f"unknown variable '{owner}.{attr}'{_suggest_attribute(owner, attr)}"))
    return sorted(set(found))


def _attribute_reads(tree: nodes.Template) -> Iterator[tuple[nodes.Node, str | None, str]]:
    """(node, variable it is read from or None, attribute) for ``x.attr`` and ``x['attr']``."""
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, nodes.Getattr | nodes.Getitem)  # find_all yields the base Node type
        attr = node.attr if isinstance(node, nodes.Getattr) else _const(node.arg)
        if attr is not None:
            owner = node.node.name if isinstance(node.node, nodes.Name) else None
            yield node, owner, attr


def _referenced(tree: nodes.Template) -> list[tuple[int, str]]:
    """(line, name) of the templates included, imported or extended by name."""
    found = []
    for node in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        assert isinstance(node, nodes.Include | nodes.Import | nodes.FromImport | nodes.Extends)
        names = node.template.items if isinstance(node.template, nodes.List) else [node.template]
        found += [(node.lineno, n) for n in map(_const, names) if n is not None]
    return found


def _subject_lines(path: Path, source: str) -> list[TemplateProblem]:
    lines = [(i, line) for i, line in enumerate(source.splitlines(), 1) if line.strip()]
    if len(lines) < 2:
        return []
    return [
        TemplateProblem(
            str(path),
            lines[1][0],
            f"the subject spans {len(lines)} lines; it is sent as one line (line breaks become spaces): "
            "write it on one line",
            "warning",
        )
    ]


def _const(node: nodes.Node) -> str | None:
    return node.value if isinstance(node, nodes.Const) and isinstance(node.value, str) else None


def _suggest(name: str, candidates: Mapping[str, Any]) -> str:
    options = sorted(candidates)
    close = difflib.get_close_matches(name, options, n=1)
    if close:
        return f": did you mean '{close[0]}'?"
    return f"; known: {', '.join(options)}"


def _suggest_attribute(owner: str, attr: str) -> str:
    hint = _suggest(attr, CONTEXT_VARIABLES[owner])
    if hint.startswith(":"):
        return hint
    free = next((f for o, f in FREE_FORM if o == owner), None)
    if free:  # free-form data has its own place
        return f"{hint} (free-form data: {owner}.{free}.{attr})"
    return hint


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
        "links": {
            "unsubscribe": "https://example.com/u/SAMPLE-TOKEN",
            "opt_in": "https://example.com/o/SAMPLE-TOKEN",
        },
        "sender": {"name": "Léa Dubois", "email": "lea.dubois@example.com"},
    }
