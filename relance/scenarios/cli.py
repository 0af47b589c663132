"""``relance scenarios …``"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

_HELP = "Scenario files: check them before the engine loads them."
scenarios_app = typer.Typer(help=_HELP, no_args_is_help=True)


@scenarios_app.callback()
def _group() -> None:
    """Scenario files: check them before the engine loads them."""
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
    from relance.config import get_settings
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
