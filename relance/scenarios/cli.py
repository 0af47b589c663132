"""``relance scenarios …``"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from relance.config import get_settings
from relance.scenarios.validate import validate_directory

scenarios_app = typer.Typer(help="Scenario files: validate them.", no_args_is_help=True)


@scenarios_app.command("validate")
def validate(
    directory: Annotated[Path, typer.Argument(help="Directory of scenario YAML files.")],
    templates: Annotated[
        Path | None, typer.Option(help="Templates directory (default: RELANCE_TEMPLATES_DIR).")
    ] = None,
) -> None:
    """Check scenario files and their templates; exit 1 on any error."""
    if not directory.is_dir():
        typer.echo(f"{directory}: not a directory", err=True)
        raise typer.Exit(2)
    problems = validate_directory(directory, templates or get_settings().templates_dir)
    for problem in problems:
        typer.echo(str(problem))
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    typer.echo(f"{errors} error(s), {warnings} warning(s)", err=True)
    if errors:
        raise typer.Exit(1)
