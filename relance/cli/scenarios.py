"""``relance scenarios …``"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from relance.scenarios.loader import ScenarioSet

_HELP = "Scenario files: check, compare, map and apply them before the engine loads them."
scenarios_app = typer.Typer(help=_HELP, no_args_is_help=True)


@scenarios_app.callback()
def _group() -> None:
    """Scenario files: check, compare, map and apply them before the engine loads them."""
    # This callback keeps 'validate' a subcommand even when the app runs on its own.


@scenarios_app.command("validate")
def validate(
    directory: Annotated[Path, typer.Argument(help="Directory of scenario YAML files.")],
    templates: Annotated[
        Path | None, typer.Option(help="Templates directory (default: RELANCE_TEMPLATES_DIR).")
    ] = None,
) -> None:
    """Check scenario files and the templates they use: exit 0 if valid, 1 on any error.

    Prints one 'file:line: field: message' line per problem, then a summary on stderr.
    """
    # pydantic-settings; temporalio, SQLAlchemy and Jinja2 through the checks: not loaded for --help.
    from relance.core.settings import get_settings
    from relance.scenarios.loader import scenario_files
    from relance.scenarios.validate import validate_directory

    templates_dir = templates or get_settings().templates_dir
    for path, what in ((directory, "scenarios"), (templates_dir, "templates")):
        if not path.is_dir():
            typer.echo(f"error: {path}: no such {what} directory", err=True)
            raise typer.Exit(2)
    problems = validate_directory(directory, templates_dir)
    for problem in problems:
        typer.echo(str(problem))
    errors = sum(p.severity == "error" for p in problems)
    files = len(scenario_files(directory))
    typer.echo(
        f"{_count(errors, 'error')}, {_count(len(problems) - errors, 'warning')} "
        f"in {_count(files, 'scenario file')}",
        err=True,
    )
    if errors:
        raise typer.Exit(1)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _load(directory: Path) -> ScenarioSet:
    """Every scenario of ``directory``, or exit 2 after printing each problem as 'file:line: …'."""
    from relance.scenarios.loader import collect_scenarios  # temporalio, PyYAML: not loaded for --help

    if not directory.is_dir():
        typer.echo(f"error: {directory}: no such scenarios directory", err=True)
        raise typer.Exit(2)
    scenarios, problems = collect_scenarios(directory)
    if problems:
        for problem in problems:
            typer.echo(str(problem), err=True)
        typer.echo(f"error: {directory}: {_count(len(problems), 'error')}: fix them first", err=True)
        raise typer.Exit(2)
    return scenarios


@scenarios_app.command("diff")
def diff(
    old: Annotated[Path, typer.Argument(help="Directory of the current scenario files.")],
    new: Annotated[Path, typer.Argument(help="Directory of the edited scenario files.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the changes as JSON.")] = False,
) -> None:
    """What changes from OLD to NEW, journey by journey: exit 0 if identical, 1 if not, 2 on trouble.

    Scenarios are matched by id, journeys and messages by their ids.
    """
    from relance.scenarios.diff import diff_sets  # temporalio, PyYAML: not loaded for --help

    result = diff_sets(_load(old), _load(new))
    if as_json:
        typer.echo(json.dumps(result.as_json(), indent=2, ensure_ascii=False))
    else:
        for line in result.lines():
            typer.echo(line)
        typer.echo(result.summary())
    if not result.identical:
        raise typer.Exit(1)


@scenarios_app.command("map")
def map_(
    directory: Annotated[Path, typer.Argument(help="Directory of scenario YAML files.")],
    html: Annotated[
        Path | None, typer.Option(help="Also write the map as a self-contained HTML page to this file.")
    ] = None,
    templates: Annotated[
        Path | None,
        typer.Option(help="Templates directory, to flag missing templates (default: RELANCE_TEMPLATES_DIR)."),
    ] = None,
) -> None:
    """Draw every journey's messages at their time after the trigger, and flag collisions and duplicates.

    Shows scenario → journey → trigger → messages with channel, purpose and conditions (unless,
    exit_on); flags messages of two journeys sent the same day, duplicates and messages never sent.

    Exit 0 (flags are advice), 2 when a file cannot be read.
    """
    # pydantic-settings, temporalio and Jinja2: not loaded for --help.
    from relance.core.settings import get_settings
    from relance.scenarios.map import find_flags, render_html, render_tree
    from relance.templates.engine import TemplateStore

    if templates is not None and not templates.is_dir():
        typer.echo(f"error: {templates}: no such templates directory", err=True)
        raise typer.Exit(2)
    scenarios = _load(directory)
    templates_dir = templates or get_settings().templates_dir
    # Without the templates at hand the map still draws; it just cannot tell a missing one.
    store = TemplateStore(templates_dir) if templates_dir.is_dir() else None
    flags = find_flags(scenarios, store)
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 10_000)
    # Piped or captured: whole lines, so grep and diff see one message per line.
    console.print(render_tree(scenarios, flags), soft_wrap=not sys.stdout.isatty())
    if html is not None:
        html.write_text(render_html(scenarios, flags, f"Scenario map — {directory}"), encoding="utf-8")
        typer.echo(f"map written to {html}")


@scenarios_app.command("apply")
def apply(
    source: Annotated[Path, typer.Argument(help="Directory of the new scenario files.")],
    to: Annotated[
        Path | None,
        typer.Option("--to", help="Directory the API and worker read (default: RELANCE_SCENARIOS_DIR)."),
    ] = None,
    templates: Annotated[
        Path | None, typer.Option(help="Templates directory (default: RELANCE_TEMPLATES_DIR).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Replace without asking.")] = False,
    confirm_legal: Annotated[
        bool,
        typer.Option(
            help="Confirm new messages of purpose 'legal' (they reach contacts who refused marketing)."
        ),
    ] = False,
) -> None:
    """Validate SOURCE, show what changes, then replace the target's scenario files in one step.

    The previous files are kept in TARGET/.history/<time>/. Exit 1 when SOURCE has errors
    (nothing is copied), 2 on usage errors or when confirmation is needed but there is no terminal.
    """
    # pydantic-settings; temporalio, SQLAlchemy and Jinja2 through the checks: not loaded for --help.
    from relance.core.settings import get_settings
    from relance.scenarios.apply import apply_files
    from relance.scenarios.campaigns import campaign_problems, new_legal_messages
    from relance.scenarios.diff import RUNNING_JOURNEYS, diff_sets
    from relance.scenarios.loader import collect_scenarios, scenario_files
    from relance.scenarios.validate import validate_directory

    settings = get_settings()
    target = to or settings.scenarios_dir
    templates_dir = templates or settings.templates_dir
    for path, what in ((source, "scenarios"), (templates_dir, "templates")):
        if not path.is_dir():
            typer.echo(f"error: {path}: no such {what} directory", err=True)
            raise typer.Exit(2)
    if target.exists() and not target.is_dir():
        typer.echo(f"error: {target}: not a directory", err=True)
        raise typer.Exit(2)
    problems = validate_directory(source, templates_dir)
    for problem in problems:
        typer.echo(str(problem))
    errors = sum(p.severity == "error" for p in problems)
    files = scenario_files(source)
    if errors or not files:
        why = _count(errors, "error") if errors else "no scenario file"
        typer.echo(f"{source}: {why}: nothing copied to {target}", err=True)
        raise typer.Exit(1)
    new, _ = collect_scenarios(source)
    required = [c.strip() for c in settings.required_criteria.split(",") if c.strip()]
    unfit = campaign_problems(new, required)
    for problem in unfit:
        typer.echo(str(problem))
    if unfit:
        typer.echo(f"{source}: {_count(len(unfit), 'error')}: nothing copied to {target}", err=True)
        raise typer.Exit(1)
    current = scenario_files(target) if target.is_dir() else []
    if [(p.name, p.read_bytes()) for p in current] == [(p.name, p.read_bytes()) for p in files]:
        typer.echo(f"{target} already has these files: nothing to do")
        return
    old, old_problems = collect_scenarios(target) if target.is_dir() else (new.__class__(), [])
    for problem in old_problems:
        typer.echo(f"{problem} (in the current set: replaced by this apply)")
    changes = diff_sets(old, new)
    for line in changes.lines():
        typer.echo(line)
    if changes.identical:
        typer.echo("the scenarios are the same; only the files' text (comments, layout, names) changes")
    else:
        typer.echo(RUNNING_JOURNEYS)
    legal = new_legal_messages(old, new)
    if legal and not confirm_legal:
        question = (
            f"{', '.join(legal)}: purpose 'legal' sends even to contacts who refused marketing; "
            "only a legal obligation (contract, payment, terms) may do that"
        )
        if not sys.stdin.isatty():
            typer.echo(f"error: {question}: run again with --confirm-legal", err=True)
            raise typer.Exit(2)
        if not typer.confirm(f"{question}. Confirm?", default=False):
            typer.echo("nothing changed", err=True)
            raise typer.Exit(1)
    if not yes:
        if not sys.stdin.isatty():
            typer.echo(
                f"error: not replacing the scenarios in {target} without confirmation: "
                "there is no terminal to ask on; run again with --yes",
                err=True,
            )
            raise typer.Exit(2)
        if not typer.confirm(f"Replace the scenario files in {target}?", default=False):
            typer.echo("nothing changed", err=True)
            raise typer.Exit(1)
    applied = apply_files(files, target)
    kept = f"; previous files kept in {applied.backup}" if applied.backup else ""
    typer.echo(f"applied {_count(len(applied.written), 'scenario file')} to {target}{kept}")
    loaded, _ = collect_scenarios(target)
    for scenario in loaded:
        before = old.get(scenario.scenario)
        if before is None:
            note = "new"
        elif before.version == scenario.version:
            note = "unchanged"
        else:
            note = f"was {before.version}"
        typer.echo(f"  {scenario.scenario}: version {scenario.version} ({note})")
    for scenario in old:
        if loaded.get(scenario.scenario) is None:
            typer.echo(f"  {scenario.scenario}: removed (was {scenario.version})")
