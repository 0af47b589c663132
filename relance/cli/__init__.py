"""The ``relance`` command: the root Typer app and one sub-app per capability."""
